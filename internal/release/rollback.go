package release

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/release"

	"github.com/shipper-dev/shipper/internal/lease"
)

// Rollback returns production to an earlier promotion with Helm's own
// rollback of "<app>-production": by default the newest revision that
// served another commit than the live one, so rolling back twice undoes
// the first rollback. Unlike `helm rollback` without a revision, which
// takes the revision number before the newest whatever it was, a failed or
// cancelled promote (recorded failed) is never the default target: it
// would "roll back" to the commit that just failed, or to the live one.
type Rollback struct {
	cfg *Configuration
	// MaxHistory bounds the production revisions kept.
	MaxHistory int
	// Wait, when production is routed by an HTTPRoute, blocks until the
	// Gateway has accepted its new generation (see awaitRoute).
	Wait bool
	// Verify, when set, returns only once the production URL answers
	// from the commit rolled back to (gateway router).
	Verify *Verify
	// Secrets and SecretPrefix are Promote's: the production
	// environment's secret variables as the rollback job sees them.
	Secrets      map[string]string
	SecretPrefix string
	// DrainDelay is Promote's.
	DrainDelay time.Duration
}

// NewRollback returns a Rollback that keeps as many revisions as Deploy
// and Promote do and waits for the Gateway.
func NewRollback(cfg *Configuration) *Rollback {
	return &Rollback{cfg: cfg, MaxHistory: maxHistory, Wait: true, DrainDelay: DefaultDrainDelay}
}

