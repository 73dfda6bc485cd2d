package release

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the rendered output (run go test -update after checking):\n--- got\n%s", path, got)
	}
}

// offline is a Configuration without a cluster, as `shipper render` uses.
func offline(t *testing.T, opts ...Option) *Configuration {
	t.Helper()
	cfg, err := NewConfiguration(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testDeploy(t *testing.T, vals map[string]any) *Deploy {
	d := NewDeploy(offline(t))
	d.Hosts, d.Values = Hosts{Domain: "example.com"}, vals
	return d
}

func TestRenderGolden(t *testing.T) {
	n, err := NewNames("myapp", "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90")
	if err != nil {
		t.Fatal(err)
	}
	digest := "registry.example.com/group/myapp:7c77eb36@sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		vals   map[string]any
		secret bool
		prod   bool
		gw     bool
		// live: the commit at the production size promote sizes it to,
		// with the promote's values and secrets.
		live *Promote
	}{
		{name: "preview.yaml", secret: true},
		{name: "preview-options.yaml", vals: map[string]any{
			"replicaCount": 2,
			"env":          map[string]any{"LOG_LEVEL": "debug"},
			"ingress": map[string]any{
				"className": "traefik",
				"tls":       map[string]any{"enabled": true, "clusterIssuer": "letsencrypt"},
			},
			"autoscaling":         map[string]any{"enabled": true},
			"podDisruptionBudget": map[string]any{"enabled": true},
			// shipper's own values win over the user's.
			"sha": "0000000",
		}},
		// The commit at production size: the overlay merged over its own
		// values (resources deep, env added), production's Secret instead
		// of the commit's; its values file's own live block loses.
		{name: "preview-live.yaml", secret: true, vals: map[string]any{
			"env":       map[string]any{"LOG_LEVEL": "debug"},
			"resources": map[string]any{"limits": map[string]any{"memory": "128Mi"}},
			"live":      map[string]any{"enabled": true, "replicaCount": 50},
		}, live: &Promote{Secrets: map[string]string{"DB_PASSWORD": "never-rendered"}, Values: map[string]any{"production": map[string]any{
			"replicaCount":        3,
			"resources":           map[string]any{"requests": map[string]any{"cpu": "500m"}},
			"env":                 map[string]any{"LOG_LEVEL": "warn", "TIER": "production"},
			"podDisruptionBudget": map[string]any{"enabled": true, "maxUnavailable": 2},
		}}}},
		{name: "production.yaml", prod: true, vals: map[string]any{"ingress": map[string]any{"className": "traefik"}}},
		// The gateway router: no Ingress; an HTTPRoute and a ReferenceGrant
		// for the commit, one HTTPRoute in production's own namespace.
		// The user's router and gateway values lose to shipper's.
		{name: "preview-gateway.yaml", gw: true, vals: map[string]any{"router": "ingress", "gateway": map[string]any{"name": "other"}}},
		{name: "production-gateway.yaml", gw: true, prod: true, vals: map[string]any{"production": map[string]any{
			"canary": map[string]any{"release": "bank-app", "namespace": "bank", "weight": 50}, // ignored
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.gw {
				opts = append(opts, WithRouting(Routing{Router: RouterGateway, Gateway: GatewayRef{Namespace: "gateway-system", Name: "shared", Section: "https"}}))
			}
			cfg := offline(t, opts...)
			render := func() string {
				t.Helper()
				var got string
				var err error
				if tc.prod {
					p := NewPromote(cfg)
					p.Hosts, p.Values = Hosts{Domain: "example.com"}, tc.vals
					got, err = p.Render(context.Background(), n)
				} else {
					d := testDeploy(t, tc.vals)
					d.cfg = cfg
					if tc.secret {
						d.Credentials = &RegistryCredentials{}
					}
					if tc.live != nil {
						got, err = d.RenderLive(context.Background(), n, digest, tc.live)
						if strings.Contains(got, "never-rendered") {
							t.Errorf("a production secret's value was rendered")
						}
					} else {
						got, err = d.Render(context.Background(), n, digest)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			got := render()
			golden(t, filepath.Join("render", tc.name), got)
			// Rendered with another cluster's capabilities, the same: the
			// chart reads none, which lets an install of it skip reading
			// the cluster's (capabilitiesFor).
			cfg.offlineCaps = otherCluster
			if again := render(); again != got {
				t.Errorf("rendered with another cluster's capabilities, the manifest differs from Helm's defaults':\n%s\n---\n%s", got, again)
			}
		})
	}
}

func TestRenderRejectsBadValues(t *testing.T) {
	n, _ := NewNames("myapp", "7c77eb36")
	for _, tc := range []struct {
		name    string
		vals    map[string]any
		image   string
		wantErr string
	}{
		{"port out of range", map[string]any{"containerPort": 70000}, "r.example.com/a:1", "containerPort"},
		{"probe path", map[string]any{"readinessProbe": map[string]any{"path": "healthz"}}, "r.example.com/a:1", "path"},
		{"pull policy", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, "r.example.com/a:1", "pullPolicy"},
		{"image without tag", nil, "r.example.com/a", `invalid image "r.example.com/a"`},
		{"bad digest", nil, "r.example.com/a@sha256:xyz", `invalid image "r.example.com/a@sha256:xyz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testDeploy(t, tc.vals).Render(context.Background(), n, tc.image)
			if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want a usage error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestChartLintsClean runs Helm's own linter, strict, over the chart as
// shipped and with the values shipper sets in each mode.
func TestChartLintsClean(t *testing.T) {
	n, _ := NewNames("myapp", "7c77eb36")
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{
		{"defaults", nil},
		{"preview", previewValues(n, "myapp-7c77eb36.example.com", "https://myapp-7c77eb36.example.com", Image{Repository: "r.example.com/myapp", Tag: "7c77eb36"}, "pull", "myapp-7c77eb36-env")},
		{"production", productionValues(n, "myapp.example.com", "https://myapp.example.com")},
		{"preview, gateway", mergeValues(previewValues(n, "myapp-7c77eb36.example.com", "", Image{Repository: "r.example.com/myapp", Tag: "7c77eb36"}, "", ""), gatewayValues(n))},
		{"production, gateway", mergeValues(productionValues(n, "myapp.example.com", ""), gatewayValues(n))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			res := lint.Run([]string{"../../charts/preview-app"}, tc.vals)
			for _, msg := range res.Messages {
				if msg.Severity > support.InfoSev {
					t.Errorf("helm lint: %s", msg)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("helm lint error: %v", err)
			}
		})
	}
}

func gatewayValues(n Names) map[string]any {
	c := &Configuration{routing: Routing{Router: RouterGateway, Gateway: GatewayRef{Namespace: "gw", Name: "shared"}}}
	return c.routingValues(n)
}

func TestParseImage(t *testing.T) {
	d := "sha256:" + strings.Repeat("0f", 32)
	for _, tc := range []struct {
		in   string
		want Image
	}{
		{"registry.example.com/g/app:7c77eb36", Image{Repository: "registry.example.com/g/app", Tag: "7c77eb36"}},
		{"127.0.0.1:5000/app:v1", Image{Repository: "127.0.0.1:5000/app", Tag: "v1"}},
		{"127.0.0.1:5000/app@" + d, Image{Repository: "127.0.0.1:5000/app", Digest: d}},
		{"r.example.com/app:v1@" + d, Image{Repository: "r.example.com/app", Tag: "v1", Digest: d}},
	} {
		got, err := ParseImage(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseImage(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:5000/app", "app@sha256:12", "a b:1"} {
		if _, err := ParseImage(bad); !IsUsage(err) {
			t.Errorf("ParseImage(%q) err = %v, want a usage error", bad, err)
		}
	}
}
