package release

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	// Migrate, when set, runs against production's database (Secrets'
	// DATABASE_URL) under production's lock before the switch; a failure
	// switches nothing (migrate.go).
	Migrate string
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
// or not deployed. Its phases: validate, prepare (plan and checks, before
// any lock), switch (under the locks, switch.go), land.
func (p *Promote) Run(ctx context.Context, n Names) (*Production, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	pr, err := p.prepare(ctx, n)
	if err != nil {
		return nil, err
	}
	prod, err := p.switchProduction(ctx, pr)
	if err != nil {
		return nil, fmt.Errorf("promoting %s to production: %w", pr.n.Release, err)
	}
	p.cfg.log.Info("promoted", "release", pr.n.Release, "production", pr.n.ProductionRelease, "revision", prod.Revision, "weight", cmp.Or(pr.weight, 100), "url", prod.URL)
	if prod.SizedDown, err = p.cfg.land(ctx, p.landing(pr)); err != nil {
		return nil, err
	}
	return prod, nil
}

// validate refuses bad input before anything is read.
func (p *Promote) validate() error {
	if err := p.cfg.requireVerifiable(p.Verify); err != nil {
		return err
	}
	if p.Weight < 0 || p.Weight > 100 {
		return &UsageError{Input: "--weight", Value: strconv.Itoa(p.Weight), Rule: "must be a percent of production's requests, 1 to 100"}
	}
	if p.canary() && p.cfg.router() != RouterGateway {
		return &UsageError{Input: "--weight", Value: strconv.Itoa(p.Weight), Rule: "a canary needs the gateway router (--router gateway): Ingress has no portable weights"}
	}
	if err := CheckSecretNames(p.Secrets, p.SecretPrefix); err != nil {
		return err
	}
	return p.checkMigrate()
}

// promotion is a promote as prepared: the commit n, the one that serves
// the rest of the requests (primary: n, or for a canary step the live
// commit, as of production's revision planned) and the switch.
type promotion struct {
	n, primary Names
	weight     int // a canary step's, 0 for a full promote
	planned    int
	sw         *switchover
}

// prepare plans the promote of n and makes every check the cluster can
// answer before the production namespace may be created, so a refusal
// changes nothing: the commit deployed, its namespace live and this
// project's, its ReferenceGrant and the Gateway (gateway router). Then it
// makes the production namespace.
func (p *Promote) prepare(ctx context.Context, n Names) (*promotion, error) {
	n, _, err := p.cfg.beginCommit(ctx, n, writing)
	if err != nil {
		return nil, err
	}
	p.cfg.warmDiscovery(true)
	pr := &promotion{n: n, primary: n}
	why, step := "promote of "+n.Short, (*canaryStep)(nil)
	if p.canary() {
		if pr.primary, pr.planned, err = p.cfg.liveNames(ctx, n, cached); err != nil {
			return nil, err
		}
		pr.weight, step = p.Weight, &canaryStep{names: n, weight: p.Weight}
		why = fmt.Sprintf("canary of %s at %d%%", n.Short, p.Weight)
	}
	pl, err := p.cfg.productionPlan(ctx, pr.primary, p.Hosts, p.Values, step)
	if err != nil {
		return nil, err
	}
	// A canary step sizes the canary; the live commit keeps the size it
	// was promoted with, and needs no lock of its own: deleting or
	// re-deploying the live commit takes production's.
	pr.sw = &switchover{
		route: n, commits: []Names{n}, live: pr.primary.Short, plan: pl,
		size: &sizing{overlay: productionOverlay(p.Values), secrets: p.Secrets}, why: why,
		viaGateway: p.cfg.router() == RouterGateway,
	}
	pr.sw.migrate = p.migration(n)
	if err := p.cfg.checkSwitch(ctx, pr.sw, cached); err != nil {
		return nil, fmt.Errorf("promoting %s: %w", n.Release, err)
	}
	if err := p.cfg.checkCommitDatabase(ctx, p.Secrets, p.SecretPrefix, nil, n); err != nil {
		return nil, err
	}
	if err := p.cfg.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil); err != nil {
		return nil, err
	}
	return pr, nil
}

// switchProduction switches production under its lock, then the commit's
// (the order Delete takes them too): no delete or deploy of the commit
// runs until the switch is done, and the decisive checks are fresh reads
// under both.
func (p *Promote) switchProduction(ctx context.Context, pr *promotion) (*Production, error) {
	var prod *Production
	err := p.cfg.underLocks(ctx, pr.n, pr.n, func(ctx context.Context) error {
		if pr.weight > 0 {
			live, version, err := p.cfg.liveNames(ctx, pr.n, consistent)
			if err != nil {
				return err
			}
			if version != pr.planned {
				return fmt.Errorf("production changed (revision %d, %s live) while this canary step waited for the lock (it was planned against revision %d): run it again", version, live.Short, pr.planned)
			}
		}
		rel, err := p.cfg.switchRoute(ctx, pr.sw)
		if err != nil {
			return err
		}
		if prod, err = productionOf(pr.primary, rel); err != nil {
			return err
		}
		prod.Host, prod.URL = pr.sw.plan.host, pr.sw.plan.url
		return nil
	})
	return prod, err
}

// landing is what follows the switch: the Gateway's wait, and --verify
// of a full promote. Which commit answered is a backend filter's header,
// which not every Gateway sets (Traefik does not): a canary step is
// verified by the Gateway's conditions only.
func (p *Promote) landing(pr *promotion) landing {
	pl := pr.sw.plan
	l := landing{
		route: pr.n, done: "promoted " + pr.n.Release,
		await:    p.Wait && pl.hasHTTPRoute(),
		unserved: "production may not be served (`shipper rollback` returns to the commit before)",
		verify:   p.Verify, url: pl.url + pl.path(), sha: pr.n.SHA,
		settle: !pr.sw.unsized, drain: p.DrainDelay,
	}
	if pr.weight > 0 && p.Verify != nil {
		p.cfg.log.Info("canary step not verified by requests: the route's conditions say the Gateway took it", "canary", pr.n.Short, "weight", p.Weight)
		l.verify = nil
	}
	return l
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
