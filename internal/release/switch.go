package release

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	helmtime "helm.sh/helm/v3/pkg/time"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shipper-dev/shipper/internal/lease"
)

// The switch: how a route's release comes to send requests to other
// commits. Production's promote, a canary step (the same route with other
// weights), a rollback (Helm's rollback instead of an upgrade) and a
// branch alias's move (another route, with no production size) are one
// switch, in one order:
//
//	check     each commit the switch brings in: deployed; for a plan this
//	          run rendered, its namespace live and this project's and, on
//	          the gateway router, the Gateway this run names; on a route
//	          that is an HTTPRoute, its ReferenceGrant
//	migrate   promote --migrate: production's database, by a Job of the
//	          commit's image (migrate.go), or nothing is switched
//	size up   each of them to production size, or nothing is switched
//	          (production only; sizing.go)
//	switch    the Helm operation: an upgrade to the plan, or Helm's
//	          rollback to a revision; once begun it runs to its end even if
//	          the job is cancelled (uninterruptible)
//	sweep     stray routes removed, the HTTPRoute reconciled (routes.go)
//
// under the route's lock and its commit's, which the caller holds
// (underLocks; a rollback retargets first), and then, the locks given
// back (land):
//
//	await     the Gateway takes the route's new generation (router.go)
//	verify    the URL answers from the commit (verify.go)
//	settle    the commits production left, sized down after the drain
//	          delay (sizing.go)

// switchover is one switch of a route's release.
type switchover struct {
	// route names the release switched: production's (n's names) or an
	// alias's (n.asAlias()).
	route Names
	// commits are those the switch brings in, checked and sized up: the
	// caller holds the first's lock; another's (a rollback to a canary
	// revision) is taken to size it up.
	commits []Names
	// live is the short SHA of the commit the route's new revision sends
	// (the rest of) its requests to.
	live string
	// size, when set, is production's size for the commits (sizing.go),
	// why the reason their revisions give.
	size *sizing
	why  string
	// plan, when set, is the upgrade the switch makes (promote, a canary
	// step, an alias move); else it is Helm's rollback to revision to,
	// keeping history revisions (rollback).
	plan    *plan
	to      *release.Release
	history int
	// records, when set, are the route release's records as the caller
	// listed them, consistently under its lock (a rollback's pick): the
	// switch opens the release with them instead of listing them again;
	// last, when set, its newest revision as read under it.
	records []record
	last    *release.Release
	// viaGateway: the route is an HTTPRoute, which needs each commit's
	// ReferenceGrant.
	viaGateway bool
	// unsized: no commit was listed at production size under the locks
	// and the switch sized none up, so none is left to settle (land).
	unsized bool
	// migrate, when set, migrates production's database after the fresh
	// checks and before the size-up (promote --migrate, migrate.go).
	migrate func(context.Context) error
	// early, when set, are reads of the switch sent before it, under its
	// locks (a rollback's, with its history: rollbackGuess.send).
	early *switchReads
}

// switchReads are reads of a switch sent early: the release records of
// one commit it brings in (requireServing's fresh check) and the list of
// commits at production size (prefetch).
type switchReads struct {
	commit  string // the release whose records were read
	records *early[[]record]
	sized   *early[[]string]
}

// recordsOf is the read of release name's records, nil when none was sent.
func (sr *switchReads) recordsOf(name string) *early[[]record] {
	if sr == nil || sr.commit != name {
		return nil
	}
	return sr.records
}

