package release

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/shipper-dev/shipper/internal/lease"
)

// Promote points the production host at one commit. Production is its own
// release "<app>-production" (its record in its own namespace, so it
// outlives every preview) whose only object routes the production host to
// that commit's Service: on the ingress router an Ingress rendered into the
// promoted commit's namespace, on the gateway router an HTTPRoute in the
// production namespace (router.go). Each promotion, and each canary step,
// is one revision in `helm history`.
//
// The production host never has zero routes while it switches: Helm's
// upgrade creates the objects of the new manifest (the Ingress in the new
// commit's namespace) before it deletes those only in the old one (the
// Ingress in the previous commit's namespace); for that moment both
// Ingresses route the host, each to a ready Service. An HTTPRoute is
// updated in place.
type Promote struct {
	cfg *Configuration

	Hosts Hosts
	// Values are the user's chart values (ingress class, TLS, annotations).
	Values map[string]any
	// Weight, 1 to 99, makes Run a canary step: the commit gets that
	// percent of production's requests and the live commit the rest (the
	// gateway router). 0 or 100 promotes it fully.
	Weight int
	// Wait, on the gateway router, blocks until the Gateway has accepted
	// the production route's new generation (see awaitRoute).
	Wait bool
	// Verify, when set, returns only once the production URL answers
	// from the promoted commit (gateway router).
	Verify *Verify
	// Secrets are the production environment's secret variables (GitLab's
	// K8S_SECRET_* as the promote job sees them): the environment of the
	// commits production routes to while it does (sizing.go), never Helm
	// values. SecretPrefix only names them in errors.
	Secrets      map[string]string
	SecretPrefix string
	// DrainDelay is how long the outgoing commit keeps its production size
	// after the switch (DefaultDrainDelay); Run returns after it.
	DrainDelay time.Duration
}

// NewPromote returns a Promote that waits for the Gateway and sizes the
// outgoing commit down after DefaultDrainDelay.
func NewPromote(cfg *Configuration) *Promote {
	return &Promote{cfg: cfg, Wait: true, DrainDelay: DefaultDrainDelay}
}

// Render returns the manifest of the production release Run would install
// to route to commit n, without a cluster. A canary step (Weight) needs
// the live commit, which only the cluster knows: Render refuses it.
func (p *Promote) Render(ctx context.Context, n Names) (string, error) {
	if p.canary() {
		return "", &UsageError{Input: "--weight", Value: strconv.Itoa(p.Weight), Rule: "a canary step is rendered by the cluster only (it needs the live commit): render without --weight"}
	}
	pl, err := p.cfg.productionPlan(ctx, n, p.Hosts, p.Values, nil)
	if err != nil {
		return "", err
	}
	return pl.manifest, nil
}

// canary reports whether Run is a canary step rather than a full promote.
func (p *Promote) canary() bool { return p.Weight > 0 && p.Weight < 100 }

