package release

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"
)

// Routers. How a host reaches a commit's Service is the router's business;
// everything else (releases, records, locks, repair) is the same for both.
//
// RouterIngress renders an Ingress per host. Production's Ingress lives in
// the promoted commit's namespace, so it can name that commit's Service:
// a promote creates the new one, then deletes the old one (routes.go keeps
// that single).
//
// RouterGateway renders Gateway API HTTPRoutes attached to the cluster's
// shared Gateway (Routing.Gateway), which terminates TLS with one
// certificate that promotes never touch. A commit's release holds its
// preview HTTPRoute and a ReferenceGrant that lets HTTPRoutes of its app's
// production namespace, and no other, reference its Service. Production's
// release holds one HTTPRoute in its own namespace whose backendRefs name
// the live commit's Service (and a canary's, weighted): promote and
// rollback update that one object in place.
//
// On the gateway router an operation is done when the Gateway controller
// has accepted the route's new generation and resolved its references
// (awaitRoute), not when Helm wrote it: a job that curls the host next sees
// the commit it asked for.
type Router string

const (
	RouterIngress Router = "ingress"
	RouterGateway Router = "gateway"
)

// Routing is the router and, for RouterGateway, the Gateway routes attach to.
type Routing struct {
	Router Router
	// Gateway is the Gateway the cluster admin runs ("NAMESPACE/NAME"
	// parsed by ParseGateway), with an optional listener (Section).
	Gateway GatewayRef
}

// GatewayRef names a Gateway and optionally one of its listeners.
type GatewayRef struct {
	Namespace, Name, Section string
}

func (g GatewayRef) String() string {
	s := g.Namespace + "/" + g.Name
	if g.Section != "" {
		s += " (listener " + g.Section + ")"
	}
	return s
}

// ParseRouting checks a router name and Gateway reference as the CLI
// takes them: router "" is the ingress router; gateway is "NAMESPACE/NAME".
func ParseRouting(router, gateway, section string) (Routing, error) {
	r := Routing{Router: Router(router)}
	if r.Router == "" {
		r.Router = RouterIngress
	}
	switch r.Router {
	case RouterIngress:
		if gateway != "" || section != "" {
			return Routing{}, &UsageError{Input: "--gateway", Value: gateway + section, Rule: "needs --router gateway (SHIPPER_ROUTER=gateway)"}
		}
		return r, nil
	case RouterGateway:
	default:
		return Routing{}, &UsageError{Input: "--router", Value: router, Rule: "must be ingress or gateway"}
	}
	ns, name, ok := strings.Cut(gateway, "/")
	if gateway == "" {
		return Routing{}, &UsageError{Input: "--gateway", Value: "", Rule: "the gateway router needs the Gateway routes attach to: --gateway NAMESPACE/NAME (SHIPPER_GATEWAY)"}
	}
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return Routing{}, &UsageError{Input: "--gateway", Value: gateway, Rule: "must be NAMESPACE/NAME of a Gateway, like gateway-system/shared"}
	}
	if section != "" && len(validation.IsDNS1123Subdomain(section)) > 0 {
		return Routing{}, &UsageError{Input: "--gateway-section", Value: section, Rule: "must be the name of one of the Gateway's listeners (a DNS-1123 subdomain)"}
	}
	r.Gateway = GatewayRef{Namespace: ns, Name: name, Section: section}
	return r, nil
}

func (r Routing) validate() error {
	_, err := ParseRouting(string(r.Router), r.gatewayArg(), r.Gateway.Section)
	return err
}

func (r Routing) gatewayArg() string {
	if r.Gateway.Namespace == "" && r.Gateway.Name == "" {
		return ""
	}
	return r.Gateway.Namespace + "/" + r.Gateway.Name
}

// WithRouting sets the router every operation renders and checks routes
// for (default: the ingress router).
func WithRouting(r Routing) Option { return func(c *Configuration) { c.routing = r } }

func (c *Configuration) router() Router {
	if c.routing.Router == "" {
		return RouterIngress
	}
	return c.routing.Router
}

// routingValues are the chart values of the router, for a release of n's
// app.
func (c *Configuration) routingValues(n Names) map[string]any {
	if c.router() != RouterGateway {
		return map[string]any{"router": string(RouterIngress)}
	}
	g := c.routing.Gateway
	return map[string]any{
		"router":     string(RouterGateway),
		"gateway":    map[string]any{"namespace": g.Namespace, "name": g.Name, "sectionName": g.Section},
		"production": map[string]any{"namespace": n.ProductionNamespace},
	}
}

