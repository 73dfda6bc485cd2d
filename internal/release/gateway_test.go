package release_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

var testGateway = release.GatewayRef{Namespace: "gateway-system", Name: "shared"}

// gatewayFixture is a deployFixture whose Configuration uses the gateway
// router, on an apiserver with the Gateway API's CRDs, and a simulated
// Gateway controller (gatewaySim) that reports on routes as Traefik does
// on the real node (make e2e).
type gatewayFixture struct {
	*deployFixture
	gw  gwclient.Interface
	sim *gatewaySim
}

func newGatewayFixture(t *testing.T) *gatewayFixture {
	t.Helper()
	f := newDeployFixture(t)
	if err := f.env.InstallGatewayAPI(context.Background()); err != nil {
		t.Fatal(err)
	}
	gw, err := gwclient.NewForConfig(f.env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{testGateway.Name, "other"} {
		if err := ensureGateway(context.Background(), f.cs, gw, testGateway.Namespace, name); err != nil {
			t.Fatal(err)
		}
	}
	g := &gatewayFixture{deployFixture: f, gw: gw}
	g.cfg = g.config(t, release.Routing{Router: release.RouterGateway, Gateway: testGateway})
	g.sim = startGatewaySim(t, gw, f.app)
	return g
}

// ensureGateway makes the Gateway namespace/name (of a class no controller
// runs here: gatewaySim reports for it) if it does not exist.
func ensureGateway(ctx context.Context, cs kubernetes.Interface, gw gwclient.Interface, namespace, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = gw.GatewayV1().Gateways(namespace).Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: gwv1.GatewaySpec{GatewayClassName: "simulated", Listeners: []gwv1.Listener{
			{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 80},
		}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (f *gatewayFixture) config(t *testing.T, r release.Routing) *release.Configuration {
	t.Helper()
	cfg, err := release.NewConfiguration(f.env.AdminConfig(), release.WithRouting(r))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// productionRoute returns production's HTTPRoute.
func (f *gatewayFixture) productionRoute(t *testing.T) *gwv1.HTTPRoute {
	t.Helper()
	r, err := f.gw.GatewayV1().HTTPRoutes(f.app+"-production").Get(context.Background(), f.app+"-production", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("production HTTPRoute: %v", err)
	}
	return r
}

func backends(r *gwv1.HTTPRoute) []string {
	var out []string
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			ns := r.Namespace
			if b.Namespace != nil {
				ns = string(*b.Namespace)
			}
			out = append(out, ns+"/"+string(b.Name))
		}
	}
	return out
}

// TestGatewayRouterSwitchesOneRouteInPlace: on the gateway router a commit
// gets an HTTPRoute and a ReferenceGrant and no Ingress; production is one
// HTTPRoute in its own namespace that promote and rollback update in
// place (same object, a new generation), never a second route; a commit
// the route sends requests to cannot be deleted.
func TestGatewayRouterSwitchesOneRouteInPlace(t *testing.T) {
	f := newGatewayFixture(t)
	ctx := context.Background()
	for _, sha := range []string{shaA, shaB} {
		f.deployReady(t, sha)
		rel := f.app + "-" + sha[:8]
		route, err := f.gw.GatewayV1().HTTPRoutes(rel).Get(ctx, rel, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("preview HTTPRoute of %s: %v", rel, err)
		}
		if got, want := backends(route), []string{rel + "/" + rel}; !slices.Equal(got, want) {
			t.Errorf("preview route of %s sends to %v, want %v", rel, got, want)
		}
		grant, err := f.gw.GatewayV1beta1().ReferenceGrants(rel).Get(ctx, rel, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("ReferenceGrant of %s: %v", rel, err)
		}
		if len(grant.Spec.From) != 1 || string(grant.Spec.From[0].Namespace) != f.app+"-production" || len(grant.Spec.To) != 1 || grant.Spec.To[0].Name == nil || string(*grant.Spec.To[0].Name) != rel {
			t.Errorf("ReferenceGrant of %s = %+v, want from HTTPRoutes of %s-production to Service %s only", rel, grant.Spec, f.app, rel)
		}
		if ings, _ := f.cs.NetworkingV1().Ingresses(rel).List(ctx, metav1.ListOptions{}); len(ings.Items) > 0 {
			t.Errorf("the gateway router made %d Ingresses in %s", len(ings.Items), rel)
		}
	}

	if _, err := f.promote(t, shaA); err != nil {
		t.Fatalf("promote A: %v", err)
	}
	first := f.productionRoute(t)
	// A promote with another Gateway than production's route is attached
	// to, or one that does not exist, or a listener it lacks, is refused
	// before anything changes: production would leave the Gateway serving it.
	for _, g := range []release.GatewayRef{
		{Namespace: testGateway.Namespace, Name: "other"},
		{Namespace: testGateway.Namespace, Name: "missing"},
		{Namespace: testGateway.Namespace, Name: testGateway.Name, Section: "https"},
	} {
		saved := f.cfg
		f.cfg = f.config(t, release.Routing{Router: release.RouterGateway, Gateway: g})
		_, err := f.promote(t, shaB)
		f.cfg = saved
		if !release.IsUsage(err) {
			t.Errorf("promote with Gateway %s: %v, want a refusal", g, err)
		}
		if r := f.productionRoute(t); r.Generation != first.Generation {
			t.Errorf("refused promote with Gateway %s changed production's route", g)
		}
	}
	nsA, nsB := f.app+"-aaaaaaaa", f.app+"-bbbbbbbb"
	if got := backends(first); !slices.Equal(got, []string{nsA + "/" + nsA}) {
		t.Errorf("after promote A production sends to %v", got)
	}
	if p, err := f.promote(t, shaB); err != nil || p.SHA != "bbbbbbbb" {
		t.Fatalf("promote B = %+v, %v", p, err)
	}
	second := f.productionRoute(t)
	if second.UID != first.UID || second.Generation <= first.Generation {
		t.Errorf("promote B made route %s generation %d from %s generation %d: want the same object, updated", second.UID, second.Generation, first.UID, first.Generation)
	}
	if got := backends(second); !slices.Equal(got, []string{nsB + "/" + nsB}) {
		t.Errorf("after promote B production sends to %v", got)
	}
	if got := f.productionIngresses(t); len(got) > 0 {
		t.Errorf("production Ingresses in %v on the gateway router", got)
	}
	f.noViolations(t, "after promote B")

	if live := f.live(t); live.URL != "https://"+f.app+".example.com" || live.SHA != "bbbbbbbb" {
		t.Errorf("status on the gateway router = %+v, want B at https://%s.example.com", live, f.app)
	}
	p, err := release.NewRollback(f.cfg).Run(ctx, names(t, f.app, ""), "")
	if err != nil || p.SHA != "aaaaaaaa" {
		t.Fatalf("rollback = %+v, %v; want A", p, err)
	}
	third := f.productionRoute(t)
	if third.UID != first.UID || !slices.Equal(backends(third), []string{nsA + "/" + nsA}) {
		t.Errorf("after rollback route %s sends to %v, want %s to A", third.UID, backends(third), first.UID)
	}
	f.noViolations(t, "after rollback")

	// What a promote of B killed after Helm patched the route, before it
	// recorded its revision, leaves: the route sends to B, the records
	// name A. Status reports it; B cannot be deleted (the route, not the
	// records, is named); the next promote of A, which Helm computes as
	// no change, repairs the route.
	third.Spec.Rules[0].BackendRefs = second.Spec.Rules[0].BackendRefs
	if _, err := f.gw.GatewayV1().HTTPRoutes(third.Namespace).Update(ctx, third, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	problems, err := release.NewStatus(f.cfg).Check(ctx, names(t, f.app, ""))
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0].Detail, "HTTPRoute sends requests to ["+nsB+"]") {
		t.Errorf("status over a route left on B: %v, %v; want the violation named", problems, err)
	}
	_, err = release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaB))
	if !release.IsUsage(err) || !strings.Contains(err.Error(), "HTTPRoute") {
		t.Errorf("delete of the commit production's HTTPRoute sends to: %v, want a refusal naming the route", err)
	}
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatalf("promote A over the interrupted state: %v", err)
	}
	if got := backends(f.productionRoute(t)); !slices.Equal(got, []string{nsA + "/" + nsA}) {
		t.Errorf("after promote A over the interrupted state production sends to %v", got)
	}
	f.noViolations(t, "after the repair")
	if _, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaB)); err != nil {
		t.Errorf("delete of B once production left it: %v", err)
	}
}