// switchRoute checks, sizes up, switches and sweeps (see above), and
// returns the route's revision after the switch.
func (c *Configuration) switchRoute(ctx context.Context, s *switchover) (*release.Release, error) {
	pre := c.prefetch(ctx, s)
	err := c.checkSwitch(ctx, s, consistent)
	pre.wait()
	if err != nil {
		return nil, err
	}
	if s.migrate != nil {
		if err := s.migrate(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.sizeUpAll(ctx, s, pre.sized); err != nil {
		return nil, err
	}
	// From here the switch runs to its end even if the job is cancelled:
	// cut half way it would leave two routes.
	ctx, cancel, err := uninterruptible(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if pre.recsErr != nil {
		return nil, fmt.Errorf("reading release %q: %w", s.route.ProductionRelease, pre.recsErr)
	}
	r, err := c.openReleaseOf(ctx, s.route.ProductionNamespace, s.route.ProductionRelease, slices.Clone(pre.recs), s.last)
	if err != nil {
		return nil, err
	}
	var rel *release.Release
	if s.plan != nil {
		rel, err = c.installOrUpgrade(ctx, r, s.plan, nil)
	} else {
		rel, err = c.rollbackTo(ctx, r, s.to, s.history)
	}
	if err != nil {
		return nil, err
	}
	// The route's records as listed before the switch, and its revision's.
	hist := append(slices.Clone(r.records), record{Version: rel.Version, SHA: rel.Labels[LabelSHA]})
	return rel, c.sweepRoutesOf(ctx, s.route, s.live, rel.Manifest, hist)
}

// checkSwitch refuses, before anything changes, a switch to a commit that
// cannot serve: a missing or undeployed release, a namespace gone or not
// this project's, no ReferenceGrant for an HTTPRoute; and for a plan on
// the gateway router a Gateway that is not there or not production's. A
// rollback returns to a revision as it was recorded, whatever router and
// Gateway this run was given: it checks no Gateway, and its commits by
// their records only. Cached reads check before a lock; the decisive
// check is fresh, under the locks.
func (c *Configuration) checkSwitch(ctx context.Context, s *switchover, fresh bool) error {
	for _, cn := range s.commits {
		if err := c.requireServing(ctx, s, cn, fresh); err != nil {
			if s.plan == nil {
				return fmt.Errorf("revision %d routes to commit %s: %w", s.to.Version, cn.Short, err)
			}
			return err
		}
	}
	if s.plan != nil && s.viaGateway {
		return c.requireGateway(ctx, s.route)
	}
	return nil
}

// requireServing is checkSwitch's check of one commit: its reads sent at
// once, the first refusal in this order the answer.
func (c *Configuration) requireServing(ctx context.Context, s *switchover, cn Names, fresh bool) error {
	checks := []func() error{func() error {
		var read *early[[]record]
		if fresh {
			read = s.early.recordsOf(cn.Release)
		}
		rec, err := c.deployedCommit(ctx, cn, fresh, read)
		if err == nil && s.plan != nil && s.route.routeRole == RoleProduction {
			err = requireCurrent(rec, cn)
		}
		return err
	}}
	if s.plan != nil {
		checks = append(checks, func() error { return c.requireNamespaceOf(ctx, cn, fresh) })
	}
	if s.viaGateway {
		checks = append(checks, func() error { return c.requireGrant(ctx, cn) })
	}
	return firstRefusal(checks)
}

// firstRefusal runs checks, reads each, at once and returns the first
// error in their order: what running them one after the other until one
// fails returns.
func firstRefusal(checks []func() error) error {
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = check()
		}()
	}
	errs[0] = checks[0]()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sizeUpAll brings each commit of a production switch to production size
// before it routes to them: each ready at that size, or nothing is
// switched. A commit's Lease beyond the first is taken after it (the
// route's lock keeps two switches from taking them in the other order).
func (c *Configuration) sizeUpAll(ctx context.Context, s *switchover, sized *sizedList) error {
	if s.size == nil {
		return nil
	}
	if sized != nil {
		// The common case, no production size: the list (one GET) says
		// whether the commit may be at production size from an earlier
		// promote (sizeUp); an empty list also means none is left to
		// settle after the switch.
		if sized.err != nil {
			return sized.err
		}
		if len(sized.shas) == 0 {
			s.unsized = true
			return nil
		}
	}
	for i, cn := range s.commits {
		up := func(ctx context.Context) error { return c.sizeUp(ctx, cn, *s.size, s.why) }
		var err error
		if i == 0 {
			err = up(ctx)
		} else {
			err = c.locker.Do(ctx, cn.Namespace, cn.Release, up)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prefetched are reads a switch makes under its locks that need no
// answer of another: sent together with the checks (checkSwitch), their
// answers taken in the order the switch reads them.
type prefetched struct {
	wg sync.WaitGroup
	// sized is the list of commits at production size, for a switch of
	// one commit without production size (nil: not read).
	sized *sizedList
	// recs are the route release's records (s.records when the caller
	// gave them), for openReleaseOf.
	recs    []record
	recsErr error
}

// sizedList is the list of commits at production size as read.
type sizedList struct {
	shas []string
	err  error
}

// prefetch sends the reads of s that prefetched holds.
func (c *Configuration) prefetch(ctx context.Context, s *switchover) *prefetched {
	pre := &prefetched{recs: s.records}
	if s.size != nil && s.size.none() && len(s.commits) == 1 {
		pre.sized = &sizedList{}
		pre.wg.Add(1)
		var read *early[[]string]
		if s.early != nil {
			read = s.early.sized
		}
		go func() {
			defer pre.wg.Done()
			pre.sized.shas, pre.sized.err = read.get(func() ([]string, error) { return c.sizedCommits(ctx, s.route) })
		}()
	}
	if pre.recs == nil {
		pre.wg.Add(1)
		go func() {
			defer pre.wg.Done()
			pre.recs, pre.recsErr = c.records(ctx, s.route.ProductionNamespace, "name="+s.route.ProductionRelease, consistent)
		}()
	}
	return pre
}

// wait waits for the reads prefetch sent.
func (p *prefetched) wait() { p.wg.Wait() }

// rollbackTo is Helm's rollback of release r to revision to, keeping
// history revisions (0: all), the history pruned from the records' labels
// first. It returns the revision Helm recorded, without reading it back:
// Helm's rollback writes revision last+1 as a copy of revision to (chart,
// values, manifest, labels) and returns the error of its final write,
// which records it deployed.
func (c *Configuration) rollbackTo(ctx context.Context, r *helmRelease, to *release.Release, history int) (*release.Release, error) {
	pruned := func() {}
	if history > 0 {
		pruned = c.pruneHistoryAside(ctx, r.records, history-1, to.Version)
	}
	rb := action.NewRollback(r.cfg)
	rb.Version = to.Version
	rb.MaxHistory = 0 // pruned aside
	rb.Timeout = helmTimeout(ctx)
	forget := r.know(to)
	err := rb.Run(r.name)
	forget()
	pruned()
	if err != nil {
		return nil, fmt.Errorf("helm rollback of %s to revision %d: %w", r.name, to.Version, err)
	}
	rel := *to
	rel.Info = &release.Info{Status: release.StatusDeployed, LastDeployed: helmtime.Now(), Description: fmt.Sprintf("Rollback to %d", to.Version)}
	rel.Version = 1
	if r.last != nil {
		rel.Version = r.last.Version + 1
	}
	return &rel, nil
}

// underLocks runs fn holding the lock of route's release (production's or
// an alias's), then commit n's: the order every operation takes them. n's
// Lease is watched from the start, so a killed job's two locks expire
// together for the next one (lease.Locker.LookAhead).
func (c *Configuration) underLocks(ctx context.Context, route, n Names, fn func(context.Context) error) error {
	lctx, stop := c.locker.LookAhead(ctx, lease.Name{Namespace: n.Namespace, Name: n.Release})
	defer stop()
	return c.locker.Do(lctx, route.ProductionNamespace, route.ProductionRelease, func(ctx context.Context) error {
		return c.locker.Do(ctx, n.Namespace, n.Release, fn)
	})
}

// landing is what follows a switch once its locks are given back.
type landing struct {
	// route names the release switched; done says what was done, for
	// errors ("promoted myapp-7c77eb36").
	route Names
	done  string
	// await: wait for the Gateway to take the route (an HTTPRoute);
	// unserved says what a route not taken means.
	await    bool
	unserved string
	// verify, when set, requests url until commit sha answers.
	verify   *Verify
	url, sha string
	// settle: a switch of production, which sizes down after drain the
	// commits it left at production size.
	settle bool
	drain  time.Duration
}

// land awaits, verifies and settles after a switch (see above) and returns
// the commits sized down. A job cancelled once the switch had begun lands
// at once: the switch is done.
func (c *Configuration) land(ctx context.Context, l landing) ([]string, error) {
	if ctx.Err() != nil {
		c.log.Info("cancelled after the switch: not waiting for the Gateway", "release", l.route.ProductionRelease)
		return nil, nil
	}
	if l.await {
		if err := c.awaitRoute(ctx, l.route.ProductionNamespace, l.route.ProductionRelease); err != nil {
			return nil, fmt.Errorf("%s, but %s: %w", l.done, l.unserved, err)
		}
	}
	if err := c.verifyServing(ctx, l.verify, l.url, l.sha); err != nil {
		return nil, fmt.Errorf("%s, but: %w", l.done, err)
	}
	if !l.settle {
		return nil, nil
	}
	return c.settleSizes(ctx, l.route, l.drain), nil
}

// productionOf is what production serves after a switch to rel, from the
// revision itself: the commit (and canary) its labels name and the host
// and URL of the route its manifest holds (the sweep has made the live
// route that one).
func productionOf(n Names, rel *release.Release) (*Production, error) {
	sha := rel.Labels[LabelSHA]
	p := &Production{
		App: n.AppPart, Release: n.ProductionRelease, SHA: sha, Target: n.AppPart + "-" + sha,
		Revision: rel.Version, Status: rel.Info.Status.String(), Since: rel.Info.LastDeployed.Time,
	}
	if canary := rel.Labels[LabelCanary]; canary != "" {
		weight, _ := strconv.Atoi(rel.Labels[LabelCanaryWeight])
		p.Canary = &Canary{SHA: canary, Target: n.AppPart + "-" + canary, Weight: weight}
	}
	var err error
	p.Host, p.URL, err = manifestHost(rel.Manifest, n.ProductionRelease)
	return p, err
}

// manifestHost is the host, and the URL, that the route name of a release
// manifest serves: its Ingress's first rule, else its HTTPRoute's first
// hostname; "" when it has neither.
func manifestHost(manifest, name string) (host, url string, err error) {
	ing, err := manifestObject[networkingv1.Ingress](manifest, "Ingress", name)
	if err != nil {
		return "", "", err
	}
	if ing != nil && len(ing.Spec.Rules) > 0 {
		host = ing.Spec.Rules[0].Host
		return host, cmp.Or(ing.Annotations[AnnotationURL], "https://"+host), nil
	}
	route, err := manifestHTTPRoute(manifest, name)
	if err != nil || route == nil || len(route.Spec.Hostnames) == 0 {
		return "", "", err
	}
	host = string(route.Spec.Hostnames[0])
	return host, cmp.Or(route.Annotations[AnnotationURL], "https://"+host), nil
}
