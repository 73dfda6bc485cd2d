package release_test

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/shipper-dev/shipper/internal/release"
)

// hostileImage is the image every offline render in this file deploys.
const hostileImage = "registry.example.com/g/app:7c77eb36"

// renderOffline renders vals as `shipper render` would, for a preview or
// for production, without a cluster, with the embedded chart unless opts
// name another.
func renderOffline(t *testing.T, prod bool, vals map[string]any, opts ...release.Option) (string, error) {
	t.Helper()
	cfg, err := release.NewConfiguration(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	n := names(t, "myapp", testSHA)
	hosts := release.Hosts{Domain: "example.com"}
	if prod {
		p := release.NewPromote(cfg)
		p.Hosts, p.Values = hosts, vals
		return p.Render(context.Background(), n)
	}
	d := release.NewDeploy(cfg)
	d.Hosts, d.Values = hosts, vals
	return d.Render(context.Background(), n, hostileImage)
}

// under nests v under the dot-separated key path, as `--set path=v` would.
func under(path string, v any) map[string]any {
	keys := strings.Split(path, ".")
	for i := len(keys) - 1; i > 0; i-- {
		v = map[string]any{keys[i]: v}
	}
	return map[string]any{keys[0]: v}
}

// annotation is the values that set one Ingress annotation.
func annotation(key, value string) map[string]any {
	return map[string]any{"ingress": map[string]any{"annotations": map[string]any{key: value}}}
}

// annotationPath is how a schema error names the annotation key: a key
// path, the key quoted in brackets.
func annotationPath(key string) string {
	return "ingress.annotations[" + strconv.Quote(key) + "]: "
}

// inject is YAML that, pasted raw after a value, would add a rule routing
// the production host to whatever the values name.
const inject = "\n    - host: myapp.example.com\n      http: {}"

func TestRenderRefusesHostileValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		// want is how the error names the offending key: its key path.
		want string
		// previewOnly: production overrides the key with its own value
		// (production.*), so only a preview sees the user's.
		previewOnly bool
	}{
		{name: "newline in ingress.path", vals: under("ingress.path", "/"+inject), want: "ingress.path: "},
		{name: "space in ingress.path", vals: under("ingress.path", "/a b"), want: "ingress.path: "},
		{name: "dot segment in ingress.path", vals: under("ingress.path", "/api/../admin"), want: "ingress.path: "},
		{name: "relative ingress.path", vals: under("ingress.path", "api"), want: "ingress.path: "},
		{name: "newline in ingress.className", vals: under("ingress.className", "traefik"+inject), want: "ingress.className: "},
		{name: "newline in ingress.tls.secretName", vals: under("ingress.tls", map[string]any{"enabled": true, "secretName": "wildcard-tls" + inject}), want: "ingress.tls.secretName: "},
		{name: "newline in ingress.tls.clusterIssuer", vals: under("ingress.tls", map[string]any{"enabled": true, "clusterIssuer": "letsencrypt\nhelm.sh/resource-policy: keep"}), want: "ingress.tls.clusterIssuer: "},
		{name: "newline in ingress.tls.issuer", vals: under("ingress.tls", map[string]any{"enabled": true, "issuer": "letsencrypt\nhelm.sh/resource-policy: keep"}), want: "ingress.tls.issuer: "},
		{name: "newline in an env key", vals: under("env", map[string]any{"A: b\n            - name: B": "c"}), want: `env["A: b\n`},
		{name: "env key not a C identifier", vals: under("env", map[string]any{"LOG-LEVEL": "debug"}), want: "env.LOG-LEVEL: is not allowed"},
		{name: "env key the chart sets", vals: under("env", map[string]any{"COMMIT_SHA": "0000000"}), want: "env.COMMIT_SHA: "},
		{name: "env value not a scalar", vals: under("env", map[string]any{"A": map[string]any{"valueFrom": "x"}}), want: "env.A: "},
		{name: "newline in an imagePullSecrets entry", vals: under("imagePullSecrets", []any{"pull\n        - name: other"}), want: "imagePullSecrets[0]: "},
		{name: "newline in image.pullPolicy", vals: under("image.pullPolicy", "Always\n          command: [sh]"), want: "image.pullPolicy: "},
		{name: "newline in readinessProbe.path", vals: under("readinessProbe.path", "/healthz\n  host: 169.254.169.254"), want: "readinessProbe.path: "},
		{name: "newline in livenessProbe.path", vals: under("livenessProbe.path", "/healthz\n  host: 169.254.169.254"), want: "livenessProbe.path: "},
		{name: "percentage with newline in podDisruptionBudget.maxUnavailable", vals: under("podDisruptionBudget.maxUnavailable", "50%\n  minAvailable: 100%"), want: "podDisruptionBudget.maxUnavailable: "},
		{name: "podDisruptionBudget.minAvailable (N of N blocks drains)", vals: under("podDisruptionBudget.minAvailable", 1), want: "podDisruptionBudget.minAvailable: "},
		{name: "podDisruptionBudget.maxUnavailable 0", vals: under("podDisruptionBudget.maxUnavailable", 0), want: "podDisruptionBudget.maxUnavailable: "},
		{name: "podDisruptionBudget.maxUnavailable 0%", vals: under("podDisruptionBudget.maxUnavailable", "0%"), want: "podDisruptionBudget.maxUnavailable: "},
		{name: "newline in production.target.namespace", vals: under("production.target.namespace", "other\n  annotations: {}"), want: "production.target.namespace: ", previewOnly: true},
		{name: "unknown top-level key", vals: map[string]any{"extraRules": []any{map[string]any{"host": "myapp.example.com"}}}, want: "extraRules: is not allowed"},
		{name: "second host as ingress.hosts", vals: under("ingress.hosts", []any{"myapp.example.com"}), want: "ingress.hosts: is not allowed"},
		{name: "second host as ingress.tls.hosts", vals: under("ingress.tls.hosts", []any{"myapp.example.com"}), want: "ingress.tls.hosts: is not allowed"},
		{name: "typo in a nested key", vals: under("ingress.tls.secretname", "wildcard-tls"), want: "ingress.tls.secretname: is not allowed"},
		{name: "exec probe", vals: under("livenessProbe.exec", map[string]any{"command": []any{"sh"}}), want: "livenessProbe.exec: is not allowed"},
		{name: "unknown securityContext key", vals: under("securityContext.runAsRoot", true), want: "securityContext.runAsRoot: is not allowed"},
		{name: "helm resource policy", vals: annotation("helm.sh/resource-policy", "keep"), want: annotationPath("helm.sh/resource-policy")},
		{name: "helm hook", vals: annotation("helm.sh/hook", "pre-install"), want: annotationPath("helm.sh/hook")},
		{name: "helm ownership", vals: annotation("meta.helm.sh/release-name", "myapp"), want: annotationPath("meta.helm.sh/release-name")},
		{name: "shipper's own annotation", vals: annotation("shipper.dev/url", "https://myapp.example.com"), want: annotationPath("shipper.dev/url")},
		{name: "second host as nginx server-alias", vals: annotation("nginx.ingress.kubernetes.io/server-alias", "myapp.example.com"), want: annotationPath("nginx.ingress.kubernetes.io/server-alias")},
		{name: "nginx snippet", vals: annotation("nginx.ingress.kubernetes.io/server-snippet", "location / {}"), want: annotationPath("nginx.ingress.kubernetes.io/server-snippet")},
		{name: "nginx canary", vals: annotation("nginx.ingress.kubernetes.io/canary", "true"), want: annotationPath("nginx.ingress.kubernetes.io/canary")},
		{name: "nginx.org snippets", vals: annotation("nginx.org/location-snippets", "return 302 https://x;"), want: annotationPath("nginx.org/location-snippets")},
		{name: "second host as traefik router.rule", vals: annotation("traefik.ingress.kubernetes.io/router.rule", "Host(`myapp.example.com`)"), want: annotationPath("traefik.ingress.kubernetes.io/router.rule")},
		{name: "newline in an annotation key", vals: annotation("a\nhelm.sh/resource-policy", "keep"), want: `ingress.annotations["a\nhelm.sh/resource-policy"]: is not allowed`},
	} {
		checkRefused(t, tc.name, tc.vals, tc.previewOnly, tc.want, "")
	}
}