// TestGatewayPromoteRefusesACommitWithoutGrant: a commit deployed with the
// ingress router has no ReferenceGrant; promoting it on the gateway router
// would make production answer 500 (RefNotPermitted), so it is refused
// before anything changes.
func TestGatewayPromoteRefusesACommitWithoutGrant(t *testing.T) {
	f := newGatewayFixture(t)
	gatewayCfg := f.cfg
	f.cfg = f.config(t, release.Routing{Router: release.RouterIngress})
	f.deployReady(t, shaA)
	f.cfg = gatewayCfg
	_, err := f.promote(t, shaA)
	if !release.IsUsage(err) || !strings.Contains(err.Error(), "ReferenceGrant") || !strings.Contains(err.Error(), "--router gateway") {
		t.Fatalf("promote of a commit without a ReferenceGrant: %v, want a refusal naming the fix", err)
	}
	_, err = f.gw.GatewayV1().HTTPRoutes(f.app+"-production").Get(context.Background(), f.app+"-production", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("refused promote left a production HTTPRoute (err %v)", err)
	}
}

// TestGatewayRefusedRouteIsReported: promote waits for the Gateway to
// accept the route's new generation; a route the Gateway refuses is an
// error naming the condition and its reason.
func TestGatewayRefusedRouteIsReported(t *testing.T) {
	f := newGatewayFixture(t)
	f.deployReady(t, shaA)
	f.sim.refuse.Store("NotAllowedByListeners")
	_, err := f.promote(t, shaA)
	var re *release.RouteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "Accepted is False: NotAllowedByListeners") {
		t.Fatalf("promote through a Gateway that refuses the route: %v, want a RouteError naming the condition", err)
	}
	f.sim.refuse.Store("")
}

