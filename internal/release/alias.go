package release

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Branch aliases: a stable host per branch, "<app>-<ref>.<domain>", that
// follows the branch's newest deployed commit (Vercel's branch URLs, the
// URL of GitLab's review/<branch> environment).
//
// An alias is production's mechanism for another host. Each is its own
// Helm release "<app>-ref-<ref>" in the app's production namespace, mode
// "alias", whose only object routes the alias host to one commit's
// Service: on the ingress router an Ingress rendered into that commit's
// namespace (created before the old one is deleted, so the host always
// has a route), on the gateway router an HTTPRoute in the production
// namespace updated in place (the commit's ReferenceGrant admits every
// HTTPRoute of that namespace). The routing code works on it through
// Names.asAlias: the same lock, pending repair, stray-route sweep, route
// reconciliation and Gateway wait as production, and `helm history`,
// `helm rollback` per alias.
//
// Deploy moves the alias once the commit is available (Deploy.Wait), under
// the alias's lock then the commit's (the order: production, alias,
// commit). It moves it only to a commit at least as new as the one it
// serves, compared by commit time (GitLab's CI_COMMIT_TIMESTAMP, recorded
// on the alias's revisions as LabelCommitTime), else by the time of each
// commit's first deploy (its namespace's creation): a re-run job of an
// older commit never moves the alias back, and of concurrent deploys of one
// branch the newest commit wins whatever the order they finish in.
//
// Delete refuses a commit an alias serves (the alias would answer 503)
// unless it takes the alias with it (Delete.WithAlias); prune never
// removes it.

// LabelCommitTime records on an alias's revision the commit time (Unix
// nanoseconds) of the commit it routes to.
const LabelCommitTime = "shipper.dev/commit-time"

// Alias is a branch's stable host and the commit it serves.
type Alias struct {
	Ref      string `json:"ref"`
	Release  string `json:"release"`
	Host     string `json:"host"`
	URL      string `json:"url"`
	SHA      string `json:"sha"`
	Revision int    `json:"revision,omitempty"`
	// Moved says whether this deploy moved the alias; Note says why not.
	Moved bool   `json:"moved"`
	Note  string `json:"note,omitempty"`
}

// aliasPlan is the alias release of n.Ref routing to commit n; moveAlias
// adds the commit time.
func (c *Configuration) aliasPlan(ctx context.Context, n Names, hosts Hosts, user map[string]any) (*plan, error) {
	if err := n.check(true); err != nil {
		return nil, err
	}
	host, err := hosts.Alias(n)
	if err != nil {
		return nil, err
	}
	url := hosts.url(host)
	vals := mergeValues(user, mergeValues(productionValues(n, host, url), c.routingValues(n)))
	vals = mergeValues(vals, map[string]any{"mode": "alias"})
	p, err := c.newPlan(ctx, n, n.AliasRelease, n.ProductionNamespace, host, url, vals)
	if err != nil {
		return nil, err
	}
	p.labels[LabelRef] = n.Ref
	return p, nil
}

// commitTime is when commit n was made, as its namespace records it
// (commitTimeOf).
func (c *Configuration) commitTime(ctx context.Context, n Names) (time.Time, error) {
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, n.Namespace, metav1.GetOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading namespace %q: %w", n.Namespace, err)
	}
	return commitTimeOf(ns), nil
}

// commitTimeOf orders a commit among its branch's, from its namespace:
// the commit time (AnnotationCommitTime), else when it was first deployed
// (AnnotationFirstDeploy, else the namespace's creation). Alias moves and
// prune's --keep use it both.
func commitTimeOf(ns *corev1.Namespace) time.Time {
	for _, a := range []string{AnnotationCommitTime, AnnotationFirstDeploy} {
		if t, err := time.Parse(time.RFC3339Nano, ns.Annotations[a]); err == nil {
			return t
		}
	}
	return ns.CreationTimestamp.Time
}

