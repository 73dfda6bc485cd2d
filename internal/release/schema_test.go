package release

import (
	"bytes"
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/shipper-dev/shipper/charts"
)

func TestKeyPath(t *testing.T) {
	vals := map[string]any{
		"imagePullSecrets": []any{"a", "b"},
		"podSecurityContext": map[string]any{
			"sysctls": []any{map[string]any{"name": "kernel.msgmax"}},
		},
	}
	for _, tc := range []struct {
		at, loc []string
		want    string
	}{
		{nil, nil, "values"},
		{nil, []string{"ingress", "tls", "secretName"}, "ingress.tls.secretName"},
		{nil, []string{"imagePullSecrets", "1"}, "imagePullSecrets[1]"},
		{nil, []string{"podSecurityContext", "sysctls", "0", "name"}, "podSecurityContext.sysctls[0].name"},
		{nil, []string{"ingress", "annotations", "nginx.ingress.kubernetes.io/auth-tls-secret"}, `ingress.annotations["nginx.ingress.kubernetes.io/auth-tls-secret"]`},
		{nil, []string{"env", "A\nB"}, `env["A\nB"]`},
		{[]string{"db"}, []string{"auth", "password"}, "db.auth.password"},
	} {
		if got := keyPath(vals, tc.at, tc.loc); got != tc.want {
			t.Errorf("keyPath(%q, %q) = %s, want %s", tc.at, tc.loc, got, tc.want)
		}
	}
}

// TestCheckSchemaOfASubchart: a subchart's schema refuses the values under
// its name, and the refusal names them by their whole key path.
func TestCheckSchemaOfASubchart(t *testing.T) {
	sub := &chart.Chart{
		Metadata: &chart.Metadata{Name: "db", APIVersion: chart.APIVersionV2, Version: "1.0.0"},
		Schema:   []byte(`{"type": "object", "properties": {"auth": {"type": "object", "properties": {"password": {"type": "string", "minLength": 20, "pattern": "^[a-z]+$"}}}}}`),
	}
	parent := &chart.Chart{Metadata: &chart.Metadata{Name: "app", APIVersion: chart.APIVersionV2, Version: "1.0.0"}}
	parent.SetDependencies(sub)

	err := checkSchema(parent, map[string]any{"db": map[string]any{"auth": map[string]any{"password": "s3cr3t-VALUE"}}})
	want := `invalid values "(not shown)": db.auth.password: must be at least 20 characters; db.auth.password: must match ^[a-z]+$ (the chart's values.schema.json)`
	if !IsUsage(err) || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if err := checkSchema(parent, map[string]any{"db": map[string]any{"auth": map[string]any{"password": strings.Repeat("a", 20)}}}); err != nil {
		t.Errorf("good values: %v", err)
	}
}

