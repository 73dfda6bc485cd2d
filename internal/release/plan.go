package release

import (
	"context"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// plan is one release as an operation will install it: its names, the
// host it serves, and its chart values (the user's, with shipper's on
// top), checked against the chart and rendered offline. Each kind of
// release has one constructor (previewPlan, productionPlan); an
// operation's Run installs its plan and its Render prints the same plan's
// manifest, so `shipper render` shows what deploy and promote apply by
// construction, and bad values are refused before anything changes.
type plan struct {
	names              Names
	release, namespace string
	host, url          string
	// chart is the Configuration's chart with the commit's short SHA as its
	// app version, so `helm list` shows what each release runs.
	chart  *chart.Chart
	values map[string]any
	// labels are stored on every revision's Helm record (see records.go).
	labels map[string]string
	// unlabels are removed from the record on an upgrade: Helm's upgrade
	// keeps the previous revision's labels unless told to drop them.
	unlabels []string
	// offline, when set, replaces Helm's default capabilities in the
	// offline rendering (Configuration.offlineCaps).
	offline *chartutil.Capabilities
	// manifest is the offline rendering, `helm template`'s output.
	manifest string
	// description, when set, is the revision's in `helm history`.
	description string
}

// previewPlan is the release of commit n running img; pullSecret says
// whether Deploy writes the image pull secret; protection is the chart's
// protection block (protection.go).
func (c *Configuration) previewPlan(ctx context.Context, n Names, hosts Hosts, user map[string]any, img Image, pullSecret, envSecret bool, protection map[string]any) (*plan, error) {
	if err := n.check(true); err != nil {
		return nil, err
	}
	host, err := hosts.Preview(n)
	if err != nil {
		return nil, err
	}
	secret := ""
	if pullSecret {
		secret = PullSecretName
	}
	url := hosts.url(host)
	env := ""
	if envSecret {
		env = envSecretName(n)
	}
	vals := mergeValues(user, mergeValues(previewValues(n, host, url, img, secret, env), c.routingValues(n)))
	// Whole, not merged: no key of the user's may enter the live block,
	// or the protection block.
	vals["live"] = disabledLive()
	if protection != nil {
		vals["protection"] = protection
	}
	p, err := c.newPlan(ctx, n, n.Release, n.Namespace, host, url, vals)
	if err != nil {
		return nil, err
	}
	p.unlabels = []string{LabelSizing}
	return p, nil
}

// canaryStep is a commit that gets weight percent (1 to 99) of
// production's requests beside the live one (the gateway router).
type canaryStep struct {
	names  Names
	weight int
}

// productionPlan is the production release of n's app routing to commit n,
// and to canary's commit too when canary is set.
func (c *Configuration) productionPlan(ctx context.Context, n Names, hosts Hosts, user map[string]any, canary *canaryStep) (*plan, error) {
	if err := n.check(true); err != nil {
		return nil, err
	}
	host, err := hosts.Production(n)
	if err != nil {
		return nil, err
	}
	url := hosts.url(host)
	vals := mergeValues(user, mergeValues(productionValues(n, host, url), c.routingValues(n)))
	if canary != nil {
		vals = mergeValues(vals, map[string]any{"production": map[string]any{"canary": map[string]any{
			"release": canary.names.Release, "namespace": canary.names.Namespace, "sha": canary.names.SHA, "weight": canary.weight,
		}}})
	}
	p, err := c.newPlan(ctx, n, n.ProductionRelease, n.ProductionNamespace, host, url, vals)
	if err != nil {
		return nil, err
	}
	if canary != nil {
		p.labels[LabelCanary] = canary.names.Short
		p.labels[LabelCanaryWeight] = strconv.Itoa(canary.weight)
	} else {
		p.unlabels = []string{LabelCanary, LabelCanaryWeight}
	}
	return p, nil
}

func (c *Configuration) newPlan(ctx context.Context, n Names, release, namespace, host, url string, vals map[string]any) (*plan, error) {
	ch, err := c.Chart()
	if err != nil {
		return nil, err
	}
	return c.newPlanChart(ctx, n, release, namespace, host, url, ch, vals)
}

// newPlanChart is newPlan with a chart of the caller's: a release's own
// (a values-only change, as sizing makes).
func (c *Configuration) newPlanChart(ctx context.Context, n Names, release, namespace, host, url string, ch *chart.Chart, vals map[string]any) (*plan, error) {
	p := &plan{
		names: n, release: release, namespace: namespace, host: host, url: url,
		chart: withAppVersion(ch, n.Short), values: vals, labels: c.releaseLabels(n),
		offline: c.offlineCaps,
	}
	// The host's check waits for the cluster's settings, read with the
	// first requests; the values' check and the render need only the CPU
	// and run meanwhile. A refused host is still the refusal reported.
	var hostChecked *early[struct{}]
	if host != "" { // "": a values-only change (sizing) keeps the release's host
		hostChecked = readEarly(func() (struct{}, error) { return struct{}{}, c.checkHost(ctx, n, host) })
	}
	verr := p.validate(ctx)
	if _, err := hostChecked.get(func() (struct{}, error) { return struct{}{}, nil }); err != nil {
		return nil, err
	}
	if verr != nil {
		return nil, verr
	}
	if err := c.checkWorkloads(ctx, p.manifest); err != nil {
		return nil, err
	}
	return p, nil
}

// validate checks the values against the chart's schema, then renders the
// chart offline, as `helm template` does. Either failure is the values'
// (or the chart's) fault and a *UsageError; nothing in the cluster has
// changed yet. Helm renders again when it installs, with the cluster's
// capabilities: a chart that renders offline but fails against the cluster
// (a `lookup`, a kubeVersion constraint) fails there, before Helm creates
// anything, but after shipper made the namespace.
//
// The schema check and the render run at once (two cores: the render
// no longer waits for the schema's compilation, the plan's larger half);
// the schema's refusal is still the one reported. Not for a chart with
// subcharts: Helm's render prunes the disabled ones from the chart
// (ProcessDependencies) while the check walks them.
func (p *plan) validate(ctx context.Context) error {
	merged, err := chartutil.CoalesceValues(p.chart, p.values)
	if err != nil {
		return &UsageError{Input: "values", Value: firstLine(err.Error()), Rule: "must be a YAML map"}
	}
	if len(p.chart.Dependencies()) > 0 || len(p.chart.Metadata.Dependencies) > 0 {
		if err := checkSchema(p.chart, merged); err != nil {
			return err
		}
		return p.render(ctx)
	}
	schema := readEarly(func() (struct{}, error) { return struct{}{}, checkSchema(p.chart, merged) })
	err = p.render(ctx)
	if _, serr := schema.get(nil); serr != nil {
		return serr
	}
	return err
}

// render renders the plan's chart offline, as `helm template` does, into
// p.manifest.
func (p *plan) render(ctx context.Context) error {
	in := action.NewInstall(new(action.Configuration))
	in.ClientOnly, in.DryRun, in.Replace = true, true, true
	in.ReleaseName, in.Namespace = p.release, p.namespace
	in.KubeVersion = &chartutil.DefaultCapabilities.KubeVersion
	if p.offline != nil {
		in.KubeVersion, in.APIVersions = &p.offline.KubeVersion, p.offline.APIVersions
	}
	in.SkipSchemaValidation = true // just done, with a better message
	rel, err := in.RunWithContext(ctx, p.chart, p.values)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &UsageError{Input: "values", Value: strings.ReplaceAll(err.Error(), "\n", " "), Rule: "the chart refused them"}
	}
	p.manifest = rel.Manifest + hookManifests(rel.Hooks)
	return nil
}