// Run rolls production of n's app back. to is "" (the previous promotion
// that served), a revision number, or a commit SHA (its latest promotion).
// It refuses when the target commit's release no longer exists. Its
// phases: validate, lock the target (picked from production's history),
// switch (switch.go), land.
func (r *Rollback) Run(ctx context.Context, n Names, to string) (*Production, error) {
	if err := r.cfg.requireVerifiable(r.Verify); err != nil {
		return nil, err
	}
	if err := CheckSecretNames(r.Secrets, r.SecretPrefix); err != nil {
		return nil, err
	}
	if err := r.cfg.requireProductionDatabase(r.Secrets, r.SecretPrefix); err != nil {
		return nil, err
	}
	var start rollbackStart
	defer start.stop()
	if err := r.cfg.beginApp(ctx, n, func() { start.send(ctx, r, n, to) }); err != nil {
		return nil, err
	}
	r.cfg.warmDiscovery(false)
	var (
		prod                *Production
		viaGateway, unsized bool
	)
	err := r.lockTarget(ctx, n, to, &start, func(ctx context.Context, target record, tn Names, hist []record, reads *rollbackReads) error {
		s, err := r.switchFor(n, target, tn, hist, reads)
		if err != nil {
			return err
		}
		// Production's database (productiondb.go), before any change.
		if err := r.cfg.checkCommitDatabase(ctx, r.Secrets, r.SecretPrefix, reads.envs(), s.commits...); err != nil {
			return err
		}
		rel, err := r.cfg.switchRoute(ctx, s)
		if err != nil {
			return err
		}
		r.cfg.log.Info("rolled back", "production", n.ProductionRelease, "to revision", target.Version, "sha", target.SHA)
		viaGateway, unsized = s.viaGateway, s.unsized
		prod, err = productionOf(n, rel)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", n.ProductionRelease, err)
	}
	prod.SizedDown, err = r.cfg.land(ctx, landing{
		route: n, done: "rolled back " + n.ProductionRelease,
		await: r.Wait && viaGateway, unserved: "production may not be served",
		verify: r.Verify, url: prod.URL, sha: prod.SHA,
		settle: !unsized, drain: r.DrainDelay,
	})
	if err != nil {
		return nil, err
	}
	return prod, nil
}

// pick reads production's history (fresh: consistently) and picks the
// revision to roll back to and its commit; it returns the history too.
func (r *Rollback) pick(ctx context.Context, n Names, to string, fresh bool) (record, Names, []record, error) {
	hist, err := r.cfg.records(ctx, n.ProductionNamespace, "name="+n.ProductionRelease, fresh)
	if err != nil {
		return record{}, Names{}, nil, err
	}
	if len(hist) == 0 {
		return record{}, Names{}, nil, errNoProduction(n)
	}
	target, err := pickRevision(hist, to)
	if err != nil {
		return record{}, Names{}, nil, err
	}
	tn, err := n.WithSHA(target.SHA)
	if err != nil {
		return record{}, Names{}, nil, fmt.Errorf("revision %d records commit %q: %w", target.Version, target.SHA, err)
	}
	return target, tn, hist, nil
}

// lockTarget runs fn under production's lock, then that of the target's
// commit (the order every operation takes them: no delete or deploy of it
// meanwhile), with the target read fresh under both.
//
// The target is first read from the watch cache (start, sent with the
// ownership checks, as are the read of production's namespace and of its
// Lease), so that both Leases are
// written before the decisive consistent read, made under both: a
// consistent list right after a Lease write waits for the watch cache's
// progress notification (internal/lease, watched.go), and a second one
// within 100 ms waited up to 100 ms more. A cached read that lags (a
// promote finished a moment ago) names another commit: then its lock is
// given back and the right one taken. That commit's Lease is watched from
// the start, so a killed rollback's two locks expire together for the
// next one (lease.Locker.LookAhead).
func (r *Rollback) lockTarget(ctx context.Context, n Names, to string, start *rollbackStart, fn rollbackFunc) error {
	lctx := start.lockCtx(ctx)
	guess, hintErr := start.pick.get(func() (*rollbackGuess, error) { return r.guess(ctx, n, to) })
	if hintErr == nil {
		var stop func()
		// Both Leases are written only in the order every operation takes
		// them (production's Lease is read from the start: start).
		lctx, stop = r.cfg.locker.LookAhead(lctx, lease.Name{Namespace: guess.tn.Namespace, Name: guess.tn.Release})
		defer stop()
	}
	return r.cfg.withProductionLockOf(lctx, n, start.ns, func(ctx context.Context) error {
		var tn Names
		if hintErr != nil {
			var err error
			if _, tn, _, err = r.pick(ctx, n, to, consistent); err != nil {
				return err
			}
		} else {
			tn = guess.tn
		}
		for tries := 0; ; tries++ {
			next, err := r.underTargetLock(ctx, n, to, tn, guess, fn)
			guess = nil // the reads it sends serve the first try only
			if next.Release == "" && err != nil && tries == 0 {
				// The cached read's commit could not be locked (its
				// namespace gone since): the consistent read may name
				// another.
				if _, ftn, _, perr := r.pick(ctx, n, to, consistent); perr == nil && ftn.Release != tn.Release {
					next = ftn
				}
			}
			if next.Release == "" || tries == 3 {
				return err
			}
			tn = next
		}
	})
}

// underTargetLock runs fn under the lock of commit tn when the fresh read
// under it still names tn; else it returns the commit it names. guess,
// when set, is what the cached read picked: what the switch reads of it is
// sent with the fresh read (rollbackGuess.send).
func (r *Rollback) underTargetLock(ctx context.Context, n Names, to string, tn Names, guess *rollbackGuess, fn rollbackFunc) (next Names, err error) {
	err = r.cfg.locker.Do(ctx, tn.Namespace, tn.Release, func(ctx context.Context) error {
		reads := guess.send(ctx, r.cfg, n, r.Secrets[productionDatabaseVar] == "")
		target, ftn, hist, err := r.pick(ctx, n, to, consistent)
		if err != nil {
			return err
		}
		if ftn.Release != tn.Release {
			next = ftn
			return errRetarget
		}
		return fn(ctx, target, tn, hist, reads)
	})
	return next, err
}

// rollbackFunc is what a rollback runs under its locks: the target
// revision and its commit, production's history as read under them, and
// the reads sent with it.
type rollbackFunc func(ctx context.Context, target record, tn Names, hist []record, reads *rollbackReads) error

// errRetarget: the target commit read from the watch cache was not the one
// the consistent read under the locks names.
var errRetarget = errors.New("production changed while its rollback took the locks")

// switchFor is the switch that rolls back to target, whose commit is tn:
// Helm's rollback of production to that revision, which must still be
// able to serve. The commits it routes to (a canary revision's canary
// too) must be deployed and, on the gateway router (the revision's
// manifest has the HTTPRoute, whatever router this run was given),
// referenceable; each is sized up first with the overlay the revision was
// promoted with. hist is production's history as read under the locks,
// which the switch opens the release with; reads, the reads sent with it.
func (r *Rollback) switchFor(n Names, target record, tn Names, hist []record, reads *rollbackReads) (*switchover, error) {
	cfg, err := r.cfg.helm(n.ProductionNamespace)
	if err != nil {
		return nil, err
	}
	// The target and the newest revision (which the switch opens the
	// release with) are read together, or were with the history.
	var last *release.Release
	newest := make(chan struct{})
	go func() {
		defer close(newest)
		if len(hist) > 0 && hist[0].Version != target.Version {
			last, _ = reads.revision(hist[0].Version).get(func() (*release.Release, error) {
				return getRelease(cfg, n.ProductionRelease, hist[0].Version)
			}) // else read again
		}
	}()
	rel, err := reads.revision(target.Version).get(func() (*release.Release, error) {
		return getRelease(cfg, n.ProductionRelease, target.Version)
	})
	<-newest
	if err != nil {
		return nil, fmt.Errorf("reading revision %d of %s: %w", target.Version, n.ProductionRelease, err)
	}
	route, err := manifestHTTPRoute(rel.Manifest, n.ProductionRelease)
	if err != nil {
		return nil, err
	}
	s := &switchover{
		route: n, commits: []Names{tn}, live: target.SHA,
		size: &sizing{overlay: productionOverlay(rel.Config), secrets: r.Secrets},
		why:  fmt.Sprintf("rollback to production revision %d", target.Version),
		to:   rel, history: r.MaxHistory, viaGateway: route != nil, records: hist, last: last,
		early: reads.forSwitch(),
	}
	if target.Canary != "" {
		cn, err := n.WithSHA(target.Canary)
		if err != nil {
			return nil, fmt.Errorf("revision %d records canary %q: %w", target.Version, target.Canary, err)
		}
		s.commits = append(s.commits, cn)
	}
	return s, nil
}

// pickRevision chooses the revision to roll back to from hist (newest
// first): to is "" (the previous promotion that served), a revision
// number, or a commit SHA.
func pickRevision(hist []record, to string) (record, error) {
	switch {
	case to == "":
		return previousRevision(hist)
	case isRevision(to):
		v, _ := strconv.Atoi(to)
		for _, r := range hist {
			if r.Version == v {
				return r, nil
			}
		}
		return record{}, &UsageError{Input: "revision", Value: to, Rule: "is not in production's history (see `helm history` or `shipper status`)"}
	default:
		return revisionOfCommit(hist, to)
	}
}

// previousRevision is the revision a rollback without a target returns
// to: during a canary, the live commit alone again, as it served before
// the canary began; else the newest whole promotion of another commit
// that served.
func previousRevision(hist []record) (record, error) {
	var live record
	for _, r := range hist {
		if r.Status == release.StatusDeployed.String() {
			live = r
			break
		}
	}
	served := func(r record) bool {
		return r.Status == release.StatusDeployed.String() || r.Status == release.StatusSuperseded.String()
	}
	if live.Canary != "" {
		for _, r := range hist {
			if r.Version < live.Version && served(r) && r.SHA == live.SHA && r.Canary == "" {
				return r, nil
			}
		}
		return record{}, &UsageError{Input: "rollback target", Value: "previous", Rule: fmt.Sprintf(
			"no revision before the canary of %s has %s serving alone: promote %s without --weight", live.Canary, live.SHA, live.SHA)}
	}
	for _, r := range hist {
		if served(r) && r.SHA != live.SHA && r.Canary == "" {
			return r, nil
		}
	}
	return record{}, &UsageError{Input: "rollback target", Value: "previous", Rule: fmt.Sprintf(
		"production's history has no earlier promotion of another commit that served (failed revisions are skipped; history keeps the last %d)", maxHistory)}
}

// revisionOfCommit is the newest whole promotion (not a canary step) of
// commit sha, given with more or fewer characters than a record holds.
func revisionOfCommit(hist []record, sha string) (record, error) {
	full, err := ValidateSHA(sha)
	if err != nil {
		return record{}, &UsageError{Input: "rollback target", Value: sha, Rule: "must be a revision number or a commit SHA (7 to 40 hex characters)"}
	}
	same := func(rec string) bool {
		return rec != "" && (strings.HasPrefix(full, rec) || strings.HasPrefix(rec, full))
	}
	for _, r := range hist[1:] {
		if same(r.SHA) && r.Canary == "" {
			return r, nil
		}
	}
	if same(hist[0].SHA) {
		return record{}, &UsageError{Input: "commit", Value: sha, Rule: "is already live"}
	}
	return record{}, &UsageError{Input: "commit", Value: sha, Rule: "was never promoted (or is older than the history kept)"}
}

// isRevision reports whether s is a revision number rather than a SHA: all
// digits and shorter than the 7 characters a SHA needs.
func isRevision(s string) bool {
	if s == "" || len(s) >= 7 {
		return false
	}
	_, err := strconv.Atoi(s)
	return err == nil
}
