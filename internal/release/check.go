package release

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The invariants of an app, which every operation keeps and the next
// operation restores after an interrupted one (kill -9, a lost apiserver):
//
//  1. The production host is routed by exactly one object: on the ingress
//     router the Ingress in the namespace of the commit production's
//     deployed revision names; on the gateway router production's HTTPRoute
//     in its own namespace, whose backends include that commit's Service
//     (and no production Ingress is left from an earlier router).
//  2. That commit's release is deployed and its namespace active.
//  3. No release is left pending-* or uninstalling once the next operation
//     on it ran (repairPending resolves both).
//  4. Every namespace labelled for the app holds its release (except while
//     its own operation runs: a deploy creates the namespace first).
//  5. With per-commit databases, every database shipper made for the app
//     belongs to a commit, and every commit's role has its database
//     (database.go; Status.Check).
//
// Check reports the ones that do not hold, each with the command that
// repairs it; `shipper status` prints them and the tests call it after
// every scenario.

// Violation is one invariant that does not hold.
type Violation struct {
	Invariant string `json:"invariant"`
	Detail    string `json:"detail"`
	Repair    string `json:"repair"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (repair: %s)", v.Invariant, v.Detail, v.Repair)
}

// Check reports the invariants of n's app that do not hold.
func (s *Status) Check(ctx context.Context, n Names) ([]Violation, error) {
	if err := s.cfg.beginRead(ctx, n); err != nil {
		return nil, err
	}
	out, err := s.cfg.check(ctx, n)
	if err != nil {
		return nil, err
	}
	dbs, err := s.cfg.databaseViolations(ctx, n)
	return append(out, dbs...), err
}

// check reads n's app and reports its broken invariants: first those its
// records and namespaces tell, then those of production's routes.
func (c *Configuration) check(ctx context.Context, n Names) ([]Violation, error) {
	app, err := c.readApp(ctx, n)
	if err != nil {
		return nil, err
	}
	out := app.checkRecords(n)
	if app.live == nil {
		return out, nil
	}
	prod, err := c.checkProduction(ctx, n, app)
	if err != nil {
		return nil, err
	}
	return append(out, prod...), nil
}

// active reports whether the app's namespace name exists and is not being
// deleted.
func (app *appState) active(name string) bool {
	for _, ns := range app.namespaces {
		if ns.Name == name {
			return ns.DeletionTimestamp == nil
		}
	}
	return false
}

// deployed reports whether release name's latest revision is deployed in
// an active namespace.
func (app *appState) deployed(name string) bool {
	r, ok := app.latest[name]
	return ok && r.Status == "deployed" && app.active(name)
}

// checkRecords reports the invariants the records and namespaces tell: no
// release left mid-operation, every namespace holding its release, every
// alias serving a deployed commit.
func (app *appState) checkRecords(n Names) []Violation {
	var out []Violation
	for name, r := range app.latest {
		if strings.HasPrefix(r.Status, "pending-") || r.Status == "uninstalling" {
			repair := "shipper deploy --sha " + r.SHA
			if r.Ref != "" {
				repair += " --ref " + r.Ref + " (moves and repairs the alias)"
			}
			if name == n.ProductionRelease {
				repair = "shipper promote or shipper rollback"
			}
			out = append(out, Violation{"no release left mid-operation", fmt.Sprintf("release %s revision %d is %s", name, r.Version, r.Status), repair})
		}
	}
	for _, ns := range app.namespaces {
		if _, ok := app.latest[ns.Name]; !ok && ns.DeletionTimestamp == nil {
			out = append(out, Violation{"every namespace holds its release", fmt.Sprintf("namespace %s has no release record", ns.Name),
				"shipper deploy --sha " + ns.Labels[LabelSHA] + " or shipper delete --sha " + ns.Labels[LabelSHA]})
		}
	}
	for _, a := range app.aliases {
		if !app.deployed(n.AppPart + "-" + a.SHA) {
			out = append(out, Violation{"every alias serves a deployed commit",
				fmt.Sprintf("the alias of %s (release %s) serves %s, whose release is not deployed", a.Ref, a.Name, a.SHA),
				"shipper deploy of a commit of " + a.Ref + " (moves the alias), or helm uninstall " + a.Name + " -n " + n.ProductionNamespace})
		}
	}
	return out
}

// checkProduction reports the invariants of production, which serves
// app.live: routed by exactly one object, to the live commit (and the
// canary) as its revision says, each of them deployed.
func (c *Configuration) checkProduction(ctx context.Context, n Names, app *appState) ([]Violation, error) {
	live := app.live
	httpRoute, err := c.productionHTTPRoute(ctx, n)
	if err != nil {
		return nil, err
	}
	ingressLive := live.SHA
	if httpRoute != nil {
		ingressLive = "" // the HTTPRoute routes: every production Ingress is a stray
	}
	routes, err := c.routes(ctx, n, ingressLive)
	if err != nil {
		return nil, err
	}
	out := checkRoutes(n, live, httpRoute, routes)
	if live.Canary != "" {
		canary := n.AppPart + "-" + live.Canary
		if httpRoute == nil || !slices.Contains(backendNamespaces(httpRoute), canary) {
			out = append(out, Violation{"production is routed to the canary",
				fmt.Sprintf("revision %d gives %d%% to %s, which no production route sends requests to", live.Version, live.CanaryWeight, canary),
				"shipper promote --sha " + live.Canary + " --weight " + strconv.Itoa(live.CanaryWeight) + " (re-applies the route), or shipper rollback"})
		}
		if !app.deployed(canary) {
			out = append(out, Violation{"the canary commit is deployed",
				fmt.Sprintf("revision %d gives %d%% to %s, whose release is not deployed", live.Version, live.CanaryWeight, live.Canary),
				"shipper rollback (back to " + live.SHA + " alone)"})
		}
	}
	target := n.AppPart + "-" + live.SHA
	if !app.deployed(target) {
		t, ok := app.latest[target]
		status := "missing"
		if ok {
			status = t.Status
		}
		if ok && !app.active(target) {
			status = "being deleted"
		}
		out = append(out, Violation{"the live commit is deployed",
			fmt.Sprintf("production serves %s, whose release is %s", live.SHA, status),
			"shipper deploy --sha " + live.SHA + ", or promote another commit"})
	}
	return out, nil
}

// checkRoutes reports how production's routes (its HTTPRoute, nil on the
// ingress router, and its Ingresses) differ from what revision live says:
// another route beside the live one, none to the live commit, or an
// HTTPRoute with other backends than the revision names.
func checkRoutes(n Names, live *record, httpRoute *gwv1.HTTPRoute, routes []productionRoute) []Violation {
	var out []Violation
	target := n.AppPart + "-" + live.SHA
	var elsewhere []string
	liveRouted := httpRoute != nil && slices.Contains(backendNamespaces(httpRoute), target)
	for _, r := range routes {
		if r.Live {
			liveRouted = true
		} else {
			elsewhere = append(elsewhere, r.Namespace)
		}
	}
	if len(elsewhere) > 0 {
		out = append(out, Violation{"production is routed by exactly one object",
			fmt.Sprintf("production Ingresses also in %s, beside the live commit %s", strings.Join(elsewhere, ", "), live.SHA),
			"shipper promote or shipper rollback (removes the stray routes)"})
	}
	if !liveRouted {
		missing := fmt.Sprintf("no production Ingress in %s, which revision %d names", target, live.Version)
		repair := "shipper rollback --to " + live.SHA + ", or promote a deployed commit"
		if httpRoute != nil {
			missing = fmt.Sprintf("production's HTTPRoute sends requests to %v, not to %s, which revision %d names",
				backendNamespaces(httpRoute), target, live.Version)
			repair = "shipper promote --sha " + live.SHA + " (re-applies the route), or promote another deployed commit"
		}
		return append(out, Violation{"production is routed to the live commit", missing, repair})
	}
	if httpRoute == nil {
		return out
	}
	// Exactly the backends the revision names: a canary step killed after
	// Helm patched the route leaves a backend the records lack.
	want := []string{target}
	repair := "shipper promote --sha " + live.SHA + " (re-applies the route)"
	if live.Canary != "" {
		want = append(want, n.AppPart+"-"+live.Canary)
		repair = "shipper promote --sha " + live.Canary + " --weight " + strconv.Itoa(live.CanaryWeight) + " (re-applies the route)"
	}
	got := backendNamespaces(httpRoute)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		out = append(out, Violation{"production is routed as its revision says",
			fmt.Sprintf("production's HTTPRoute sends requests to %v, revision %d to %v", got, live.Version, want), repair})
	}
	return out
}