// TestGatewayRouterTakesOverFromIngress: an app promoted on the ingress
// router moves to the gateway router with its next promote (after a
// deploy of the commit with the gateway router): Helm's upgrade of the
// production release creates the HTTPRoute and deletes the Ingress; no
// production Ingress is left and the invariants hold.
func TestGatewayRouterTakesOverFromIngress(t *testing.T) {
	f := newGatewayFixture(t)
	gatewayCfg := f.cfg
	f.cfg = f.config(t, release.Routing{Router: release.RouterIngress})
	f.deployReady(t, shaA)
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	if got := f.productionIngresses(t); len(got) != 1 {
		t.Fatalf("ingress router: production Ingresses %v", got)
	}
	f.cfg = gatewayCfg
	f.deployReady(t, shaB)
	if _, err := f.promote(t, shaB); err != nil {
		t.Fatalf("promote on the gateway router: %v", err)
	}
	if got := f.productionIngresses(t); len(got) > 0 {
		t.Errorf("production Ingresses %v left after the move to the gateway router", got)
	}
	nsB := f.app + "-bbbbbbbb"
	if got := backends(f.productionRoute(t)); !slices.Equal(got, []string{nsB + "/" + nsB}) {
		t.Errorf("production sends to %v", got)
	}
	f.noViolations(t, "after the move to the gateway router")
}

// gatewaySim stands in for the Gateway controller on the apiserver-only
// harness (the real one, Traefik, runs in make e2e): it reports Accepted
// and ResolvedRefs for every HTTPRoute of app attached to testGateway at
// its current generation, ResolvedRefs False (RefNotPermitted) for a
// backend in another namespace that no ReferenceGrant there allows, and
// Accepted False with the reason in refuse when it is set.
type gatewaySim struct {
	refuse atomic.Value // string
}

