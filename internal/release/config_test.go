package release

import (
	"context"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// TestReadsCapabilities: shipper's chart reads none of the cluster's
// capabilities (an install renders it with Helm's defaults, without the
// cluster's version or its set of APIs); a chart whose template names
// .Capabilities or tpl, that sets a kubeVersion, or that depends on a
// chart that does, is rendered with the cluster's.
func TestReadsCapabilities(t *testing.T) {
	if readsCapabilities(shippersChart(t)) {
		t.Error("shipper's chart reads the cluster's capabilities: every install reads the version and builds Helm's API set again")
	}
	with := func(template, kubeVersion string) *chart.Chart {
		return &chart.Chart{
			Metadata:  &chart.Metadata{Name: "c", Version: "0.1.0", KubeVersion: kubeVersion},
			Templates: []*chart.File{{Name: "templates/a.yaml", Data: []byte(template)}},
		}
	}
	for name, tc := range map[string]struct {
		ch   *chart.Chart
		want bool
	}{
		"plain":                 {with("kind: ConfigMap # a template, mytpl.yaml", ""), false},
		"Capabilities":          {with(`{{ if .Capabilities.APIVersions.Has "x/v1" }}{{ end }}`, ""), true},
		"Capabilities by index": {with(`{{ index $ "Capabilities" }}`, ""), true},
		"tpl":                   {with(`{{ tpl .Values.t . }}`, ""), true},
		"kubeVersion":           {with("kind: ConfigMap", ">=1.30.0"), true},
		"dependency that reads": {func() *chart.Chart {
			c := with("", "")
			c.AddDependency(with("{{ .Capabilities.KubeVersion }}", ""))
			return c
		}(), true},
		"dependency that do not": {func() *chart.Chart { c := with("", ""); c.AddDependency(with("kind: Secret", "")); return c }(), false},
	} {
		if got := readsCapabilities(tc.ch); got != tc.want {
			t.Errorf("%s: readsCapabilities = %v, want %v", name, got, tc.want)
		}
	}
}

// TestRendersOfflineOnlyShippersChart: an install renders with Helm's
// default capabilities only the chart shipper ships, as it ships it: not
// a chart of the user's (--chart) that names no capability (it may print
// its whole context), nor shipper's with a template changed.
func TestRendersOfflineOnlyShippersChart(t *testing.T) {
	configured := func(opts ...Option) (*Configuration, *chart.Chart) {
		t.Helper()
		cfg, err := NewConfiguration(nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := cfg.Chart()
		if err != nil {
			t.Fatal(err)
		}
		return cfg, ch
	}
	cfg, ch := configured()
	if !cfg.rendersOffline(withAppVersion(ch, "7c77eb36")) {
		t.Error("shipper's chart (a commit's plan of it) is rendered with the cluster's capabilities")
	}
	changed := *ch
	changed.Templates = slices.Clone(ch.Templates)
	f := *changed.Templates[0]
	f.Data = append(slices.Clip(f.Data), []byte("\n# {{ toYaml . }}\n")...)
	changed.Templates[0] = &f
	if cfg.rendersOffline(&changed) {
		t.Errorf("shipper's chart with %s changed renders with Helm's default capabilities", f.Name)
	}
	if user, uch := configured(WithChart(ChartSource{Ref: "../../charts/preview-app"})); user.rendersOffline(uch) {
		t.Error("a chart given by --chart renders with Helm's default capabilities")
	}
}

// otherCluster are capabilities other than Helm's defaults: another
// Kubernetes version, the Gateway API and more served.
var otherCluster = &chartutil.Capabilities{
	KubeVersion: chartutil.KubeVersion{Version: "v1.99.3", Major: "1", Minor: "99"},
	APIVersions: append(slices.Clone(chartutil.DefaultVersionSet), "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1/HTTPRoute", "autoscaling/v2", "example.com/v1alpha1/Widget"),
	HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
}

// TestShippersChartRendersTheSameWithAnyCapabilities: why an install of
// shipper's chart need not read the cluster's capabilities: rendered with
// Helm's defaults and with another cluster's (another Kubernetes version,
// the Gateway API and more served), on either router, its manifest is the
// same. TestRenderGolden does the same for each of its renderings
// (production, the gateway router, a commit at production size).
func TestShippersChartRendersTheSameWithAnyCapabilities(t *testing.T) {
	ch := shippersChart(t)
	render := func(vals map[string]any, kube *chartutil.KubeVersion, apis []string) string {
		t.Helper()
		in := action.NewInstall(new(action.Configuration))
		in.ClientOnly, in.DryRun, in.Replace = true, true, true
		in.ReleaseName, in.Namespace = "shop-7c77eb36", "shop-7c77eb36"
		in.KubeVersion, in.APIVersions = kube, apis
		in.SkipSchemaValidation = true
		rel, err := in.RunWithContext(context.Background(), ch, vals)
		if err != nil {
			t.Fatal(err)
		}
		return rel.Manifest
	}
	other, apis := &otherCluster.KubeVersion, otherCluster.APIVersions
	for _, router := range []string{"ingress", "gateway"} {
		vals := map[string]any{"app": "shop", "sha": "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90", "shortSha": "7c77eb36", "router": router,
			"image":       map[string]any{"repository": "registry.example.com/group/shop", "tag": "7c77eb36"},
			"autoscaling": map[string]any{"enabled": true}, "podDisruptionBudget": map[string]any{"enabled": true}}
		plain, elsewhere := render(vals, &chartutil.DefaultCapabilities.KubeVersion, nil), render(vals, other, apis)
		if want := map[string]string{"ingress": "kind: Ingress\n", "gateway": "kind: HTTPRoute\n"}[router]; !strings.Contains(plain, want) {
			t.Errorf("router %s: no %q rendered: the case does not test that router", router, want)
		}
		if plain == "" || plain != elsewhere {
			t.Errorf("router %s: the manifest rendered with Helm's default capabilities differs from one rendered with another cluster's (or is empty):\n%s\n---\n%s", router, plain, elsewhere)
		}
	}
}