// gateways returns the Gateway API client, made on first use: only the
// gateway router and the routes checks need it.
func (c *Configuration) gateways() (gwclient.Interface, error) {
	c.gwOnce.Do(func() { c.gw, c.gwErr = gwclient.NewForConfig(c.rest) })
	return c.gw, c.gwErr
}

// productionRoute returns production's HTTPRoute, or nil when there is
// none (the ingress router, no production yet, or no Gateway API in the
// cluster at all).
func (c *Configuration) productionHTTPRoute(ctx context.Context, n Names) (*gwv1.HTTPRoute, error) {
	gw, err := c.gateways()
	if err != nil {
		return nil, err
	}
	r, err := gw.GatewayV1().HTTPRoutes(n.ProductionNamespace).Get(ctx, n.ProductionRelease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil // the route, or the API itself
	}
	if apierrors.IsForbidden(err) {
		// shipper's role is bound in the production namespace once it
		// exists: before the first promote there is no route to read.
		if _, nerr := c.client.CoreV1().Namespaces().Get(ctx, n.ProductionNamespace, metav1.GetOptions{}); apierrors.IsNotFound(nerr) {
			return nil, nil
		}
		// A role from before the gateway router (deploy/rbac not applied
		// again) cannot read routes: on the ingress router there are none
		// to read. On the gateway router it is an error.
		if c.router() != RouterGateway {
			c.log.Warn("cannot read HTTPRoutes: apply deploy/rbac of this version to give shipper's role the gateway router's rights", "error", err)
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading production HTTPRoute %s/%s: %w", n.ProductionNamespace, n.ProductionRelease, err)
	}
	if r.Labels[LabelRole] != n.role() {
		return nil, nil
	}
	return r, nil
}

// backend is one backendRef of an HTTPRoute, its namespace filled in and
// its weight defaulted as the API does (1).
type backend struct {
	Namespace, Name string
	Weight          int32
}

func backendsOf(route *gwv1.HTTPRoute) []backend {
	var out []backend
	for _, rule := range route.Spec.Rules {
		for _, b := range rule.BackendRefs {
			be := backend{Namespace: route.Namespace, Name: string(b.Name), Weight: 1}
			if b.Namespace != nil {
				be.Namespace = string(*b.Namespace)
			}
			if b.Weight != nil {
				be.Weight = *b.Weight
			}
			out = append(out, be)
		}
	}
	return out
}

// backendNamespaces are the namespaces of the Services route sends
// requests to (weight > 0), in its order.
func backendNamespaces(route *gwv1.HTTPRoute) []string {
	var out []string
	for _, b := range backendsOf(route) {
		if b.Weight > 0 {
			out = append(out, b.Namespace)
		}
	}
	return out
}

// reconcileHTTPRoute makes production's HTTPRoute route send requests to
// the backends manifest (the deployed revision's) gives it. Helm's upgrade
// patches a custom resource with a three-way merge from the last deployed
// manifest: after a promote killed between its patch of the route and the
// record of its revision, the next promote or rollback to the commit the
// records still name computes no change, and the route would go on
// sending requests to the commit the killed promote switched to.
func (c *Configuration) reconcileHTTPRoute(ctx context.Context, route, want *gwv1.HTTPRoute) error {
	if slices.Equal(backendsOf(route), backendsOf(want)) && slices.Equal(route.Spec.Hostnames, want.Spec.Hostnames) {
		return nil
	}
	gw, err := c.gateways()
	if err != nil {
		return err
	}
	c.log.Warn("production's HTTPRoute sent requests elsewhere than its deployed revision says (an interrupted operation): repairing it",
		"route", route.Namespace+"/"+route.Name, "had", backendsOf(route), "want", backendsOf(want))
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := gw.GatewayV1().HTTPRoutes(route.Namespace).Get(ctx, route.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Rules, cur.Spec.Hostnames = want.Spec.Rules, want.Spec.Hostnames
		_, err = gw.GatewayV1().HTTPRoutes(route.Namespace).Update(ctx, cur, metav1.UpdateOptions{FieldManager: "shipper"})
		return err
	})
}

