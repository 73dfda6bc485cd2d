package release

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipper-dev/shipper/internal/database"
	shipkube "github.com/shipper-dev/shipper/internal/kube"
	"github.com/shipper-dev/shipper/internal/lease"
)

// Configuration is what every operation shares, as Helm's
// action.Configuration is: clients, the chart, the logger. Discovery and
// the REST mapper are cached for the life of the Configuration, so the
// Helm action configurations made for each namespace never rediscover.
type Configuration struct {
	rest     *rest.Config
	client   kubernetes.Interface
	metadata metadata.Interface
	disco    discovery.CachedDiscoveryInterface
	mapper   meta.RESTMapper
	log      *slog.Logger
	chartSrc ChartSource
	project  Project
	routing  Routing
	self     self
	lease    time.Duration
	locker   *lease.Locker // nil offline
	ahead    *shipkube.ReadAhead
	db       database.Engine // nil: no per-commit databases (database.go)

	gwOnce sync.Once
	gw     gwclient.Interface
	gwErr  error

	chartOnce sync.Once
	// offlineCaps, when set, are the capabilities plans render with
	// offline instead of Helm's defaults: a test's, rendering shipper's
	// chart with another cluster's to show it reads none (TestRenderGolden).
	offlineCaps *chartutil.Capabilities

	chart    *chart.Chart
	chartErr error

	capsOnce sync.Once
	caps     *chartutil.Capabilities

	// seen: namespaces as an operation read them a moment ago, for its
	// next look before any lock (getNamespace).
	seen sync.Map // name -> seenNamespace

	settingsMu   sync.Mutex
	settingsRead bool
	settingsVal  Settings
	settingsErr  error
}

// Option configures a Configuration.
type Option func(*Configuration)

// WithLogger sends progress events to l. The default discards them.
func WithLogger(l *slog.Logger) Option { return func(c *Configuration) { c.log = l } }

// WithChart replaces the embedded chart.
func WithChart(src ChartSource) Option { return func(c *Configuration) { c.chartSrc = src } }

// NewConfiguration builds a Configuration that talks to the cluster of rc.
// A nil rc gives an offline Configuration: enough for the Render methods,
// which need the chart and no cluster, as `helm template` does.
func NewConfiguration(rc *rest.Config, opts ...Option) (*Configuration, error) {
	c := &Configuration{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	if err := c.project.validate(); err != nil {
		return nil, err
	}
	if err := c.routing.validate(); err != nil {
		return nil, err
	}
	if rc == nil {
		return c, nil
	}
	c.rest = rest.CopyConfig(rc)
	// No client-side rate limit unless the caller set one: client-go's
	// default (5 requests per second, bursts of 10) throttled prune's
	// concurrent removals to a crawl (200 took 198 s; 38 s at kubectl's
	// 50 and 300), and the apiserver's API Priority and Fairness is what
	// protects it, as it does from every other client (a negative QPS is
	// client-go's "none").
	if c.rest.QPS == 0 && c.rest.RateLimiter == nil {
		c.rest.QPS = -1
	}
	c.ahead = new(shipkube.ReadAhead) // Helm's existence checks, sent at once (checksAhead)
	c.rest.Wrap(c.ahead.Wrap)
	var err error
	if c.client, err = kubernetes.NewForConfig(c.rest); err != nil {
		return nil, err
	}
	c.locker = c.newLocker()
	if c.metadata, err = metadata.NewForConfig(c.rest); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.rest)
	if err != nil {
		return nil, err
	}
	c.disco = memory.NewMemCacheClient(dc)
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(c.disco)
	return c, nil
}

// errOffline is what an operation that needs the cluster returns on an
// offline Configuration.
var errOffline = errors.New("no cluster connection: this Configuration was made without a rest.Config")

// online refuses an offline Configuration.
func (c *Configuration) online() error {
	if c.client == nil {
		return errOffline
	}
	return nil
}

// CheckVerify refuses v when the Configuration's router cannot verify, the
// check Deploy, Promote and Rollback make first: for a caller that checks
// its input before a request of its own (deploy's registry lookup).
func (c *Configuration) CheckVerify(v *Verify) error { return c.requireVerifiable(v) }

// Chart returns the chart, loading it on first use.
func (c *Configuration) Chart() (*chart.Chart, error) {
	c.chartOnce.Do(func() { c.chart, c.chartErr = LoadChart(c.chartSrc) })
	return c.chart, c.chartErr
}

// helm returns a Helm action configuration whose release records live in
// namespace, with the Secrets storage driver Helm uses by default so that
// `helm list -A` and `helm history` see shipper's releases.
func (c *Configuration) helm(namespace string) (*action.Configuration, error) {
	return c.helmVia(namespace, nil)
}

// helmVia is helm whose clients are built from rc instead of the
// Configuration's rest.Config (nil: that one).
func (c *Configuration) helmVia(namespace string, rc *rest.Config) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	debug := func(format string, v ...any) { c.log.Debug(fmt.Sprintf(format, v...)) }
	if err := cfg.Init(&restGetter{c: c, namespace: namespace, rest: rc}, namespace, "secret", debug); err != nil {
		return nil, err
	}
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		cfg.KubeClient = reachedClient{Client: kc}
	}
	return cfg, nil
}