func startGatewaySim(t *testing.T, gw gwclient.Interface, app string) *gatewaySim {
	s := &gatewaySim{}
	s.refuse.Store("")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			routes, err := gw.GatewayV1().HTTPRoutes("").List(ctx, metav1.ListOptions{LabelSelector: "shipper.dev/app=" + app})
			if err == nil {
				for i := range routes.Items {
					s.report(ctx, gw, &routes.Items[i])
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *gatewaySim) report(ctx context.Context, gw gwclient.Interface, r *gwv1.HTTPRoute) {
	accepted := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: r.Generation, LastTransitionTime: metav1.Now()}
	if reason := s.refuse.Load().(string); reason != "" {
		accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, reason, "refused by the simulated Gateway"
	}
	resolved := metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionTrue, Reason: "ResolvedRefs", ObservedGeneration: r.Generation, LastTransitionTime: metav1.Now()}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if b.Namespace != nil && string(*b.Namespace) != r.Namespace && !granted(ctx, gw, r.Namespace, string(*b.Namespace), string(b.Name)) {
				resolved.Status, resolved.Reason = metav1.ConditionFalse, "RefNotPermitted"
			}
		}
	}
	for _, p := range r.Status.Parents {
		if c := meta.FindStatusCondition(p.Conditions, "Accepted"); c != nil && c.ObservedGeneration == r.Generation && c.Status == accepted.Status && c.Reason == accepted.Reason {
			if c := meta.FindStatusCondition(p.Conditions, "ResolvedRefs"); c != nil && c.Status == resolved.Status {
				return // reported already
			}
		}
	}
	ns := gwv1.Namespace(testGateway.Namespace)
	r.Status.Parents = []gwv1.RouteParentStatus{{
		ParentRef:      gwv1.ParentReference{Namespace: &ns, Name: gwv1.ObjectName(testGateway.Name)},
		ControllerName: "example.com/simulated-gateway",
		Conditions:     []metav1.Condition{accepted, resolved},
	}}
	_, _ = gw.GatewayV1().HTTPRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
}

func granted(ctx context.Context, gw gwclient.Interface, from, ns, service string) bool {
	grants, err := gw.GatewayV1beta1().ReferenceGrants(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, g := range grants.Items {
		fromOK, toOK := false, false
		for _, f := range g.Spec.From {
			fromOK = fromOK || string(f.Kind) == "HTTPRoute" && string(f.Namespace) == from
		}
		for _, to := range g.Spec.To {
			toOK = toOK || string(to.Kind) == "Service" && (to.Name == nil || string(*to.Name) == service)
		}
		if fromOK && toOK {
			return true
		}
	}
	return false
}

// weights are route's backends as "namespace:weight".
func weights(r *gwv1.HTTPRoute) []string {
	var out []string
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			w := int32(1)
			if b.Weight != nil {
				w = *b.Weight
			}
			out = append(out, fmt.Sprintf("%s:%d", string(*b.Namespace), w))
		}
	}
	return out
}

func (f *gatewayFixture) promoteWeight(t *testing.T, sha string, weight int) (*release.Production, error) {
	t.Helper()
	return f.promote(t, sha, func(p *release.Promote) { p.Weight = weight })
}

