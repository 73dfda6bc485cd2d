package release

import (
	"context"
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// Render prints the manifests a Deploy or a Promote would apply, offline:
// it needs the chart, not a cluster (`helm template` does the same).
type Render struct {
	// Chart is the chart to render; LoadChart(ChartSource{}) for the default.
	Chart *chart.Chart
	Hosts Hosts
	// Values are the user's values; shipper's own (image, SHA, hosts) win.
	Values map[string]any
	// PullSecret names the image pull secret Deploy would create, if any.
	PullSecret string
}

// Preview renders the release of commit n running image.
func (r *Render) Preview(ctx context.Context, n Names, image string) (string, error) {
	img, err := ParseImage(image)
	if err != nil {
		return "", err
	}
	host, err := r.Hosts.Preview(n)
	if err != nil {
		return "", err
	}
	return r.render(ctx, n.Release, n.Namespace, mergeValues(r.Values, previewValues(n, host, r.Hosts.url(host), img, r.PullSecret)))
}

// Production renders the production release routing to commit n.
func (r *Render) Production(ctx context.Context, n Names) (string, error) {
	host, err := r.Hosts.Production(n)
	if err != nil {
		return "", err
	}
	return r.render(ctx, n.ProductionRelease, n.ProductionNamespace, mergeValues(r.Values, productionValues(n, host, r.Hosts.url(host))))
}

func (r *Render) render(ctx context.Context, release, namespace string, vals map[string]any) (string, error) {
	install := action.NewInstall(new(action.Configuration))
	install.ClientOnly = true
	install.DryRun = true
	install.Replace = true
	install.ReleaseName = release
	install.Namespace = namespace
	install.KubeVersion = &chartutil.DefaultCapabilities.KubeVersion
	rel, err := install.RunWithContext(ctx, r.Chart, vals)
	if err != nil {
		return "", valuesError(fmt.Errorf("rendering %s: %w", release, err))
	}
	return rel.Manifest, nil
}
