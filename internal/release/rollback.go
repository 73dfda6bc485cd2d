package release

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"

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
// that served), a revision number, or a commit SHA (its latest promotion). It refuses when
// the target commit's release no longer exists.
func (r *Rollback) Run(ctx context.Context, n Names, to string) (*Production, error) {
	if err := r.cfg.requireVerifiable(r.Verify); err != nil {
		return nil, err
	}
	if err := CheckSecretNames(r.Secrets, r.SecretPrefix); err != nil {
		return nil, err
	}
	if err := r.cfg.beginApp(ctx, n); err != nil {
		return nil, err
	}
	var prod *Production
	pick := func(ctx context.Context, fresh bool) (record, Names, error) {
		hist, err := r.cfg.records(ctx, n.ProductionNamespace, "name="+n.ProductionRelease, fresh)
		if err != nil {
			return record{}, Names{}, err
		}
		if len(hist) == 0 {
			return record{}, Names{}, errNoProduction(n)
		}
		target, err := pickRevision(hist, to)
		if err != nil {
			return record{}, Names{}, err
		}
		tn, err := n.WithSHA(target.SHA)
		if err != nil {
			return record{}, Names{}, fmt.Errorf("revision %d records commit %q: %w", target.Version, target.SHA, err)
		}
		return target, tn, nil
	}
	// The target commit's Lease, as the watch cache names it, is watched
	// from now on, so a killed rollback's two locks expire together for
	// the next one (lease.Locker.LookAhead).
	lctx := ctx
	_, hint, hintErr := pick(ctx, cached)
	if hintErr == nil {
		var stop func()
		lctx, stop = r.cfg.locker.LookAhead(ctx, lease.Name{Namespace: hint.Namespace, Name: hint.Release})
		defer stop()
	}
	err := r.cfg.withProductionLock(lctx, n, func(ctx context.Context) error {
		// The target commit's lock, after production's (the order every
		// operation takes them): no delete or deploy of it meanwhile. The
		// target is first read from the watch cache, so that both Leases
		// are written before the decisive consistent read, made under
		// both: a consistent list right after a Lease write waits for the
		// watch cache's progress notification (internal/lease, watched.go),
		// and a second one within 100 ms waited up to 100 ms more. A cached read that
		// lags (a promote finished a moment ago) names another commit:
		// then its lock is given back and the right one taken. The cached
		// read is the one made before production's lock, for LookAhead.
		tn, err := hint, hintErr
		if err != nil {
			if _, tn, err = pick(ctx, consistent); err != nil {
				return err
			}
		}
		for tries := 0; ; tries++ {
			err := r.cfg.locker.Do(ctx, tn.Namespace, tn.Release, func(ctx context.Context) error {
				target, ftn, err := pick(ctx, consistent)
				if err != nil {
					return err
				}
				if ftn.Release != tn.Release {
					tn = ftn
					return errRetarget
				}
				return r.switchTo(ctx, n, target, tn, &prod)
			})
			if errors.Is(err, errRetarget) && tries < 3 {
				continue
			}
			if err != nil && tries == 0 {
				// The cached read's commit could not be locked (its
				// namespace gone since): the consistent read may name
				// another.
				if _, ftn, perr := pick(ctx, consistent); perr == nil && ftn.Release != tn.Release {
					tn = ftn
					continue
				}
			}
			return err
		}
	})
	if err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", n.ProductionRelease, err)
	}
	if ctx.Err() != nil {
		// The job was cancelled once the switch had begun: it is done.
		r.cfg.log.Info("cancelled after the switch: not waiting for the Gateway", "production", n.ProductionRelease)
		return prod, nil
	}
	if r.Wait {
		route, err := r.cfg.productionHTTPRoute(ctx, n)
		if err != nil {
			return nil, err
		}
		if route != nil {
			if err := r.cfg.awaitRoute(ctx, n.ProductionNamespace, n.ProductionRelease); err != nil {
				return nil, fmt.Errorf("rolled back %s, but production may not be served: %w", n.ProductionRelease, err)
			}
		}
	}
	if err := r.cfg.verifyServing(ctx, r.Verify, prod.URL, prod.SHA); err != nil {
		return nil, fmt.Errorf("rolled back %s, but: %w", n.ProductionRelease, err)
	}
	prod.SizedDown = r.cfg.settleSizes(ctx, n, r.DrainDelay)
	return prod, nil
}

// errRetarget: the target commit read from the watch cache was not the one
// the consistent read under the locks names.
var errRetarget = errors.New("production changed while its rollback took the locks")

