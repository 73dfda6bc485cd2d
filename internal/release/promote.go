package release

import (
	"context"
	"fmt"
)

// Promote points the production host at one commit. Production is its own
// release "<app>-production" (its record in its own namespace, so it
// outlives every preview) whose only object is an Ingress rendered into the
// promoted commit's namespace, routing the production host to that commit's
// Service. Each promotion is one revision in `helm history`.
//
// The production host never has zero routes while it switches: Helm's
// upgrade creates the objects of the new manifest (the Ingress in the new
// commit's namespace) before it deletes those only in the old one (the
// Ingress in the previous commit's namespace). For that moment both
// Ingresses route the host, each to a ready Service.
type Promote struct {
	cfg *Configuration

	Hosts Hosts
	// Values are the user's chart values (ingress class, TLS, annotations).
	Values map[string]any
	// Wait, on the gateway router, blocks until the Gateway has accepted
	// the production route's new generation (see awaitRoute).
	Wait bool
	// Verify, when set, returns only once the production URL answers
	// from the promoted commit (gateway router).
	Verify *Verify
}

// NewPromote returns a Promote that waits for the Gateway.
func NewPromote(cfg *Configuration) *Promote { return &Promote{cfg: cfg, Wait: true} }

// Render returns the manifest of the production release Run would install
// to route to commit n, without a cluster.
func (p *Promote) Render(ctx context.Context, n Names) (string, error) {
	pl, err := p.cfg.productionPlan(ctx, n, p.Hosts, p.Values)
	if err != nil {
		return "", err
	}
	return pl.manifest, nil
}

// Run promotes commit n. It refuses a commit whose release is missing or
// not deployed.
func (p *Promote) Run(ctx context.Context, n Names) (*Production, error) {
	if err := p.cfg.requireVerifiable(p.Verify); err != nil {
		return nil, err
	}
	n, _, err := p.cfg.beginCommit(ctx, n)
	if err != nil {
		return nil, err
	}
	pl, err := p.cfg.productionPlan(ctx, n, p.Hosts, p.Values)
	if err != nil {
		return nil, err
	}
	if err := p.cfg.requireDeployed(ctx, n, cached); err != nil {
		return nil, fmt.Errorf("promoting %s: %w", n.Release, err)
	}
	// The commit's namespace is checked (live, this project's) before the
	// production namespace may be created: a refusal changes nothing.
	if err := p.cfg.requireNamespace(ctx, n); err != nil {
		return nil, fmt.Errorf("promoting %s: %w", n.Release, err)
	}
	if err := p.cfg.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil); err != nil {
		return nil, err
	}
	var prod *Production
	err = p.cfg.withLock(ctx, n.ProductionNamespace, n.ProductionRelease, func(ctx context.Context) error {
		// Production's lock, then the commit's (the order Delete takes them
		// too): no delete or deploy of the commit runs until the switch is
		// done, and the decisive check below is a fresh read under both.
		return p.cfg.withLock(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
			if err := p.cfg.requireNamespace(ctx, n); err != nil {
				return err
			}
			if err := p.cfg.requireDeployed(ctx, n, consistent); err != nil {
				return err
			}
			if p.cfg.router() == RouterGateway {
				if err := p.cfg.requireGrant(ctx, n); err != nil {
					return err
				}
			}
			// From here the switch runs to its end even if the job is
			// cancelled: cut half way it would leave two routes.
			ctx, cancel := uninterruptible(ctx)
			defer cancel()
			rel, err := p.cfg.installOrUpgrade(ctx, pl)
			if err != nil {
				return err
			}
			prod = &Production{
				App: n.AppPart, Release: n.ProductionRelease, SHA: n.Short, Target: n.Release, Host: pl.host, URL: pl.url,
				Revision: rel.Version, Status: rel.Info.Status.String(), Since: rel.Info.LastDeployed.Time,
			}
			return p.cfg.sweepRoutes(ctx, n, n.Short, rel.Manifest)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("promoting %s to production: %w", n.Release, err)
	}
	if p.Wait && pl.hasHTTPRoute() {
		if err := p.cfg.awaitRoute(ctx, n.ProductionNamespace, n.ProductionRelease); err != nil {
			return nil, fmt.Errorf("promoted %s, but: %w", n.Release, err)
		}
	}
	if err := p.cfg.verifyServing(ctx, p.Verify, pl.url, n.SHA); err != nil {
		return nil, fmt.Errorf("promoted %s, but: %w", n.Release, err)
	}
	p.cfg.log.Info("promoted", "release", n.Release, "production", n.ProductionRelease, "revision", prod.Revision, "url", pl.url)
	return prod, nil
}