// checkRefused renders vals for a preview and, unless previewOnly, for
// production, each a subtest mode/name, and wants a usage error of one
// line that names want and does not hold hidden (when set).
func checkRefused(t *testing.T, name string, vals map[string]any, previewOnly bool, want, hidden string) {
	t.Helper()
	for _, prod := range []bool{false, true} {
		if prod && previewOnly {
			continue
		}
		mode := map[bool]string{false: "preview", true: "production"}[prod]
		t.Run(mode+"/"+name, func(t *testing.T) {
			got, err := renderOffline(t, prod, vals)
			if !release.IsUsage(err) || !strings.Contains(err.Error(), want) || strings.ContainsAny(err.Error(), "\r\n") ||
				hidden != "" && strings.Contains(err.Error(), hidden) {
				t.Fatalf("err = %v\nwant a usage error of one line naming %q, without the value; rendered:\n%s", err, want, got)
			}
		})
	}
}

func TestRenderQuotesBenignValues(t *testing.T) {
	vals := map[string]any{
		"env":              map[string]any{"LOG_LEVEL": "debug", "WORKERS": 4, "DEBUG": true},
		"imagePullSecrets": []any{"registry-pull"},
		"readinessProbe":   map[string]any{"path": "/healthz?full=1"},
		"ingress": map[string]any{
			"path":        "/api/v1",
			"className":   "traefik",
			"annotations": map[string]any{"traefik.ingress.kubernetes.io/router.entrypoints": "websecure"},
			"tls":         map[string]any{"enabled": true, "secretName": "wildcard-tls"},
		},
		"podDisruptionBudget": map[string]any{"enabled": true, "maxUnavailable": "50%"},
	}
	ingress := []string{
		`path: "/api/v1"`,
		`ingressClassName: "traefik"`,
		`secretName: "wildcard-tls"`,
		"traefik.ingress.kubernetes.io/router.entrypoints: websecure",
	}
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{"preview", append([]string{
			`name: "LOG_LEVEL"`, `value: "debug"`, `value: "4"`, `value: "true"`,
			`- name: "registry-pull"`, `path: "/healthz?full=1"`, `maxUnavailable: "50%"`,
		}, ingress...)},
		{"production", ingress},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			got, err := renderOffline(t, tc.mode == "production", vals)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("rendered manifest lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestTemplatesQuoteWithoutTheSchema renders hostile strings with a copy of
// the chart that has no values.schema.json, as `helm template
// --skip-schema-validation` would: quoting alone keeps each string one
// value, so no rule, host, key or object is added.
func TestTemplatesQuoteWithoutTheSchema(t *testing.T) {
	ch, err := release.LoadChart(release.ChartSource{})
	if err != nil {
		t.Fatal(err)
	}
	ch.Schema = nil
	dir := t.TempDir()
	if err := chartutil.SaveDir(ch, dir); err != nil {
		t.Fatal(err)
	}
	noSchema := release.WithChart(release.ChartSource{Ref: filepath.Join(dir, ch.Name())})

	const (
		path    = "/" + inject
		class   = "traefik" + inject
		secret  = "wildcard-tls" + inject
		issuer  = "letsencrypt\nhelm.sh/resource-policy: keep"
		envKey  = "A\n            - name: B"
		pull    = "pull\n        - name: other"
		policy  = "Always\n          command: [sh]"
		probe   = "/healthz\n  host: 169.254.169.254"
		percent = "50%\n  minAvailable: 100%"
	)
	vals := map[string]any{
		"ingress": map[string]any{
			"path": path, "className": class,
			"tls": map[string]any{"enabled": true, "secretName": secret, "clusterIssuer": issuer},
		},
		"env":                 map[string]any{envKey: "c"},
		"imagePullSecrets":    []any{pull},
		"image":               map[string]any{"pullPolicy": policy},
		"readinessProbe":      map[string]any{"path": probe},
		"livenessProbe":       map[string]any{"path": probe},
		"podDisruptionBudget": map[string]any{"enabled": true, "maxUnavailable": percent},
	}
	checkIngress := func(t *testing.T, objs map[string]json.RawMessage, host string) {
		t.Helper()
		var ing networkingv1.Ingress
		decode(t, objs, "Ingress", &ing)
		if r := ing.Spec.Rules; len(r) != 1 || r[0].Host != host || len(r[0].HTTP.Paths) != 1 || r[0].HTTP.Paths[0].Path != path {
			t.Errorf("ingress rules = %+v, want one rule for %s with the path verbatim", r, host)
		}
		if tls := ing.Spec.TLS; len(tls) != 1 || tls[0].SecretName != secret || len(tls[0].Hosts) != 1 {
			t.Errorf("ingress tls = %+v, want one entry with the secret name verbatim", tls)
		}
		if c := ing.Spec.IngressClassName; c == nil || *c != class {
			t.Errorf("ingressClassName = %v, want the class verbatim", c)
		}
		if a := ing.Annotations; a["cert-manager.io/cluster-issuer"] != issuer || a["helm.sh/resource-policy"] != "" {
			t.Errorf("annotations = %v, want the issuer verbatim and no resource policy", a)
		}
	}

	t.Run("preview", func(t *testing.T) {
		got, err := renderOffline(t, false, vals, noSchema)
		if err != nil {
			t.Fatal(err)
		}
		objs := splitManifest(t, got, "Deployment", "Service", "Ingress", "PodDisruptionBudget")
		checkIngress(t, objs, "myapp-7c77eb36.example.com")
		var dep appsv1.Deployment
		decode(t, objs, "Deployment", &dep)
		ps := dep.Spec.Template.Spec
		if len(ps.ImagePullSecrets) != 1 || ps.ImagePullSecrets[0].Name != pull {
			t.Errorf("imagePullSecrets = %+v, want the one name verbatim", ps.ImagePullSecrets)
		}
		c := ps.Containers[0]
		if string(c.ImagePullPolicy) != policy || c.Command != nil {
			t.Errorf("imagePullPolicy = %q, command %q; want the policy verbatim and no command", c.ImagePullPolicy, c.Command)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Host != "" {
				t.Errorf("probe = %+v, want the path verbatim and no host", p)
			}
		}
		if e := c.Env; len(e) != 4 || e[3].Name != envKey {
			t.Errorf("env = %+v, want APP_VERSION, COMMIT_SHA, PORT and the key verbatim", e)
		}
		var pdb policyv1.PodDisruptionBudget
		decode(t, objs, "PodDisruptionBudget", &pdb)
		if m := pdb.Spec.MaxUnavailable; m == nil || m.StrVal != percent || pdb.Spec.MinAvailable != nil {
			t.Errorf("pdb = %+v, want maxUnavailable verbatim and no minAvailable", pdb.Spec)
		}
	})
	t.Run("production", func(t *testing.T) {
		got, err := renderOffline(t, true, vals, noSchema)
		if err != nil {
			t.Fatal(err)
		}
		checkIngress(t, splitManifest(t, got, "Ingress"), "myapp.example.com")
	})
}

// splitManifest returns the objects of a rendered manifest by kind, and
// fails unless their kinds are exactly want.
func splitManifest(t *testing.T, manifest string, want ...string) map[string]json.RawMessage {
	t.Helper()
	objs := map[string]json.RawMessage{}
	var kinds []string
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("parsing the rendered manifest: %v\n%s", err, manifest)
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(raw, &tm); err != nil {
			t.Fatal(err)
		}
		if tm.Kind == "" {
			continue // an empty document
		}
		kinds = append(kinds, tm.Kind)
		objs[tm.Kind] = raw
	}
	slices.Sort(kinds)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(kinds, want) {
		t.Fatalf("rendered kinds %v, want %v:\n%s", kinds, want, manifest)
	}
	return objs
}

// decode unmarshals the object of kind in objs into into.
func decode(t *testing.T, objs map[string]json.RawMessage, kind string, into any) {
	t.Helper()
	if err := json.Unmarshal(objs[kind], into); err != nil {
		t.Fatalf("decoding the %s: %v", kind, err)
	}
}

func TestDeployRefusesHostileValuesWithoutChangingTheCluster(t *testing.T) {
	f := newDeployFixture(t)
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"path injection", under("ingress.path", "/"+inject), "ingress.path: "},
		{"resource policy", annotation("helm.sh/resource-policy", "keep"), annotationPath("helm.sh/resource-policy")},
		{"second host", under("ingress.hosts", []any{"myapp.preview.example.com"}), "ingress.hosts: is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.deploy(t, testSHA, func(d *release.Deploy) { d.Values = tc.vals })
			if !release.IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error naming %s", err, tc.want)
			}
			nss, err := f.cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: release.LabelApp + "=" + f.app})
			if err != nil {
				t.Fatal(err)
			}
			if len(nss.Items) != 0 {
				t.Errorf("hostile values created namespace %s", nss.Items[0].Name)
			}
		})
	}
}