// manifestHTTPRoute is the HTTPRoute name of a release manifest, nil when
// it has none.
func manifestHTTPRoute(manifest, name string) (*gwv1.HTTPRoute, error) {
	return manifestObject[gwv1.HTTPRoute](manifest, "HTTPRoute", name)
}

// manifestObject is the object of kind named name in a release manifest,
// nil when it has none.
func manifestObject[T any, PT interface {
	*T
	GetName() string
}](manifest, kind, name string) (*T, error) {
	for _, doc := range strings.Split(manifest, "\n---") {
		if !strings.Contains(doc, "\nkind: "+kind+"\n") {
			continue
		}
		obj := PT(new(T))
		if err := yaml.Unmarshal([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("reading the %s of the release manifest: %w", kind, err)
		}
		if obj.GetName() == name {
			return obj, nil
		}
	}
	return nil, nil
}

// requireGrant refuses to promote commit n on the gateway router unless
// its release carries the ReferenceGrant that lets production's HTTPRoute
// reference its Service: without it the Gateway would answer 500
// (RefNotPermitted) for production from the moment of the switch. A commit
// deployed with the ingress router has none.
func (c *Configuration) requireGrant(ctx context.Context, n Names) error {
	gw, err := c.gateways()
	if err != nil {
		return err
	}
	g, err := gw.GatewayV1beta1().ReferenceGrants(n.Namespace).Get(ctx, n.Release, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf(
			"its release has no ReferenceGrant %s/%s for production's HTTPRoute (deployed with the ingress router?): deploy it again with --router gateway, then promote",
			n.Namespace, n.Release)}
	}
	if err != nil {
		return fmt.Errorf("reading ReferenceGrant %s/%s: %w", n.Namespace, n.Release, err)
	}
	from := slices.ContainsFunc(g.Spec.From, func(f gwv1beta1.ReferenceGrantFrom) bool {
		return string(f.Group) == gwv1.GroupName && string(f.Kind) == "HTTPRoute" && string(f.Namespace) == n.ProductionNamespace
	})
	to := slices.ContainsFunc(g.Spec.To, func(t gwv1beta1.ReferenceGrantTo) bool {
		return t.Group == "" && t.Kind == "Service" && (t.Name == nil || string(*t.Name) == n.Release)
	})
	if from && to {
		return nil
	}
	return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf(
		"its ReferenceGrant %s/%s does not let HTTPRoutes of %s reference its Service: deploy it again", n.Namespace, n.Release, n.ProductionNamespace)}
}

// requireGateway refuses a promote whose Gateway does not exist or lacks
// the listener named, and one whose Gateway is not the one production's
// HTTPRoute is attached to: production is one route updated in place, so a
// wrong --gateway in a promote job would move it off the Gateway that
// serves it. (Moving production to another Gateway is a deliberate change:
// delete production's HTTPRoute's release by hand, or use a new app.)
func (c *Configuration) requireGateway(ctx context.Context, n Names) error {
	gw, err := c.gateways()
	if err != nil {
		return err
	}
	want := c.routing.Gateway
	g, err := gw.GatewayV1().Gateways(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &UsageError{Input: "--gateway", Value: want.Namespace + "/" + want.Name, Rule: "names no Gateway in the cluster (kubectl get gateways -A lists them)"}
	}
	if err != nil {
		return fmt.Errorf("reading Gateway %s: %w", want, err)
	}
	if want.Section != "" && !slices.ContainsFunc(g.Spec.Listeners, func(l gwv1.Listener) bool { return string(l.Name) == want.Section }) {
		return &UsageError{Input: "--gateway-section", Value: want.Section, Rule: fmt.Sprintf("Gateway %s/%s has no listener of that name", want.Namespace, want.Name)}
	}
	route, err := c.productionHTTPRoute(ctx, n)
	if err != nil || route == nil {
		return err
	}
	for _, p := range route.Spec.ParentRefs {
		if parentGateway(route.Namespace, p) != want {
			return &UsageError{Input: "--gateway", Value: want.String(), Rule: fmt.Sprintf(
				"production's HTTPRoute is attached to Gateway %s: promoting with another would move production off the Gateway that serves it; set SHIPPER_GATEWAY (and SHIPPER_GATEWAY_SECTION) as the app's other jobs do",
				parentGateway(route.Namespace, p))}
		}
	}
	return nil
}