// moveAlias points n.Ref's alias at commit n when n is at least as new as
// the commit it serves (see the package's alias notes), and repairs its
// routes when it already does. p is the plan aliasPlan made. The move is
// production's switch (switch.go) on the alias's route, without
// production's size.
func (c *Configuration) moveAlias(ctx context.Context, n Names, p *plan, when time.Time, wait bool) (*Alias, error) {
	a := n.asAlias()
	out := &Alias{Ref: n.Ref, Release: n.AliasRelease, Host: p.host, URL: p.url, SHA: n.Short}
	p.labels[LabelCommitTime] = strconv.FormatInt(when.UnixNano(), 10)
	if err := c.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil); err != nil {
		return nil, err
	}
	s := &switchover{route: a, commits: []Names{n}, live: n.Short, plan: p, viaGateway: c.router() == RouterGateway}
	err := c.underLocks(ctx, a, n, func(ctx context.Context) error {
		cur, err := c.deployedRecord(ctx, n.ProductionNamespace, n.AliasRelease, consistent)
		if err != nil {
			return err
		}
		if cur != nil && cur.SHA != n.Short && cur.CommitTime > when.UnixNano() {
			out.SHA, out.Revision = cur.SHA, cur.Version
			out.Note = fmt.Sprintf("serves %s, a newer commit of the branch (%s)", cur.SHA, time.Unix(0, cur.CommitTime).UTC().Format(time.RFC3339))
			// Not moved, but repaired: what a move killed half way
			// left (a pending record, a second route) goes now.
			return c.repairAlias(ctx, a, cur.SHA)
		}
		rel, err := c.switchRoute(ctx, s)
		if err != nil {
			return err
		}
		out.Revision, out.Moved = rel.Version, cur == nil || cur.SHA != n.Short
		if !out.Moved {
			out.Note = "already served this commit"
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("moving the alias of %s (%s) to %s: %w", n.Ref, p.url, n.Short, err)
	}
	if out.Moved {
		c.log.Info("moved the branch alias", "ref", n.Ref, "release", n.AliasRelease, "to", n.Short, "revision", out.Revision, "url", out.URL)
	} else {
		c.log.Info("branch alias not moved", "ref", n.Ref, "url", out.URL, "why", out.Note)
	}
	if out.SHA != n.Short {
		return out, nil // it serves a newer commit: nothing to wait for
	}
	_, err = c.land(ctx, landing{
		route: a, done: fmt.Sprintf("moved the alias of %s to %s", n.Ref, n.Short),
		await: wait && p.hasHTTPRoute(), unserved: "it may not be served",
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// repairAlias resolves a pending revision of alias a (names from asAlias)
// and sweeps its stray routes, the deployed revision serving live: what
// a move killed half way leaves, repaired by any later deploy of the
// branch, moving or not. Call it under the alias's lock.
func (c *Configuration) repairAlias(ctx context.Context, a Names, live string) error {
	cfg, err := c.helm(a.ProductionNamespace)
	if err != nil {
		return err
	}
	if _, _, err := c.repairPending(ctx, cfg, a.ProductionNamespace, a.ProductionRelease); err != nil {
		return err
	}
	dep, err := cfg.Releases.Deployed(a.ProductionRelease)
	if err != nil {
		return fmt.Errorf("reading the deployed revision of %s: %w", a.ProductionRelease, err)
	}
	return c.sweepRoutes(ctx, a, live, dep.Manifest)
}

// servingAlias is an alias that serves a commit: its release and branch.
type servingAlias struct{ Release, Ref string }

// aliasesServing are the app's aliases that send requests to commit n:
// those whose deployed revision names it, and whatever the records say
// (an alias move interrupted between its change of the route and the
// record of its revision) those whose route does: an alias Ingress in the
// commit's namespace, an alias HTTPRoute with a backend there. Sorted by
// release. No production namespace means no alias.
func (c *Configuration) aliasesServing(ctx context.Context, n Names, fresh bool) ([]servingAlias, error) {
	recs, err := c.records(ctx, n.ProductionNamespace, LabelRef+","+LabelSHA+"="+n.Short+",status=deployed", fresh)
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		// shipper's role is bound there once the namespace exists
		if _, nerr := c.client.CoreV1().Namespaces().Get(ctx, n.ProductionNamespace, metav1.GetOptions{}); apierrors.IsNotFound(nerr) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	var out []servingAlias
	add := func(a servingAlias) {
		if !slices.ContainsFunc(out, func(b servingAlias) bool { return b.Release == a.Release }) {
			out = append(out, a)
		}
	}
	for _, r := range recs {
		add(servingAlias{Release: r.Name, Ref: r.Ref})
	}
	ings, err := c.client.NetworkingV1().Ingresses(n.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelRole + "=" + RoleAlias + "," + LabelApp + "=" + n.AppPart,
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) { // a namespace going away
		return nil, fmt.Errorf("listing the alias Ingresses of %s: %w", n.Namespace, err)
	}
	if err == nil {
		for _, ing := range ings.Items {
			add(servingAlias{Release: ing.Name, Ref: strings.TrimPrefix(ing.Name, n.AppPart+"-ref-")})
		}
	}
	routed, err := c.aliasRoutesTo(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, a := range routed {
		add(a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Release < out[j].Release })
	return out, nil
}

// aliasRoutesTo are the app's alias HTTPRoutes that send requests to
// commit n (the gateway router), none when the cluster has no Gateway API.
func (c *Configuration) aliasRoutesTo(ctx context.Context, n Names) ([]servingAlias, error) {
	gw, err := c.gateways()
	if err != nil {
		return nil, err
	}
	routes, err := gw.GatewayV1().HTTPRoutes(n.ProductionNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelRole + "=" + RoleAlias + "," + LabelApp + "=" + n.AppPart,
	})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err) && c.router() != RouterGateway:
		return nil, nil // no Gateway API in the cluster, or a role from before it
	case err != nil:
		return nil, fmt.Errorf("listing the alias HTTPRoutes of %s: %w", n.ProductionNamespace, err)
	}
	var out []servingAlias
	for i := range routes.Items {
		if r := &routes.Items[i]; slices.Contains(backendNamespaces(r), n.Namespace) {
			out = append(out, servingAlias{Release: r.Name, Ref: strings.TrimPrefix(r.Name, n.AppPart+"-ref-")})
		}
	}
	return out, nil
}

// uninstallAlias removes an alias release (its route goes with it), gone
// true when there was none. Call it under the alias's lock.
func (c *Configuration) uninstallAlias(ctx context.Context, n Names, a servingAlias) (gone bool, err error) {
	gone, err = c.helmUninstall(ctx, n.ProductionNamespace, a.Release)
	if err == nil && !gone {
		c.log.Info("deleted the branch alias", "ref", a.Ref, "release", a.Release)
	}
	return gone, err
}