// TestSchemaAcceptsAsHelmDoes: the check with patterns compiled on first
// use decides as Helm's ValidateAgainstSchema on shipper's chart, for
// values it accepts and values it refuses (a pattern, a type, an unknown
// key, a line break), and on charts whose schema holds a pattern Go
// cannot compile or refers outside itself (Helm's to decide).
func TestSchemaAcceptsAsHelmDoes(t *testing.T) {
	ch := shippersChart(t)
	base := map[string]any{"app": "shop", "sha": "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90", "shortSha": "7c77eb36",
		"image": map[string]any{"repository": "registry.example.com/group/shop", "tag": "7c77eb36"}}
	with := func(k string, v any) map[string]any {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	cases := map[string]map[string]any{
		"shipper's values":    base,
		"more replicas":       with("replicaCount", 3),
		"bad app":             with("app", "Shop_"),
		"app with line break": with("app", "shop\nx"),
		"bad image":           with("image", map[string]any{"repository": "registry example.com/x", "tag": "v1"}),
		"bad tag":             with("image", map[string]any{"repository": "r.example.com/x", "tag": "-v1"}),
		"wrong type":          with("replicaCount", "three"),
		"unknown key":         with("hostNetwork", true),
		"env":                 with("env", map[string]any{"GREETING": "hello"}),
		"bad env name":        with("env", map[string]any{"A B": "x"}),
	}
	refused := 0
	for name, vals := range cases {
		merged, err := chartutil.CoalesceValues(ch, vals)
		if err != nil {
			t.Fatal(err)
		}
		helm := chartutil.ValidateAgainstSchema(ch, merged) == nil
		if got := schemaAccepts(ch, merged); got != helm {
			t.Errorf("%s: schemaAccepts = %v, Helm's ValidateAgainstSchema accepts = %v", name, got, helm)
		}
		if !helm {
			refused++
		}
	}
	if refused < 6 {
		t.Errorf("only %d of the cases are refused by Helm: the table no longer tests refusals", refused)
	}
	for name, schema := range map[string]string{
		"pattern Go cannot compile": `{"type":"object","properties":{"a":{"type":"string","pattern":"(x"}}}`,
		"remote reference":          `{"type":"object","properties":{"a":{"$ref":"https://example.invalid/s.json"}}}`,
		"pattern it compiles":       `{"type":"object","properties":{"a":{"type":"string","pattern":"^x+$"}}}`,
	} {
		c := &chart.Chart{Metadata: &chart.Metadata{Name: "c", Version: "0.1.0"}, Schema: []byte(schema)}
		for _, v := range []map[string]any{{"a": "xx"}, {"a": "y"}, {}} {
			helm := chartutil.ValidateAgainstSchema(c, v) == nil
			if got := schemaAccepts(c, v); got != helm {
				t.Errorf("%s, values %v: schemaAccepts = %v, Helm accepts = %v", name, v, got, helm)
			}
		}
	}
}

// TestLazyPatternsCompileOnFirstMatch: a pattern is parsed when named
// (a bad one refused then, as regexp.Compile refuses it), the same
// pattern named twice is one, and it is compiled only when matched.
func TestLazyPatternsCompileOnFirstMatch(t *testing.T) {
	engine := lazyPatterns()
	if _, err := engine("(x"); err == nil {
		t.Error("a pattern regexp.Compile refuses was taken")
	}
	//lint:ignore SA1000 a pattern Go refuses, on purpose
	if _, err := regexp.Compile("(x"); err == nil {
		t.Fatal("regexp.Compile takes the pattern: choose another refused one")
	}
	a, err := engine("^a+$")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := engine("^a+$")
	if a != b {
		t.Error("the same pattern named twice made two")
	}
	p := a.(*lazyPattern)
	if a.String() != "^a+$" || !p.MatchString("aaa") || p.MatchString("ab") {
		t.Errorf("pattern %q matches wrongly", a)
	}
}

// TestShippersSchemaTakesTheQuickCheck: the chart's schema refers only to
// itself (its definition named "id" is not the keyword), so schemaAccepts
// checks it with lazyPatterns, not through Helm's compiler.
func TestShippersSchemaTakesTheQuickCheck(t *testing.T) {
	ch := shippersChart(t)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ch.Schema))
	if err != nil {
		t.Fatal(err)
	}
	if !localRefsOnly(doc) {
		t.Error("shipper's schema is checked by Helm's compiler: localRefsOnly refuses it")
	}
	if quickSchema(ch) == nil {
		t.Error("shipper's schema is checked by Helm's compiler: quickSchema does not compile it")
	}
	for _, s := range []string{`{"$id":"https://x.invalid/s"}`, `{"properties":{"a":{"$ref":"other.json"}}}`, `{"id":"urn:x"}`} {
		d, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		if localRefsOnly(d) {
			t.Errorf("%s taken as referring only to itself", s)
		}
	}
}

// shippersChart is the chart shipper deploys with no --chart.
func shippersChart(t *testing.T) *chart.Chart {
	t.Helper()
	cfg, err := NewConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := cfg.Chart()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestShippedSchemaIsValid: the schema of the chart shipper ships passes
// its draft's meta-schema, the check quickSchema skips for exactly those
// bytes (shippedSchemaURL), and the chart as loaded holds them.
func TestShippedSchemaIsValid(t *testing.T) {
	ch := shippersChart(t)
	if !charts.IsPreviewAppSchema(ch.Schema) {
		t.Fatal("the chart loaded does not hold the schema embedded: quickSchema checks it against its meta-schema on every deploy")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ch.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(schemaURL); err != nil {
		t.Fatalf("charts/preview-app/values.schema.json fails its meta-schema: %v", err)
	}
	if charts.IsPreviewAppSchema(append(bytes.Clone(ch.Schema), ' ')) {
		t.Error("a schema a byte longer is taken for the one shipped")
	}
}

// TestSchemaUnderShippedURLIsNotChecked: the compiler does not check a
// schema under shippedSchemaURL against its meta-schema (what quickSchema
// saves), and any other chart's schema still is: one its meta-schema
// refuses ("required" not a list) is refused by schemaAccepts as by Helm.
func TestSchemaUnderShippedURLIsNotChecked(t *testing.T) {
	const bad = `{"type":"object","required":"a"}`
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(shippedSchemaURL, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(shippedSchemaURL); err != nil {
		t.Errorf("under %s the compiler checked the schema (%v): quickSchema no longer saves the check, only costs it", shippedSchemaURL, err)
	}
	ch := &chart.Chart{Metadata: &chart.Metadata{Name: "c", Version: "0.1.0"}, Schema: []byte(bad)}
	vals := map[string]any{"a": "x"}
	if chartutil.ValidateAgainstSchema(ch, vals) == nil {
		t.Fatal("Helm accepts a schema its meta-schema refuses: choose another")
	}
	if schemaAccepts(ch, vals) {
		t.Error("schemaAccepts took a schema its meta-schema refuses, which Helm refuses")
	}
}
