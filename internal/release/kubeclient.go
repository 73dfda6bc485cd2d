package release

import (
	"context"
	"errors"
	"io"
	"sync"

	shipkube "github.com/shipper-dev/shipper/internal/kube"
	"helm.sh/helm/v3/pkg/kube"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/resource"
)

// reachedClient is Helm's kube client without its reachability check,
// which each action begins with (a GET of /version): by the time shipper
// runs a Helm action it has had the apiserver's answers to several
// requests, and a cluster gone since fails the action's next request.
// Its Create sends a release's Service, workloads and routes at once.
type reachedClient struct {
	*kube.Client
	// aside, when set, is the record an install writes beside its
	// resources (recordaside.go).
	aside *recordAside
	// ahead, when set, sends an install's existence checks at once
	// (checksAhead).
	ahead *checksAhead
}

func (reachedClient) IsReachable() error { return nil }

// checksAhead sends the GETs of Helm's existence check at once. Helm's
// install builds its resources (Build), then checks, one resource after
// the other, that none exists already or is its own to adopt
// (existingResourceConflict), waiting for each GET before the next: three
// round trips for a preview. The Build of the release's manifest sends
// those GETs ahead, together (kube.ReadAhead), and Helm's check takes
// their answers; any write through the transport (kube.ReadAhead: the
// first Create's first request) drops what was not taken, so that no
// answer read before a write is taken after it. Not the Builds of the
// chart's CRDs (created before the manifest, and not checked) nor of its
// hooks (built with validation: shipper's installs skip it for the
// manifest, DisableOpenAPIValidation), whose GETs nobody would take.
type checksAhead struct {
	ctx  context.Context
	r    *shipkube.ReadAhead
	once sync.Once
}

// Build is Helm's; that of an install's manifest, with ahead set, sends
// its resources' existence GETs ahead, built as Helm's resource.Helper
// builds them.
func (c reachedClient) Build(reader io.Reader, validate bool) (kube.ResourceList, error) {
	resources, err := c.Client.Build(reader, validate)
	if err != nil || c.ahead == nil || validate || onlyCRDs(resources) {
		return resources, err
	}
	c.ahead.once.Do(func() {
		for _, info := range resources {
			h := resource.NewHelper(info.Client, info.Mapping)
			c.ahead.r.Send(c.ahead.ctx, h.RESTClient.Get().NamespaceIfScoped(info.Namespace, h.NamespaceScoped).Resource(h.Resource).Name(info.Name))
		}
	})
	return resources, nil
}

// onlyCRDs reports whether resources are CustomResourceDefinitions only
// (a chart's crds/, which Helm's install creates before its manifest).
func onlyCRDs(resources kube.ResourceList) bool {
	for _, info := range resources {
		if info.Object.GetObjectKind().GroupVersionKind().Kind != "CustomResourceDefinition" {
			return false
		}
	}
	return true
}

// createdTogether are the kinds an install creates at once when they come
// one after the other in Helm's install order: the Service, the routes to
// it (Ingress; HTTPRoute, which Helm orders with the kinds it does not
// know, after them) and the workloads whose pods take no service links
// (podsWithoutServiceLinks). Helm's client creates one kind after another,
// waiting for each (kube.Client.Create); for these the apiserver needs no
// order: an Ingress or an HTTPRoute does not wait for its Service (their
// controllers watch), nor a Deployment's pods, except for the
// <SERVICE>_SERVICE_HOST variables Kubernetes gives only the pods created
// after the Service: a workload whose pods may take them keeps Helm's
// order after it. A preview's install was three rounds one after the
// other, the Service's the slowest (its cluster IP is allocated); it is
// one (shipper's chart sets enableServiceLinks: false). What a chart may
// need first (namespaces, CRDs, ServiceAccounts, Secrets, ConfigMaps,
// RBAC, volumes) keeps Helm's order before them, and what may act on
// them or wait for them (HPAs, webhooks, APIServices, custom resources)
// after.
var createdTogether = map[string]bool{"Service": true, "Ingress": true, "HTTPRoute": true}

// workloads are the kinds with a pod template at spec.template.
var workloads = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true}

// together reports whether info's object may be created at once with
// the Service and routes around it.
func together(info *resource.Info) bool {
	kind := info.Object.GetObjectKind().GroupVersionKind().Kind
	if createdTogether[kind] {
		return true
	}
	return workloads[kind] && podsWithoutServiceLinks(info.Object)
}

// podsWithoutServiceLinks reports whether obj's pod template sets
// enableServiceLinks: false (Kubernetes' default is true).
func podsWithoutServiceLinks(obj runtime.Object) bool {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return false
	}
	links, found, err := unstructured.NestedBool(u, "spec", "template", "spec", "enableServiceLinks")
	return found && err == nil && !links
}

// Create is Helm's kube.Client.Create in waves: each run of consecutive
// resources of one kind, or of resources created together (together),
// is created at once, each resource by Helm's own Create (its retry on conflict
// included), and the next wave waits for it. As Helm's, every wave is
// sent even when one failed, and the errors are returned together.
func (c reachedClient) Create(resources kube.ResourceList) (*kube.Result, error) {
	if c.aside != nil {
		if err := c.aside.beside(resources); err != nil {
			return nil, err
		}
	}
	waves := createWaves(resources)
	if len(waves) == len(resources) || len(resources) == 0 {
		return c.Client.Create(resources) // nothing to create at once
	}
	var errs []error
	for _, wave := range waves {
		got := make([]error, len(wave))
		var wg sync.WaitGroup
		for i, info := range wave {
			wg.Go(func() { _, got[i] = c.Client.Create(kube.ResourceList{info}) })
		}
		wg.Wait()
		errs = append(errs, got...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &kube.Result{Created: resources}, nil
}

// Update is Helm's, the record held sent first: an install that adopts
// what it finds (existingResourceConflict; in a namespace made fresh, only
// objects outside it) creates its resources here, not in Create.
func (c reachedClient) Update(original, target kube.ResourceList, force bool) (*kube.Result, error) {
	if c.aside != nil {
		if err := c.aside.beside(nil); err != nil { // none: sent first
			return nil, err
		}
	}
	return c.Client.Update(original, target, force)
}

// createWaves splits resources, in Helm's install order, into the waves
// Create sends one after the other.
func createWaves(resources kube.ResourceList) []kube.ResourceList {
	var waves []kube.ResourceList
	// The wave being filled: of resources created together, or Helm's
	// wave of one kind.
	waveKind, waveTogether := "", false
	for _, info := range resources {
		kind, with := info.Object.GetObjectKind().GroupVersionKind().Kind, together(info)
		join := len(waves) > 0 && (waveTogether && with || !waveTogether && kind == waveKind)
		if !join {
			waves = append(waves, nil)
			waveKind, waveTogether = kind, with
		}
		waves[len(waves)-1] = append(waves[len(waves)-1], info)
	}
	return waves
}