// switchTo is the rollback to target, whose commit is tn, under
// production's lock and tn's; it sets *prod to production after it.
func (r *Rollback) switchTo(ctx context.Context, n Names, target record, tn Names, prod **Production) error {
	cfg, err := r.cfg.helm(n.ProductionNamespace)
	if err != nil {
		return err
	}
	// The commits the target revision routes to must still serve:
	// deployed, and on the gateway router (the revision's manifest
	// has the HTTPRoute, whatever router this run was given)
	// referenceable. A canary revision's canary commit is checked
	// too; production's lock keeps deletes and re-deploys of it out.
	rel, err := cfg.Releases.Get(n.ProductionRelease, target.Version)
	if err != nil {
		return fmt.Errorf("reading revision %d of %s: %w", target.Version, n.ProductionRelease, err)
	}
	route, err := manifestHTTPRoute(rel.Manifest, n.ProductionRelease)
	if err != nil {
		return err
	}
	routed := []Names{tn}
	if target.Canary != "" {
		cn, err := n.WithSHA(target.Canary)
		if err != nil {
			return fmt.Errorf("revision %d records canary %q: %w", target.Version, target.Canary, err)
		}
		routed = append(routed, cn)
	}
	for _, c := range routed {
		if err := r.cfg.requireDeployed(ctx, c, consistent); err != nil {
			return fmt.Errorf("revision %d routes to commit %s: %w", target.Version, c.Short, err)
		}
		if route != nil {
			if err := r.cfg.requireGrant(ctx, c); err != nil {
				return fmt.Errorf("revision %d routes to commit %s: %w", target.Version, c.Short, err)
			}
		}
	}
	// As in Promote, production size first, with the overlay the
	// target revision was promoted with: each commit it routes to
	// ready at that size, or nothing is switched. A canary commit's
	// Lease is taken after the target's (production's lock keeps
	// two rollbacks from taking them in the other order).
	size := sizing{overlay: productionOverlay(rel.Config), secrets: r.Secrets}
	why := fmt.Sprintf("rollback to production revision %d", target.Version)
	for _, c := range routed {
		up := func(ctx context.Context) error { return r.cfg.sizeUp(ctx, c, size, why) }
		if c.Release != tn.Release {
			err = r.cfg.locker.Do(ctx, c.Namespace, c.Release, up)
		} else {
			err = up(ctx)
		}
		if err != nil {
			return err
		}
	}
	// As in Promote: the switch, once begun, is not cut by a
	// cancelled job.
	ctx, cancel, err := uninterruptible(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	before, history, err := r.cfg.repairPending(ctx, cfg, n.ProductionNamespace, n.ProductionRelease)
	if err != nil {
		return err
	}
	if r.MaxHistory > 0 {
		r.cfg.pruneHistory(ctx, history, r.MaxHistory-1, target.Version)
	}
	rb := action.NewRollback(cfg)
	rb.Version = target.Version
	rb.MaxHistory = 0 // pruned above
	rb.Timeout = helmTimeout(ctx)
	if err := rb.Run(n.ProductionRelease); err != nil {
		return fmt.Errorf("helm rollback of %s to revision %d: %w", n.ProductionRelease, target.Version, err)
	}
	// Helm's rollback, too, may leave its new revision recorded
	// pending-rollback when the final write fails. It is the
	// revision after the last one (read by number: Helm's Last
	// would decode the whole history).
	var last *release.Release
	err = driver.ErrReleaseNotFound
	if before != nil {
		last, err = getRelease(cfg, n.ProductionRelease, before.Version+1)
	}
	if err != nil {
		last, err = cfg.Releases.Last(n.ProductionRelease)
	}
	if err == nil && last.Info.Status == release.StatusPendingRollback {
		last.SetStatus(release.StatusDeployed, "Rollback complete")
		if err := r.cfg.confirmRecorded(ctx, cfg, last); err != nil {
			return err
		}
	}
	r.cfg.log.Info("rolled back", "production", n.ProductionRelease, "to revision", target.Version, "sha", target.SHA)
	deployed, err := cfg.Releases.Deployed(n.ProductionRelease)
	if err != nil {
		return fmt.Errorf("reading %s after its rollback: %w", n.ProductionRelease, err)
	}
	if err := r.cfg.sweepRoutes(ctx, n, target.SHA, deployed.Manifest); err != nil {
		return err
	}
	*prod, err = r.cfg.production(ctx, n)
	return err
}

// pickRevision chooses the revision to roll back to from hist (newest
// first).
func pickRevision(hist []record, to string) (record, error) {
	current := hist[0]
	switch {
	case to == "":
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
		// During a canary: the live commit alone again, as it served
		// before the canary began.
		if live.Canary != "" {
			for _, r := range hist {
				if r.Version < live.Version && served(r) && r.SHA == live.SHA && r.Canary == "" {
					return r, nil
				}
			}
			return record{}, &UsageError{Input: "rollback target", Value: "previous", Rule: fmt.Sprintf(
				"no revision before the canary of %s has %s serving alone: promote %s without --weight", live.Canary, live.SHA, live.SHA)}
		}
		// Else the newest whole promotion of another commit.
		for _, r := range hist {
			if served(r) && r.SHA != live.SHA && r.Canary == "" {
				return r, nil
			}
		}
		return record{}, &UsageError{Input: "rollback target", Value: "previous", Rule: fmt.Sprintf(
			"production's history has no earlier promotion of another commit that served (failed revisions are skipped; history keeps the last %d)", maxHistory)}
	case isRevision(to):
		v, _ := strconv.Atoi(to)
		for _, r := range hist {
			if r.Version == v {
				return r, nil
			}
		}
		return record{}, &UsageError{Input: "revision", Value: to, Rule: "is not in production's history (see `helm history` or `shipper status`)"}
	default:
		sha, err := ValidateSHA(to)
		if err != nil {
			return record{}, &UsageError{Input: "rollback target", Value: to, Rule: "must be a revision number or a commit SHA (7 to 40 hex characters)"}
		}
		// A record holds the short SHA; the caller may give more or less.
		same := func(rec string) bool {
			return rec != "" && (strings.HasPrefix(sha, rec) || strings.HasPrefix(rec, sha))
		}
		for _, r := range hist[1:] {
			if same(r.SHA) && r.Canary == "" { // a whole promotion, not a canary step
				return r, nil
			}
		}
		if same(current.SHA) {
			return record{}, &UsageError{Input: "commit", Value: to, Rule: "is already live"}
		}
		return record{}, &UsageError{Input: "commit", Value: to, Rule: "was never promoted (or is older than the history kept)"}
	}
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