// TestGatewayCanary: promote --weight sends that share of production to a
// commit beside the live one, each step one revision of the one route;
// rollback during a canary returns everything to the live commit; promote
// without a weight finishes. A canary needs the gateway router, a live
// commit, and another commit than the live one; the canary commit cannot
// be deleted while it gets requests.
func TestGatewayCanary(t *testing.T) {
	f := newGatewayFixture(t)
	ctx := context.Background()
	nsA, nsB := f.app+"-aaaaaaaa", f.app+"-bbbbbbbb"
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	if _, err := f.promoteWeight(t, shaB, 10); !release.IsUsage(err) || !strings.Contains(err.Error(), "live commit beside it") {
		t.Errorf("canary before any production: %v, want a refusal", err)
	}
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.promoteWeight(t, shaA, 10); !release.IsUsage(err) || !strings.Contains(err.Error(), "is live") {
		t.Errorf("canary of the live commit: %v, want a refusal", err)
	}
	ingress := f.config(t, release.Routing{Router: release.RouterIngress})
	p := release.NewPromote(ingress)
	p.Hosts, p.Weight = release.Hosts{Domain: "example.com"}, 10
	if _, err := p.Run(ctx, names(t, f.app, shaB)); !release.IsUsage(err) || !strings.Contains(err.Error(), "gateway router") {
		t.Errorf("canary on the ingress router: %v, want a refusal", err)
	}
	first := f.productionRoute(t)

	for _, step := range []struct {
		weight int
		want   []string
	}{
		{10, []string{nsA + ":90", nsB + ":10"}},
		{50, []string{nsA + ":50", nsB + ":50"}},
	} {
		prod, err := f.promoteWeight(t, shaB, step.weight)
		if err != nil {
			t.Fatalf("canary %d%%: %v", step.weight, err)
		}
		if prod.SHA != "aaaaaaaa" || prod.Canary == nil || prod.Canary.SHA != "bbbbbbbb" || prod.Canary.Weight != step.weight {
			t.Errorf("canary %d%%: production %+v canary %+v, want A live and B at %d%%", step.weight, prod, prod.Canary, step.weight)
		}
		r := f.productionRoute(t)
		if got := weights(r); !slices.Equal(got, step.want) || r.UID != first.UID {
			t.Errorf("canary %d%%: route %s sends %v, want %s sending %v", step.weight, r.UID, got, first.UID, step.want)
		}
		f.noViolations(t, fmt.Sprintf("canary %d%%", step.weight))
		commits, err := release.NewList(f.cfg).Run(ctx, names(t, f.app, ""))
		if err != nil {
			t.Fatal(err)
		}
		for _, cm := range commits {
			want := map[string]string{"aaaaaaaa": fmt.Sprintf("live %d", 100-step.weight), "bbbbbbbb": fmt.Sprintf("canary %d", step.weight)}[cm.Short]
			got := fmt.Sprintf("live %d", cm.Weight)
			if cm.Canary {
				got = fmt.Sprintf("canary %d", cm.Weight)
			}
			if got != want || cm.Live == cm.Canary {
				t.Errorf("list during the canary: %s is %s (live %t), want %s", cm.Short, got, cm.Live, want)
			}
		}
		if _, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaB)); !release.IsUsage(err) {
			t.Errorf("delete of the canary commit: %v, want a refusal", err)
		}
	}

	// Abort: everything back to A, as before the canary.
	if prod, err := release.NewRollback(f.cfg).Run(ctx, names(t, f.app, ""), ""); err != nil || prod.SHA != "aaaaaaaa" || prod.Canary != nil {
		t.Fatalf("rollback during the canary = %+v, %v; want A alone", prod, err)
	}
	if got := weights(f.productionRoute(t)); !slices.Equal(got, []string{nsA + ":100"}) {
		t.Errorf("after the abort production sends %v", got)
	}
	f.noViolations(t, "after the abort")

	// Again, then finish.
	if _, err := f.promoteWeight(t, shaB, 10); err != nil {
		t.Fatal(err)
	}
	prod, err := f.promote(t, shaB)
	if err != nil || prod.SHA != "bbbbbbbb" || prod.Canary != nil {
		t.Fatalf("finishing the canary = %+v, %v; want B alone", prod, err)
	}
	if got := weights(f.productionRoute(t)); !slices.Equal(got, []string{nsB + ":100"}) {
		t.Errorf("after the finish production sends %v", got)
	}
	f.noViolations(t, "after the finish")
	// Rolling back the finished canary returns to A, a whole promotion.
	if prod, err := release.NewRollback(f.cfg).Run(ctx, names(t, f.app, ""), ""); err != nil || prod.SHA != "aaaaaaaa" || prod.Canary != nil {
		t.Errorf("rollback after the finish = %+v, %v; want A alone", prod, err)
	}
}

