package release

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/shipper-dev/shipper/charts"
)

// schemaURL is where a chart's values.schema.json is compiled from, as
// Helm's ValidateAgainstSingleSchema names it.
const schemaURL = "file:///values.schema.json"

// shippedSchemaURL is where quickSchema compiles the schema of the chart
// shipper ships (charts.IsPreviewAppSchema). The compiler checks every
// schema it is given against its draft's meta-schema, except the ones
// under json-schema.org (the meta-schemas themselves): about half of a
// fresh process's compilation of shipper's 22 KB schema, on the path of a
// deploy's first writes, and a check whose answer for those bytes is
// known: TestShippedSchemaIsValid makes it on the schema embedded.
// TestSchemaUnderShippedURLIsNotChecked notices if the compiler stops
// skipping it (then it is only slower).
const shippedSchemaURL = "https://json-schema.org/shipper/preview-app/values.schema.json"

// maxProblems bounds the problems one refusal lists.
const maxProblems = 10

// checkSchema checks vals against ch's values.schema.json and its
// subcharts'. Helm's ValidateAgainstSchema decides, so a chart accepts
// what `helm install` would; the refusal names each refused key and the
// rule it breaks, never the value: Helm's messages quote values ("'…'
// does not match pattern"), and values hold secrets (env, --set).
func checkSchema(ch *chart.Chart, vals map[string]any) error {
	if schemaAccepts(ch, vals) {
		return nil
	}
	problems := schemaProblems(ch, vals, nil)
	if len(problems) == 0 {
		problems = []string{"shipper cannot tell which key"}
	}
	slices.Sort(problems)
	problems = slices.Compact(problems)
	if n := len(problems) - maxProblems; n > 0 {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", n))
	}
	return &UsageError{Input: "values", Value: NotShown, Rule: strings.Join(problems, "; ") + " (the chart's values.schema.json)"}
}

// schemaAccepts is Helm's decision on vals (ValidateAgainstSchema: nil
// or an error), made for a chart without subcharts whose schema refers
// only to itself by a compiler whose patterns are compiled on first use
// (lazyPatterns): Helm compiles each pattern of the schema twice (checking
// the schema against its draft's, then compiling it), and with a fresh
// process's regexp compilation that was most of the check's CPU, on the
// path of a deploy's first writes. The decision is the same: the same
// library, schema and values, and patterns refused as Helm's compiler
// refuses them. Any other chart, or a schema this compiler cannot take
// offline, is Helm's to decide.
func schemaAccepts(ch *chart.Chart, vals map[string]any) (ok bool) {
	helms := func() bool { return chartutil.ValidateAgainstSchema(ch, vals) == nil }
	defer func() {
		if recover() != nil { // Helm's recovers too: its to decide
			ok = helms()
		}
	}()
	sch := quickSchema(ch)
	if sch == nil {
		return helms()
	}
	return sch.Validate(vals) == nil
}

// quickSchema is ch's schema compiled with lazyPatterns, or nil when
// Helm's compiler decides (schemaAccepts): subcharts, a schema that
// refers outside itself, or one this compiler does not take. The schema
// shipper ships is not checked against its meta-schema again
// (shippedSchemaURL).
func quickSchema(ch *chart.Chart) *jsonschema.Schema {
	if ch.Schema == nil || len(ch.Dependencies()) > 0 {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ch.Schema))
	if err != nil || !localRefsOnly(doc) {
		return nil
	}
	url := schemaURL
	if charts.IsPreviewAppSchema(ch.Schema) {
		url = shippedSchemaURL
	}
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(lazyPatterns())
	if err := c.AddResource(url, doc); err != nil {
		return nil
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil
	}
	return sch
}

// localRefsOnly reports whether every $ref of a schema document points
// into the document itself ("#..."), and it names no other resource
// ($id, $dynamicRef): what Helm's loaders (file, http, urn) would fetch.
// A key of those names whose value is an object is a property or a
// definition so named (shipper's schema defines "id"), not the keyword.
func localRefsOnly(doc any) bool {
	switch v := doc.(type) {
	case map[string]any:
		for k, x := range v {
			_, isObject := x.(map[string]any)
			switch k {
			case "$ref":
				if s, ok := x.(string); !ok || !strings.HasPrefix(s, "#") {
					return false
				}
			case "$id", "id", "$dynamicRef", "$recursiveRef", "$anchor", "$dynamicAnchor":
				if !isObject {
					return false
				}
			}
			if !localRefsOnly(x) {
				return false
			}
		}
	case []any:
		for _, x := range v {
			if !localRefsOnly(x) {
				return false
			}
		}
	}
	return true
}

