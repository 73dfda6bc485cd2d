package release

import (
	"cmp"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Production is what production serves: which commit, since which
// revision and when.
type Production struct {
	App      string    `json:"app"`
	Release  string    `json:"release"`
	SHA      string    `json:"sha"`
	Target   string    `json:"target"`
	Host     string    `json:"host"`
	URL      string    `json:"url"`
	Revision int       `json:"revision"`
	Status   string    `json:"status"`
	Since    time.Time `json:"since"`
	// Canary is the commit that gets part of the requests during a canary
	// (the gateway router), nil otherwise; SHA serves the rest.
	Canary *Canary `json:"canary,omitempty"`
	// SizedDown are the commits returned to their preview size after the
	// drain delay: production no longer routes to them.
	SizedDown []string `json:"sizedDown,omitempty"`
	// Sized are the commits listed at production size (sizing.go): those
	// production routes to, and any an unfinished drain left.
	Sized []string `json:"sized,omitempty"`
}

// Canary is a commit that gets Weight percent of production's requests.
type Canary struct {
	SHA    string `json:"sha"`
	Target string `json:"target"`
	Weight int    `json:"weight"`
}

// production reads what production serves now from the deployed revision's
// labels and the live route (the Ingress, else production's HTTPRoute):
// two or three requests, no release decoding. It sees
// a `helm rollback` done with the helm CLI like shipper's own.
func (c *Configuration) production(ctx context.Context, n Names) (*Production, error) {
	rec, err := c.deployedRecord(ctx, n.ProductionNamespace, n.ProductionRelease, consistent)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errNoProduction(n)
	}
	target := n.AppPart + "-" + rec.SHA
	p := &Production{
		App: n.AppPart, Release: n.ProductionRelease, SHA: rec.SHA, Target: target,
		Revision: rec.Version, Status: rec.Status, Since: rec.Created,
	}
	if rec.Canary != "" {
		p.Canary = &Canary{SHA: rec.Canary, Target: n.AppPart + "-" + rec.Canary, Weight: rec.CanaryWeight}
	}
	ing, err := c.client.NetworkingV1().Ingresses(target).Get(ctx, n.ProductionRelease, metav1.GetOptions{})
	switch {
	case err == nil && len(ing.Spec.Rules) > 0:
		p.Host = ing.Spec.Rules[0].Host
		p.URL = cmp.Or(ing.Annotations[AnnotationURL], "https://"+p.Host)
	case err != nil && !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the production Ingress: %w", err)
	}
	if p.Sized, err = c.sizedCommits(ctx, n); err != nil {
		return nil, err
	}
	if p.Host == "" { // the gateway router: production's own HTTPRoute
		route, err := c.productionHTTPRoute(ctx, n)
		if err != nil {
			return nil, err
		}
		if route != nil && len(route.Spec.Hostnames) > 0 {
			p.Host = string(route.Spec.Hostnames[0])
			p.URL = cmp.Or(route.Annotations[AnnotationURL], "https://"+p.Host)
		}
	}
	return p, nil
}

// withProductionLock is locker.Do on the production release of n's app,
// which must exist: a Lease cannot be created in a missing namespace, and
// a missing production namespace means there is no production yet.
func (c *Configuration) withProductionLock(ctx context.Context, n Names, fn func(context.Context) error) error {
	return c.withProductionLockOf(ctx, n, nil, fn)
}

// withProductionLockOf is withProductionLock with production's namespace
// as read, when sent early (nil: read now).
func (c *Configuration) withProductionLockOf(ctx context.Context, n Names, read *early[*corev1.Namespace], fn func(context.Context) error) error {
	ns, err := read.get(func() (*corev1.Namespace, error) {
		return c.client.CoreV1().Namespaces().Get(ctx, n.ProductionNamespace, metav1.GetOptions{})
	})
	if apierrors.IsNotFound(err) {
		return errNoProduction(n)
	}
	if err != nil {
		return fmt.Errorf("reading namespace %q: %w", n.ProductionNamespace, err)
	}
	if err := c.owned(ns, n); err != nil {
		return err
	}
	return c.locker.Do(ctx, n.ProductionNamespace, n.ProductionRelease, fn)
}

func errNoProduction(n Names) error {
	return &UsageError{Input: "app", Value: n.App, Rule: "has no production release: run `shipper promote` first", Err: ErrNoProduction}
}
