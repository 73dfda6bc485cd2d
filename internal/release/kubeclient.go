package release

import (
	"errors"
	"sync"

	"helm.sh/helm/v3/pkg/kube"
)

// reachedClient is Helm's kube client without its reachability check,
// which each action begins with (a GET of /version): by the time shipper
// runs a Helm action it has had the apiserver's answers to several
// requests, and a cluster gone since fails the action's next request.
// Its Create sends a release's Service, workloads and routes at once.
type reachedClient struct{ *kube.Client }

func (reachedClient) IsReachable() error { return nil }

// createdTogether are the kinds an install creates at once when they come
// one after the other in Helm's install order (Service, the workloads,
// the HPA, Ingress; HTTPRoute, which Helm orders with the kinds it does
// not know, after them). Helm's client creates one kind after another,
// waiting for each (kube.Client.Create); for these the apiserver needs no
// order: a Deployment's pods do not wait for its Service, nor an Ingress
// or an HTTPRoute for either (their controllers watch). A preview's
// install was three rounds one after the other, the Service's the
// slowest (its cluster IP is allocated); it is one. What a chart may
// need first (namespaces, CRDs, ServiceAccounts, Secrets, ConfigMaps,
// RBAC, volumes) keeps Helm's order before them, and what may act on
// them (webhooks, APIServices, custom resources) after.
var createdTogether = map[string]bool{
	"Service": true, "DaemonSet": true, "ReplicaSet": true, "Deployment": true,
	"HorizontalPodAutoscaler": true, "StatefulSet": true, "Ingress": true, "HTTPRoute": true,
}

// Create is Helm's kube.Client.Create in waves: each run of consecutive
// resources of one kind, or of kinds createdTogether, is created at
// once, each resource by Helm's own Create (its retry on conflict
// included), and the next wave waits for it. As Helm's, every wave is
// sent even when one failed, and the errors are returned together.
func (c reachedClient) Create(resources kube.ResourceList) (*kube.Result, error) {
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

// createWaves splits resources, in Helm's install order, into the waves
// Create sends one after the other.
func createWaves(resources kube.ResourceList) []kube.ResourceList {
	var waves []kube.ResourceList
	prev := ""
	for _, info := range resources {
		kind := info.Object.GetObjectKind().GroupVersionKind().Kind
		if len(waves) == 0 || !(kind == prev || createdTogether[kind] && createdTogether[prev]) {
			waves = append(waves, nil)
		}
		waves[len(waves)-1] = append(waves[len(waves)-1], info)
		prev = kind
	}
	return waves
}