// lazyPatterns is a regexp engine for one compilation: each pattern is
// parsed when the schema names it, refused exactly when regexp.Compile
// would refuse it (its errors are the parser's), and compiled once, when
// a value is first matched against it. A schema names each pattern twice
// (its draft's check of the schema, then the keyword), and a value meets
// few of them.
func lazyPatterns() jsonschema.RegexpEngine {
	seen := map[string]*lazyPattern{}
	var mu sync.Mutex
	return func(expr string) (jsonschema.Regexp, error) {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := seen[expr]; ok {
			return p, nil
		}
		if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
			return nil, err
		}
		// Parsed without error: compiles.
		p := &lazyPattern{expr: expr, re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
		seen[expr] = p
		return p, nil
	}
}

// lazyPattern is a pattern parsed, compiled on its first match.
type lazyPattern struct {
	expr string
	re   func() *regexp.Regexp
}

func (p *lazyPattern) String() string { return p.expr }

func (p *lazyPattern) MatchString(s string) bool { return p.re().MatchString(s) }

// schemaProblems lists what ch's schema, and its subcharts' (each on the
// values under its name), refuse in vals, whose key path is at.
func schemaProblems(ch *chart.Chart, vals map[string]any, at []string) []string {
	var out []string
	if ch.Schema != nil {
		out = validateSchema(ch.Schema, vals, at)
	}
	for _, sub := range ch.Dependencies() {
		switch v := vals[sub.Name()].(type) {
		case nil:
		case map[string]any:
			out = append(out, schemaProblems(sub, v, append(slices.Clip(at), sub.Name()))...)
		default:
			out = append(out, keyPath(vals, at, []string{sub.Name()})+": must be a map")
		}
	}
	return out
}

// validateSchema validates vals against one schema, as Helm does, and
// describes the errors.
func validateSchema(schema []byte, vals map[string]any, at []string) []string {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return []string{"values.schema.json is not JSON: " + printable(err.Error())}
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return []string{"values.schema.json cannot be used: " + printable(err.Error())}
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		// A $ref Helm may fetch (http, urn) and this offline pass cannot.
		return []string{"values.schema.json cannot be compiled offline: " + printable(err.Error())}
	}
	var ve *jsonschema.ValidationError
	if !errors.As(sch.Validate(vals), &ve) {
		return nil
	}
	return schemaError{doc: doc, vals: vals, at: at}.problems(ve)
}

// schemaError describes a jsonschema.ValidationError as "key: rule"
// problems. Its rules come from the schema alone: jsonschema's own
// messages quote the value (Pattern, Format, Minimum and the like carry
// it as Got), so none of them is used.
type schemaError struct {
	doc  any // the schema, for the description of a refused form
	vals map[string]any
	at   []string
}

func (s schemaError) problems(e *jsonschema.ValidationError) []string {
	loc := e.InstanceLocation
	var out []string
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		// One problem: the forms the value could take, each with what it
		// lacks ("a: is required, or b: is required").
		var forms []string
		for _, c := range e.Causes {
			if p := s.problems(c); len(p) > 0 {
				forms = append(forms, strings.Join(p, " and "))
			}
		}
		if len(forms) == 0 {
			return []string{s.problem(loc, "must match exactly one of its forms")}
		}
		return []string{strings.Join(forms, ", or ")}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			out = append(out, s.problem(append(slices.Clip(loc), p), "is not allowed (an unknown key)"))
		}
		return out
	case *kind.Required:
		for _, p := range k.Missing {
			out = append(out, s.problem(append(slices.Clip(loc), p), "is required"))
		}
		return out
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			out = append(out, s.problems(c)...)
		}
		return out
	}
	return []string{s.problem(loc, s.rule(e))}
}

