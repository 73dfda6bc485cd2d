package release

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Production's routing object is the Ingress "<app>-production" that the
// production release renders into the promoted commit's namespace. Helm
// alone cannot keep it single:
//
//   - an upgrade creates the new target's Ingress, then deletes the old
//     one and ignores errors doing so;
//   - a promote killed between the two leaves its revision pending, which
//     the next operation marks failed, and Helm's next upgrade diffs from
//     the last deployed revision, which never knew that Ingress.
//
// Either way a stray Ingress routes the production host to a second
// commit. sweepRoutes removes every production Ingress but the live one,
// after each promote and rollback, under production's lock; Delete refuses
// a commit any production Ingress still routes to.

// productionRoute is one production Ingress: where it is, and whether it
// is the one the deployed revision renders.
type productionRoute struct {
	Namespace string
	Live      bool
}

// routes finds the production Ingresses of n's app in the namespaces of
// every commit production's history names (at most maxHistory), a few
// GETs at a time: shipper's role has no cluster-wide Ingress list.
func (c *Configuration) routes(ctx context.Context, n Names, live string) ([]productionRoute, error) {
	return c.routesOf(ctx, n, live, nil)
}

// routesOf is routes in the namespaces of the commits hist names (nil:
// production's history as listed now).
func (c *Configuration) routesOf(ctx context.Context, n Names, live string, hist []record) ([]productionRoute, error) {
	if hist == nil {
		var err error
		if hist, err = c.records(ctx, n.ProductionNamespace, "name="+n.ProductionRelease, cached); err != nil {
			return nil, err
		}
	}
	targets := map[string]bool{}
	if live != "" {
		targets[n.AppPart+"-"+live] = true
	}
	for _, r := range hist {
		if r.SHA != "" {
			targets[n.AppPart+"-"+r.SHA] = true
		}
	}
	var (
		mu  sync.Mutex
		out []productionRoute
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for ns := range targets {
		g.Go(func() error {
			ing, err := c.client.NetworkingV1().Ingresses(ns).Get(gctx, n.ProductionRelease, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				return nil // no route, or a namespace going away with its binding
			}
			if err != nil {
				return fmt.Errorf("reading production Ingress %s/%s: %w", ns, n.ProductionRelease, err)
			}
			if ing.Labels[LabelRole] != n.role() || ing.DeletionTimestamp != nil {
				return nil
			}
			mu.Lock()
			out = append(out, productionRoute{Namespace: ns, Live: live != "" && ns == n.AppPart+"-"+live})
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace < out[j].Namespace })
	return out, nil
}

// sweepRoutes deletes the production Ingresses that do not route to live
// (the short SHA the deployed revision names). Call it under production's
// lock, once the live route exists: it never removes that one, so the
// host is never left without a route.
//
// When production is routed by its HTTPRoute (the gateway router, whatever
// router the operation was configured with: a rollback may return to
// either), every production Ingress is a stray, and the route itself is
// made to send requests where manifest, the deployed revision's, says
// (reconcileHTTPRoute).
//
// Which router serves is read from manifest, not from the cluster: when
// the deployed revision has no HTTPRoute (an app moved back to the ingress
// router, or rolled back to a revision of it) a production HTTPRoute that
// Helm failed to delete is the stray, and the live Ingress stays.
func (c *Configuration) sweepRoutes(ctx context.Context, n Names, live, manifest string) error {
	return c.sweepRoutesOf(ctx, n, live, manifest, nil)
}

// sweepRoutesOf is sweepRoutes looking in the namespaces of the commits
// hist names besides live's (nil: production's history as listed now): a
// switch gives the records it opened the release with, listed under the
// lock before its revision, whose commit is live.
func (c *Configuration) sweepRoutesOf(ctx context.Context, n Names, live, manifest string, hist []record) error {
	// The HTTPRoute and the Ingresses are read together.
	var (
		routes []productionRoute
		rerr   error
		read   = make(chan struct{})
	)
	go func() {
		defer close(read)
		routes, rerr = c.routesOf(ctx, n, live, hist)
	}()
	route, err := c.productionHTTPRoute(ctx, n)
	<-read
	if err != nil {
		return err
	}
	want, err := manifestHTTPRoute(manifest, n.ProductionRelease)
	if err != nil {
		return err
	}
	switch {
	case want != nil && route != nil:
		if err := c.reconcileHTTPRoute(ctx, route, want); err != nil {
			return err
		}
		for i := range routes {
			routes[i].Live = false // none of the Ingresses is the live route
		}
	case route != nil:
		gw, err := c.gateways()
		if err != nil {
			return err
		}
		err = gw.GatewayV1().HTTPRoutes(route.Namespace).Delete(ctx, route.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing stray production HTTPRoute %s/%s: %w", route.Namespace, route.Name, err)
		}
		c.log.Warn("removed a stray production HTTPRoute: the deployed revision routes with an Ingress", "route", route.Namespace+"/"+route.Name)
	}
	if rerr != nil {
		return rerr
	}
	for _, r := range routes {
		if r.Live {
			continue
		}
		err := c.client.NetworkingV1().Ingresses(r.Namespace).Delete(ctx, n.ProductionRelease, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing stray production Ingress %s/%s: %w", r.Namespace, n.ProductionRelease, err)
		}
		c.log.Warn("removed a stray production route left by an interrupted or failed operation", "namespace", r.Namespace, "ingress", n.ProductionRelease)
	}
	return nil
}

// requireNoRoute refuses to delete commit n while a production Ingress
// or production's HTTPRoute routes to it, whatever production's records
// say: after an interrupted promote the records may name another commit
// while this one serves.
func (c *Configuration) requireNoRoute(ctx context.Context, n Names) error {
	route, err := c.productionHTTPRoute(ctx, n)
	if err != nil {
		return err
	}
	if route != nil && slices.Contains(backendNamespaces(route), n.Namespace) {
		return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf(
			"production's HTTPRoute %s/%s sends requests to it: promote another commit or roll back first",
			n.ProductionNamespace, n.ProductionRelease)}
	}
	ing, err := c.client.NetworkingV1().Ingresses(n.Namespace).Get(ctx, n.ProductionRelease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading production Ingress %s/%s: %w", n.Namespace, n.ProductionRelease, err)
	}
	if ing.Labels[LabelRole] != n.role() {
		return nil
	}
	return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf(
		"production routes to it (Ingress %s/%s): promote another commit or roll back first; if status shows another commit live, that route is a leftover of an interrupted promote, which the next promote or rollback removes",
		n.Namespace, n.ProductionRelease)}
}