// TestGatewayGrantsOnlyToTheAppsOwnProductionNamespace: a commit's
// ReferenceGrant names <app>-production, so that namespace is made, this
// project's, before any grant exists: a project that squats it first (as
// the admission policy allows for its own labels) gets no grant from
// another project's deploy, which is refused with nothing created. And the
// live commit is not re-deployed on the ingress router, which would drop
// its grant under production's HTTPRoute.
func TestGatewayGrantsOnlyToTheAppsOwnProductionNamespace(t *testing.T) {
	f := newGatewayFixture(t)
	ctx := context.Background()
	f.deployReady(t, shaA)
	prodNS, err := f.cs.CoreV1().Namespaces().Get(ctx, f.app+"-production", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("a gateway deploy made no production namespace for its grant: %v", err)
	}
	if prodNS.Labels[release.LabelRole] != "production" {
		t.Errorf("production namespace labels %v", prodNS.Labels)
	}
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	ingress := f.config(t, release.Routing{Router: release.RouterIngress})
	d := release.NewDeploy(ingress)
	d.Hosts, d.Wait = release.Hosts{Domain: "preview.example.com"}, false
	if _, err := d.Run(ctx, names(t, f.app, shaA), f.image); !release.IsUsage(err) || !strings.Contains(err.Error(), "--router gateway") {
		t.Errorf("re-deploy of the live commit on the ingress router: %v, want a refusal", err)
	}
	if _, err := f.gw.GatewayV1beta1().ReferenceGrants(f.app+"-aaaaaaaa").Get(ctx, f.app+"-aaaaaaaa", metav1.GetOptions{}); err != nil {
		t.Errorf("the refused re-deploy removed the live commit's grant: %v", err)
	}

	// Another app whose production namespace a second project squatted.
	victim := uniqueApp("victim")
	cleanupApp(t, f.cs, victim)
	_, err = f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: victim + "-production",
		Labels: map[string]string{release.LabelManagedBy: release.ManagedBy, release.LabelApp: victim,
			release.LabelRole: "production", release.LabelProject: "202"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d = release.NewDeploy(f.cfg)
	d.Hosts, d.Wait = release.Hosts{Domain: "preview.example.com"}, false
	if _, err := d.Run(ctx, names(t, victim, shaA), f.image); !release.IsUsage(err) {
		t.Errorf("gateway deploy of an app whose production namespace another project made: %v, want a refusal", err)
	}
	if _, err := f.cs.CoreV1().Namespaces().Get(ctx, victim+"-aaaaaaaa", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused deploy made the commit's namespace (err %v)", err)
	}
}

// TestHelmCLIRollbackOfTheGatewayRoute: `helm rollback` by hand of the
// production release on the gateway router moves the one HTTPRoute back,
// canary weights included, and shipper's status reads it from the labels
// Helm copies: the canary and its weight too.
func TestHelmCLIRollbackOfTheGatewayRoute(t *testing.T) {
	f := newGatewayFixture(t)
	helmBin, err := testenv.Binary("helm")
	if err != nil {
		t.Fatal(err)
	}
	nsA, nsB, prodNS := f.app+"-aaaaaaaa", f.app+"-bbbbbbbb", f.app+"-production"
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	if _, err := f.promote(t, shaA); err != nil { // revision 1
		t.Fatal(err)
	}
	if _, err := f.promoteWeight(t, shaB, 20); err != nil { // revision 2
		t.Fatal(err)
	}
	for _, step := range []struct {
		revision string
		live     string
		canary   int
		weights  []string
	}{
		{"1", "aaaaaaaa", 0, []string{nsA + ":100"}},
		{"2", "aaaaaaaa", 20, []string{nsA + ":80", nsB + ":20"}},
	} {
		cmd := exec.Command(helmBin, "rollback", prodNS, step.revision, "-n", prodNS, "--kubeconfig", f.env.Kubeconfig)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm rollback %s: %v\n%s", step.revision, err, out)
		}
		live := f.live(t)
		canary := 0
		if live.Canary != nil {
			canary = live.Canary.Weight
		}
		if live.SHA != step.live || canary != step.canary {
			t.Errorf("after helm rollback to %s: status %s with canary %d%%, want %s with %d%%", step.revision, live.SHA, canary, step.live, step.canary)
		}
		if got := weights(f.productionRoute(t)); !slices.Equal(got, step.weights) {
			t.Errorf("after helm rollback to %s: production sends %v, want %v", step.revision, got, step.weights)
		}
		f.noViolations(t, "after helm rollback to "+step.revision)
	}
}