// warmDiscovery starts reading in the background what the operation's
// Helm action will ask of discovery, off its path: the API groups and
// resources its REST mapping needs (every Helm write), and with version
// the capabilities an install or upgrade renders with. The reads are the
// cached discovery's, made once whoever asks first; a later caller waits
// for them.
func (c *Configuration) warmDiscovery(version bool) {
	if c.disco == nil {
		return
	}
	if version && !c.shippedRendersOffline() {
		go c.capabilities()
		return
	}
	go func() { _, _, _ = c.disco.ServerGroupsAndResources() }()
}

// capabilitiesFor are the capabilities ch renders with: Helm's defaults
// (those of `helm template`, with which the plan renders offline too) for
// a chart that renders the same with any (rendersOffline), else the
// cluster's (capabilities), which cost the version (a request) and
// Helm's set of every API version and kind the cluster serves, built
// from discovery on every install or upgrade (about 2% of a deploy's
// CPU). Helm's action only reads them when it renders.
func (c *Configuration) capabilitiesFor(ch *chart.Chart) *chartutil.Capabilities {
	if !c.rendersOffline(ch) {
		return c.capabilities()
	}
	return chartutil.DefaultCapabilities.Copy()
}

// shippedRendersOffline reports whether the Configuration's chart is
// shipper's and renders offline (rendersOffline). A chart of another
// source is not loaded for it (an oci:// one would be pulled then).
func (c *Configuration) shippedRendersOffline() bool {
	if c.chartSrc.Ref != "" {
		return false
	}
	ch, err := c.Chart()
	return err == nil && c.rendersOffline(ch)
}

// rendersOffline reports whether ch renders the same whatever the
// cluster's capabilities: the chart shipper ships, its templates byte for
// byte (TestShippersChartRendersTheSameWithAnyCapabilities renders it
// with two clusters'), as long as it does not start reading them
// (readsCapabilities). Not any chart that does not name them: a template
// may print its whole context ({{ toYaml . }}), capabilities included.
func (c *Configuration) rendersOffline(ch *chart.Chart) bool {
	if c.chartSrc.Ref != "" || len(ch.Dependencies()) > 0 || ch.Metadata == nil || len(ch.Metadata.Dependencies) > 0 {
		return false // shipper's has no subcharts
	}
	shipped, err := c.Chart()
	if err != nil || len(ch.Templates) != len(shipped.Templates) {
		return false
	}
	for i, f := range ch.Templates {
		if f.Name != shipped.Templates[i].Name || !bytes.Equal(f.Data, shipped.Templates[i].Data) {
			return false
		}
	}
	return !readsCapabilities(ch)
}

// readsCapabilities reports whether ch or a chart it depends on names the
// cluster's capabilities: a kubeVersion to check them against, or a
// template naming Capabilities or tpl (which renders text from values
// that may). A false alarm (a comment naming either) only costs reading
// them.
func readsCapabilities(ch *chart.Chart) bool {
	if ch.Metadata != nil && ch.Metadata.KubeVersion != "" {
		return true
	}
	for _, f := range ch.Templates {
		if bytes.Contains(f.Data, []byte("Capabilities")) || tplCall.Match(f.Data) {
			return true
		}
	}
	for _, dep := range ch.Dependencies() {
		if readsCapabilities(dep) {
			return true
		}
	}
	return false
}

// tplCall is Helm's tpl function named in a template.
var tplCall = regexp.MustCompile(`\btpl\b`)

// capabilities are the cluster's version and APIs for Helm's rendering,
// read once from the Configuration's cached discovery, which the REST
// mapper shares: Helm's own (getCapabilities) invalidates that cache
// first, and every install or upgrade discovered the APIs again (the
// version and two discovery documents). nil when they cannot be read:
// Helm then reads them itself. Only an install or upgrade renders: other
// Helm actions never ask.
func (c *Configuration) capabilities() *chartutil.Capabilities {
	c.capsOnce.Do(func() {
		v, err := c.disco.ServerVersion()
		if err != nil {
			return
		}
		apis, err := action.GetVersionSet(c.disco)
		if err != nil {
			return
		}
		c.caps = &chartutil.Capabilities{
			APIVersions: apis,
			KubeVersion: chartutil.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor},
			HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
		}
	})
	return c.caps
}

// restGetter is the genericclioptions.RESTClientGetter Helm's action
// configuration asks for, built from a rest.Config instead of kubeconfig
// flags and sharing the Configuration's cached discovery and mapper.
type restGetter struct {
	c         *Configuration
	namespace string
	rest      *rest.Config // nil: c's
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(cmp.Or(g.rest, g.c.rest)), nil
}
func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.c.disco, nil
}
func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.c.mapper, nil }

// ToRawKubeConfigLoader only serves the namespace: Helm's kube client reads
// its default namespace there.
func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: g.c.rest.Host}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", Namespace: g.namespace}
	cfg.CurrentContext = "c"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})
}
