package release

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
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