// TestGatewayBranchAlias: on the gateway router a branch alias is one
// HTTPRoute "<app>-ref-<ref>" in the production namespace, updated in place
// from one commit's Service to the next (same object), admitted by each
// commit's ReferenceGrant; delete --with-alias removes it.
func TestGatewayBranchAlias(t *testing.T) {
	f := newGatewayFixture(t)
	ctx := context.Background()
	route := func() *gwv1.HTTPRoute {
		r, err := f.gw.GatewayV1().HTTPRoutes(f.app+"-production").Get(ctx, f.app+"-ref-main", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("alias HTTPRoute: %v", err)
		}
		return r
	}
	a, err := f.deployBranch(t, shaA, "main", commitTime(1))
	if err != nil {
		t.Fatalf("deploy A: %v", err)
	}
	first := route()
	if got := backends(first); len(got) != 1 || got[0] != f.app+"-aaaaaaaa/"+f.app+"-aaaaaaaa" {
		t.Errorf("alias route backends %v, want A's Service", got)
	}
	if len(first.Spec.Hostnames) != 1 || string(first.Spec.Hostnames[0]) != f.app+"--main.preview.example.com" || first.Labels["shipper.dev/role"] != "alias" {
		t.Errorf("alias route hostnames %v, role %q", first.Spec.Hostnames, first.Labels["shipper.dev/role"])
	}
	if a.Alias == nil || !a.Alias.Moved {
		t.Errorf("deploy A alias = %+v, want moved", a.Alias)
	}
	if _, err := f.deployBranch(t, shaB, "main", commitTime(2)); err != nil {
		t.Fatalf("deploy B: %v", err)
	}
	second := route()
	if second.UID != first.UID {
		t.Errorf("the alias route was replaced (UID %s -> %s), want it updated in place", first.UID, second.UID)
	}
	if got := backends(second); len(got) != 1 || got[0] != f.app+"-bbbbbbbb/"+f.app+"-bbbbbbbb" {
		t.Errorf("alias route backends %v after B, want B's Service", got)
	}
	list, err := f.cs.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{LabelSelector: "shipper.dev/app=" + f.app})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("the gateway router made %d Ingresses (err %v), want none", len(list.Items), err)
	}
	f.noViolations(t, "after the alias moved")
	if _, err := f.deleteCommit(shaB, ""); err == nil || !strings.Contains(err.Error(), "--with-alias") {
		t.Fatalf("delete B = %v, want refused naming --with-alias", err)
	}
	// The ingress router would drop the ReferenceGrant the alias route
	// needs: refused, nothing changed.
	ingress := f.config(t, release.Routing{Router: release.RouterIngress})
	d := release.NewDeploy(ingress)
	d.Hosts, d.Wait = release.Hosts{Domain: "preview.example.com"}, false
	if _, err := d.Run(ctx, names(t, f.app, shaB), f.image); !release.IsUsage(err) || !strings.Contains(err.Error(), "alias of branch main") {
		t.Errorf("re-deploy of the aliased commit with the ingress router: %v, want refused", err)
	}
	// So is one given the commit's 7-character SHA: the alias routes are
	// checked against the namespace it resolves to, not the one its short
	// SHA would name (the reads sent before it is resolved).
	if _, err := d.Run(ctx, names(t, f.app, shaB[:7]), f.image); !release.IsUsage(err) || !strings.Contains(err.Error(), "alias of branch main") {
		t.Errorf("re-deploy of the aliased commit by its 7-character SHA with the ingress router: %v, want refused", err)
	}
	if _, err := f.deleteCommit(shaB, "main"); err != nil {
		t.Fatalf("delete B --with-alias: %v", err)
	}
	if _, err := f.gw.GatewayV1().HTTPRoutes(f.app+"-production").Get(ctx, f.app+"-ref-main", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("alias HTTPRoute after delete --with-alias: %v, want not found", err)
	}
}