// rule is what a value must be to pass the keyword e failed, from the
// schema, never from the value.
func (s schemaError) rule(e *jsonschema.ValidationError) string {
	switch k := e.ErrorKind.(type) {
	case *kind.FalseSchema:
		return "is refused"
	case *kind.Type:
		return "must be " + typeNames(k.Want)
	case *kind.Enum:
		if len(k.Want) == 1 {
			return "must be " + shown(k.Want[0])
		}
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = shown(w)
		}
		return "must be one of " + strings.Join(want, ", ")
	case *kind.Const:
		return "must be " + shown(k.Want)
	case *kind.Pattern:
		return "must match " + printable(k.Want) + s.about(e)
	case *kind.Not:
		if not, ok := s.node(e)["not"].(map[string]any); ok {
			if p, ok := not["pattern"].(string); ok {
				return "must not match " + printable(p) + s.about(e)
			}
		}
		return "must not take a refused form" + s.about(e)
	case *kind.Contains:
		if c, ok := s.node(e)["contains"].(map[string]any); ok && c["const"] != nil {
			return "must include " + shown(c["const"])
		}
		return "must include an item its rule allows"
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters", k.Want)
	case *kind.Minimum:
		return "must be at least " + k.Want.RatString()
	case *kind.Maximum:
		return "must be at most " + k.Want.RatString()
	case *kind.MinItems:
		return fmt.Sprintf("must hold at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must hold at most %d items", k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("must not repeat an item (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	}
	// The rarer keywords (exclusiveMinimum, dependencies, contentEncoding
	// and the like) by name only: their jsonschema message may hold the
	// value.
	return "breaks the schema's " + strings.Join(e.ErrorKind.KeywordPath(), "/")
}

// problem is one refusal: the key path of loc, and the rule.
func (s schemaError) problem(loc []string, rule string) string {
	return keyPath(s.vals, s.at, loc) + ": " + rule
}

// node is the schema object holding the keyword e failed.
func (s schemaError) node(e *jsonschema.ValidationError) map[string]any {
	_, frag, _ := strings.Cut(e.SchemaURL, "#")
	if frag, err := url.PathUnescape(frag); err == nil {
		if n, ok := jsonPointer(s.doc, frag).(map[string]any); ok {
			return n
		}
	}
	return nil
}

// about is the description of the schema object holding the keyword e
// failed, in parentheses, or "".
func (s schemaError) about(e *jsonschema.ValidationError) string {
	if d, ok := s.node(e)["description"].(string); ok && d != "" {
		return " (" + printable(strings.TrimSuffix(d, ".")) + ")"
	}
	return ""
}

// jsonPointer is the value at ptr (RFC 6901) in doc, or nil.
func jsonPointer(doc any, ptr string) any {
	if ptr == "" {
		return doc
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch v := doc.(type) {
		case map[string]any:
			doc = v[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}

// keyPath names the value at loc in vals, the values under the key path
// at, as a key path: keys joined with ".", list indexes in brackets, and
// a key with any other character than letters, digits, - and _ quoted in
// brackets (ingress.annotations["nginx.ingress.kubernetes.io/auth-tls-secret"],
// imagePullSecrets[0]).
func keyPath(vals map[string]any, at, loc []string) string {
	var b strings.Builder
	for _, tok := range at {
		writeKey(&b, tok)
	}
	var cur any = vals
	for _, tok := range loc {
		switch v := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			cur = nil
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				cur = v[i]
			}
		case map[string]any:
			writeKey(&b, tok)
			cur = v[tok]
		default:
			writeKey(&b, tok)
		}
	}
	if b.Len() == 0 {
		return "values"
	}
	return b.String()
}

func writeKey(b *strings.Builder, key string) {
	if !plainKey.MatchString(key) {
		b.WriteString("[" + strconv.Quote(key) + "]")
		return
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// typeNames are JSON schema types as values files know them.
func typeNames(types []string) string {
	names := map[string]string{"object": "a map", "array": "a list", "integer": "an integer", "null": "null"}
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = cmp.Or(names[t], "a "+t)
	}
	return strings.Join(out, " or ")
}

// shown is a value the schema gives (an enum's, a const's), quoted if a
// string.
func shown(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return printable(fmt.Sprint(v))
}

// printable is s with every character that is not graphic (a line break,
// a control character) escaped as in a Go string, so a rule stays one
// line.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsGraphic(r) {
			b.WriteRune(r)
		} else {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