// Run promotes commit n: all of production's requests, or with Weight
// between 1 and 99 (the gateway router) that percent of them, the live
// commit serving the rest. It refuses a commit whose release is missing
// or not deployed.
func (p *Promote) Run(ctx context.Context, n Names) (*Production, error) {
	if err := p.cfg.requireVerifiable(p.Verify); err != nil {
		return nil, err
	}
	if p.Weight < 0 || p.Weight > 100 {
		return nil, &UsageError{Input: "--weight", Value: strconv.Itoa(p.Weight), Rule: "must be a percent of production's requests, 1 to 100"}
	}
	if p.canary() && p.cfg.router() != RouterGateway {
		return nil, &UsageError{Input: "--weight", Value: strconv.Itoa(p.Weight), Rule: "a canary needs the gateway router (--router gateway): Ingress has no portable weights"}
	}
	if err := CheckSecretNames(p.Secrets, p.SecretPrefix); err != nil {
		return nil, err
	}
	n, _, err := p.cfg.beginCommit(ctx, n, writing)
	if err != nil {
		return nil, err
	}
	size := sizing{overlay: productionOverlay(p.Values), secrets: p.Secrets}
	// primary is the commit that serves the rest of the requests: n, or
	// for a canary step the live commit; planned is the production
	// revision the step was planned against.
	primary, step, planned := n, (*canaryStep)(nil), 0
	if p.canary() {
		if primary, planned, err = p.cfg.liveNames(ctx, n, cached); err != nil {
			return nil, err
		}
		step = &canaryStep{names: n, weight: p.Weight}
	}
	pl, err := p.cfg.productionPlan(ctx, primary, p.Hosts, p.Values, step)
	if err != nil {
		return nil, err
	}
	// Every refusal the cluster can tell before the production namespace
	// may be created, so a refusal changes nothing: the commit deployed,
	// its namespace live and this project's, its ReferenceGrant and the
	// Gateway (gateway router).
	check := func(ctx context.Context, fresh bool) error {
		if err := p.cfg.requireDeployed(ctx, n, fresh); err != nil {
			return err
		}
		if err := p.cfg.requireNamespace(ctx, n); err != nil {
			return err
		}
		if p.cfg.router() != RouterGateway {
			return nil
		}
		if err := p.cfg.requireGrant(ctx, n); err != nil {
			return err
		}
		return p.cfg.requireGateway(ctx, n)
	}
	if err := check(ctx, cached); err != nil {
		return nil, fmt.Errorf("promoting %s: %w", n.Release, err)
	}
	if err := p.cfg.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil); err != nil {
		return nil, err
	}
	var prod *Production
	// The commit's Lease is watched from now on, so a killed promote's two
	// locks expire together for the next one (lease.Locker.LookAhead).
	lctx, stop := p.cfg.locker.LookAhead(ctx, lease.Name{Namespace: n.Namespace, Name: n.Release})
	defer stop()
	err = p.cfg.locker.Do(lctx, n.ProductionNamespace, n.ProductionRelease, func(ctx context.Context) error {
		// Production's lock, then the commit's (the order Delete takes them
		// too): no delete or deploy of the commit runs until the switch is
		// done, and the decisive check below is a fresh read under both.
		// A canary's live commit needs no lock of its own: deleting or
		// re-deploying the live commit takes production's.
		return p.cfg.locker.Do(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
			if err := check(ctx, consistent); err != nil {
				return err
			}
			if step != nil {
				live, version, err := p.cfg.liveNames(ctx, n, consistent)
				if err != nil {
					return err
				}
				if version != planned {
					return fmt.Errorf("production changed (revision %d, %s live) while this canary step waited for the lock (it was planned against revision %d): run it again", version, live.Short, planned)
				}
			}
			// Production size before the switch: the commit ready at that
			// size, or nothing is switched. A canary step sizes the canary;
			// the live commit keeps the size it was promoted with.
			why := "promote of " + n.Short
			if step != nil {
				why = fmt.Sprintf("canary of %s at %d%%", n.Short, step.weight)
			}
			if err := p.cfg.sizeUp(ctx, n, size, why); err != nil {
				return err
			}
			// From here the switch runs to its end even if the job is
			// cancelled: cut half way it would leave two routes.
			ctx, cancel, err := uninterruptible(ctx)
			if err != nil {
				return err
			}
			defer cancel()
			rel, err := p.cfg.installOrUpgrade(ctx, pl)
			if err != nil {
				return err
			}
			prod = &Production{
				App: n.AppPart, Release: n.ProductionRelease, SHA: primary.Short, Target: primary.Release,
				Host: pl.host, URL: pl.url, Revision: rel.Version, Status: rel.Info.Status.String(), Since: rel.Info.LastDeployed.Time,
			}
			if step != nil {
				prod.Canary = &Canary{SHA: n.Short, Target: n.Release, Weight: step.weight}
			}
			return p.cfg.sweepRoutes(ctx, primary, primary.Short, rel.Manifest)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("promoting %s to production: %w", n.Release, err)
	}
	weight := 100
	if step != nil {
		weight = step.weight
	}
	p.cfg.log.Info("promoted", "release", n.Release, "production", n.ProductionRelease, "revision", prod.Revision, "weight", weight, "url", pl.url)
	if ctx.Err() != nil {
		// The job was cancelled once the switch had begun: it is done.
		p.cfg.log.Info("cancelled after the switch: not waiting for the Gateway", "production", n.ProductionRelease)
		return prod, nil
	}
	if p.Wait && pl.hasHTTPRoute() {
		if err := p.cfg.awaitRoute(ctx, n.ProductionNamespace, n.ProductionRelease); err != nil {
			return nil, fmt.Errorf("promoted %s, but production may not be served (`shipper rollback` returns to the commit before): %w", n.Release, err)
		}
	}
	if step != nil {
		// Which commit answered is a backend filter's header, which not
		// every Gateway sets (Traefik does not): a canary step is verified
		// by the Gateway's conditions only.
		if p.Verify != nil {
			p.cfg.log.Info("canary step not verified by requests: the route's conditions say the Gateway took it", "canary", n.Short, "weight", p.Weight)
		}
	} else if err := p.cfg.verifyServing(ctx, p.Verify, pl.url+pl.path(), n.SHA); err != nil {
		return nil, fmt.Errorf("promoted %s, but: %w", n.Release, err)
	}
	prod.SizedDown = p.cfg.settleSizes(ctx, n, p.DrainDelay)
	return prod, nil
}

// liveNames are the names of the commit production's deployed revision
// routes to (all of its requests but a canary's), for n's app. No
// production yet is a usage error: a canary needs a live commit beside it.
func (c *Configuration) liveNames(ctx context.Context, n Names, fresh bool) (Names, int, error) {
	rec, err := c.deployedRecord(ctx, n.ProductionNamespace, n.ProductionRelease, fresh)
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || err == nil && rec == nil {
		return Names{}, 0, &UsageError{Input: "--weight", Value: "", Rule: "a canary needs a live commit beside it: promote one fully first (without --weight)"}
	}
	if err != nil {
		return Names{}, 0, err
	}
	if rec.SHA == n.Short {
		return Names{}, 0, &UsageError{Input: "commit", Value: n.Short, Rule: "is live: a canary step is for another commit (finish with `shipper promote` without --weight)"}
	}
	live, err := n.WithSHA(cmp.Or(rec.Commit, rec.SHA))
	return live, rec.Version, err
}