// parentGateway is the Gateway a parentRef of a route in namespace names.
func parentGateway(namespace string, p gwv1.ParentReference) GatewayRef {
	g := GatewayRef{Namespace: namespace, Name: string(p.Name)}
	if p.Namespace != nil {
		g.Namespace = string(*p.Namespace)
	}
	if p.SectionName != nil {
		g.Section = string(*p.SectionName)
	}
	return g
}

// refusedGraceRoute is how long a route's condition may stay False at its
// current generation before awaitRoute reports it: a controller may report
// a reference as unresolved for a moment before it has seen the
// ReferenceGrant or Service made with it.
var refusedGraceRoute = 3 * time.Second

// awaitRoute waits until the Gateway controller has accepted the HTTPRoute
// namespace/name at its current generation, for this Gateway, and resolved
// its references: the conditions Accepted and ResolvedRefs True with
// observedGeneration equal to the route's generation. A condition False
// for longer than refusedGraceRoute is an error naming its reason (e.g.
// RefNotPermitted, NotAllowedByListeners, NoMatchingParent).
func (c *Configuration) awaitRoute(ctx context.Context, namespace, name string) error {
	gw, err := c.gateways()
	if err != nil {
		return err
	}
	var (
		refusedSince time.Time
		last         string
		parent       GatewayRef
	)
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		r, err := gw.GatewayV1().HTTPRoutes(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("reading HTTPRoute %s/%s: %w", namespace, name, err)
		}
		// The route's own parents, whatever Gateway this run was given: a
		// rollback run without --gateway waits for the right one.
		ready, refused := true, false
		for _, p := range r.Spec.ParentRefs {
			parent = parentGateway(r.Namespace, p)
			ok, no, why := routeConditions(r, parent)
			if !ok {
				ready, refused, last = false, no, why
				break
			}
		}
		switch {
		case ready:
			return true, nil
		case refused && refusedSince.IsZero():
			refusedSince = time.Now()
		case refused && time.Since(refusedSince) >= refusedGraceRoute:
			return false, &RouteError{Route: namespace + "/" + name, Gateway: parent, Reason: last}
		case !refused:
			refusedSince = time.Time{}
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		if last == noReport {
			last += ": is a controller running for this Gateway, and does the Gateway exist?"
		}
		return fmt.Errorf("waiting for the Gateway %s to accept HTTPRoute %s/%s: %s: %w", parent, namespace, name, last, ctx.Err())
	}
	return err
}

// noReport is routeConditions' account of a route no controller has
// reported on for a Gateway.
const noReport = "the Gateway has not reported on the route"

// routeConditions reads route's status for gateway: ready when Accepted
// and ResolvedRefs are True at the route's generation, refused when one of
// them is False at it, why a short account of what is missing.
func routeConditions(r *gwv1.HTTPRoute, gateway GatewayRef) (ready, refused bool, why string) {
	for _, p := range r.Status.Parents {
		ns := r.Namespace
		if p.ParentRef.Namespace != nil {
			ns = string(*p.ParentRef.Namespace)
		}
		if ns != gateway.Namespace || string(p.ParentRef.Name) != gateway.Name {
			continue
		}
		if gateway.Section != "" && (p.ParentRef.SectionName == nil || string(*p.ParentRef.SectionName) != gateway.Section) {
			continue
		}
		ok := 0
		for _, t := range []gwv1.RouteConditionType{gwv1.RouteConditionAccepted, gwv1.RouteConditionResolvedRefs} {
			cond := meta.FindStatusCondition(p.Conditions, string(t))
			switch {
			case cond == nil || cond.ObservedGeneration != r.Generation:
				why = fmt.Sprintf("condition %s not yet reported for generation %d", t, r.Generation)
			case cond.Status == metav1.ConditionTrue:
				ok++
			case cond.Status == metav1.ConditionUnknown:
				why = fmt.Sprintf("condition %s is Unknown: %s (%s)", t, cond.Reason, cond.Message)
			default:
				return false, true, fmt.Sprintf("%s is %s: %s (%s)", t, cond.Status, cond.Reason, cond.Message)
			}
		}
		return ok == 2, false, why
	}
	return false, false, noReport
}

// RouteError is a route the Gateway refused: the condition and its
// reason, as the controller reported them.
type RouteError struct {
	Route   string
	Gateway GatewayRef
	Reason  string
}

func (e *RouteError) Error() string {
	return fmt.Sprintf("the Gateway %s refused HTTPRoute %s: %s", e.Gateway, e.Route, e.Reason)
}