// path is the path the plan routes (the chart's ingress.path, "/" by
// default), where --verify sends its requests.
func (p *plan) path() string {
	if ing, ok := p.values["ingress"].(map[string]any); ok {
		if s, ok := ing["path"].(string); ok && s != "" {
			return s
		}
	}
	return "/"
}

// hasReferenceGrant reports whether the plan renders the commit's
// ReferenceGrant (the gateway router).
func (p *plan) hasReferenceGrant() bool {
	return strings.Contains(p.manifest, "\nkind: ReferenceGrant\n")
}

// hasHTTPRoute reports whether the plan renders an HTTPRoute named for its
// release (the gateway router, with routing enabled).
func (p *plan) hasHTTPRoute() bool {
	return strings.Contains(p.manifest, "\nkind: HTTPRoute\nmetadata:\n  name: "+p.release+"\n")
}

// withAppVersion returns a shallow copy of ch whose app version is v:
// Helm records the chart's AppVersion on each release, and `helm list`
// shows it as APP VERSION, so each release names the commit it runs.
func withAppVersion(ch *chart.Chart, v string) *chart.Chart {
	c := *ch
	md := *ch.Metadata
	md.AppVersion = v
	c.Metadata = &md
	return &c
}

// helmTimeout is the time left before ctx's deadline, for the Timeout
// fields of Helm's actions (hooks, resource waits), so Helm gives up when
// the operation does instead of after a timeout of its own.
func helmTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Second)
	}
	return 5 * time.Minute // Helm's own default
}

// withTimeout bounds ctx by d when d is set: library callers may give an
// operation a timeout of its own; the CLI sets one deadline on the context.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}
