package release

import (
	"context"
	"fmt"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/shipper-dev/shipper/internal/lease"
)

// maxHistory bounds the revisions Helm keeps per release: enough to roll
// production back through its recent promotions.
const maxHistory = 20

// Deploy installs one commit as its own release "<app>-<sha>" in its own
// namespace, or upgrades it when it exists, so re-running a CI job
// converges. It is Helm's `upgrade --install --create-namespace --wait`
// with the decision, pending-release repair and locking made here, not in
// the CLI.
type Deploy struct {
	cfg *Configuration

	Hosts Hosts
	// Values are the user's chart values; shipper's own win over them.
	Values map[string]any
	// Credentials, when set, become the namespace's image pull secret.
	Credentials *RegistryCredentials
	// Wait blocks until the Deployment is available, or ctx ends.
	Wait bool
	// Secrets are the commit's secret environment (name without prefix:
	// value), written as a Secret the pods take with envFrom, never as
	// chart values (envsecret.go). SecretPrefix only names the variables
	// in errors (K8S_SECRET_).
	Secrets      map[string]string
	SecretPrefix string
	// Verify, when set with Wait, returns only once the preview URL
	// answers from the commit (gateway router).
	Verify *Verify
	// Timeout, when set, bounds Run; by default ctx's deadline alone does.
	Timeout time.Duration
	// CommitTime is when the commit was made (GitLab's
	// CI_COMMIT_TIMESTAMP): a deploy of n.Ref's commit moves the branch's
	// alias only to a commit at least as new as the one it serves
	// (alias.go). Zero: the time of the commit's first deploy.
	CommitTime time.Time
}

// NewDeploy returns a Deploy that waits for the commit's pods.
func NewDeploy(cfg *Configuration) *Deploy { return &Deploy{cfg: cfg, Wait: true} }

// plan is the release Run installs for commit n running image
// ("repo:tag" or "repo@sha256:...").
func (d *Deploy) plan(ctx context.Context, n Names, image string) (*plan, Image, error) {
	img, err := ParseImage(image)
	if err != nil {
		return nil, Image{}, err
	}
	env, err := d.checkEnv()
	if err != nil {
		return nil, Image{}, err
	}
	p, err := d.cfg.previewPlan(ctx, n, d.Hosts, d.Values, img, d.Credentials != nil, env)
	return p, img, err
}

// Render returns the manifests Run would apply for commit n, without a
// cluster, as `helm template` does.
func (d *Deploy) Render(ctx context.Context, n Names, image string) (string, error) {
	p, _, err := d.plan(ctx, n, image)
	if err != nil {
		return "", err
	}
	return p.manifest, nil
}

// Run deploys commit n running image. Bad input returns a *UsageError
// before anything in the cluster changes.
func (d *Deploy) Run(ctx context.Context, n Names, image string) (*Commit, error) {
	if err := d.cfg.requireVerifiable(d.Verify); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, d.Timeout)
	defer cancel()
	n, found, err := d.cfg.beginCommit(ctx, n, writing)
	if err != nil {
		return nil, err
	}
	if !found && len(n.SHA) < shortSHALen {
		return nil, &UsageError{Input: "commit SHA", Value: n.SHA, Rule: fmt.Sprintf(
			"names no deployed commit, and a new one needs at least %d characters (GitLab's CI_COMMIT_SHORT_SHA has 8; CI_COMMIT_SHA all 40)", shortSHALen)}
	}
	p, img, err := d.plan(ctx, n, image)
	if err != nil {
		return nil, err
	}
	var ap *plan // the branch alias's
	if n.Ref != "" {
		if ap, err = d.cfg.aliasPlan(ctx, n, d.Hosts, d.Values); err != nil {
			return nil, err
		}
	}
	if err := d.requireRoutable(ctx, n, p); err != nil {
		return nil, err
	}
	if ap != nil && d.Wait {
		// What the alias move will need, checked before anything of the
		// commit changes: the production namespace this project's
		// (requireRoutable made it already for a ReferenceGrant), and on
		// the gateway router the Gateway (and the alias route on it).
		if !p.hasReferenceGrant() {
			if err := d.cfg.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil); err != nil {
				return nil, err
			}
		}
		if d.cfg.router() == RouterGateway {
			if err := d.cfg.requireGateway(ctx, n.asAlias()); err != nil {
				return nil, err
			}
		}
	}
	labels := map[string]string{LabelSHA: n.Short}
	annotations := map[string]string{AnnotationURL: p.url, AnnotationSHA: n.SHA, AnnotationFirstDeploy: time.Now().UTC().Format(time.RFC3339Nano)}
	if n.Ref != "" {
		labels[LabelRef] = n.Ref
	}
	if !d.CommitTime.IsZero() {
		annotations[AnnotationCommitTime] = d.CommitTime.UTC().Format(time.RFC3339)
	}
	if err := d.cfg.ensureNamespace(ctx, n.Namespace, n, RolePreview, labels, annotations); err != nil {
		return nil, err
	}
	wasLive, err := d.cfg.isLive(ctx, n, cached)
	if err != nil {
		return nil, err
	}
	var rel *release.Release
	run := func(ctx context.Context) error {
		return d.cfg.locker.Do(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
			if d.Credentials != nil {
				if err := d.cfg.applyPullSecret(ctx, n.Namespace, img.Repository, *d.Credentials); err != nil {
					return err
				}
			}
			version, err := d.applyEnv(ctx, n)
			if err != nil {
				return err
			}
			p.values = mergeValues(p.values, map[string]any{"envSecret": map[string]any{"version": version}})
			// Confirmed under both locks with a fresh read, so a rollback
			// since cannot make shipper undo a commit no longer live. (A
			// commit promoted in the milliseconds before this deploy took
			// its lock may be missed by the cached read below: its failed
			// rollout is then only marked failed, as for any commit.)
			live := wasLive
			if live {
				var err error
				if live, err = d.cfg.isLive(ctx, n, consistent); err != nil {
					return err
				}
			}
			serving := 0 // the revision production serves, to undo to
			if live {
				if serving, err = d.cfg.deployedVersion(n); err != nil {
					return err
				}
			}
			rel, err = d.cfg.installOrUpgrade(ctx, p)
			if err != nil {
				return err
			}
			if !d.Wait {
				return nil
			}
			if err := d.cfg.waitAvailable(ctx, n.Namespace, n.Release); err != nil {
				err = d.cfg.markFailed(n.Namespace, rel, err)
				if live && serving > 0 {
					return d.cfg.undoRollout(ctx, n, serving, err)
				}
				return err
			}
			// On the gateway router the preview URL serves once the
			// Gateway has taken the route.
			if p.hasHTTPRoute() {
				if err := d.cfg.awaitRoute(ctx, n.Namespace, n.Release); err != nil {
					return err
				}
				return d.cfg.verifyServing(ctx, d.Verify, p.url+p.path(), n.SHA)
			}
			return nil
		})
	}
	// Re-deploying the live commit changes what production serves: it
	// holds production's lock too, taken first as every operation does.
	if wasLive {
		// The commit's Lease is watched from now on, so a killed deploy's
		// two locks expire together for the next one (lease.Locker.LookAhead).
		lctx, stop := d.cfg.locker.LookAhead(ctx, lease.Name{Namespace: n.Namespace, Name: n.Release})
		defer stop()
		err = d.cfg.withProductionLock(lctx, n, run)
	} else {
		err = run(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", n.Release, err)
	}
	d.cfg.log.Info("deployed", "release", n.Release, "revision", rel.Version, "url", p.url)
	out := &Commit{
		App: n.AppPart, SHA: n.SHA, Short: n.Short, Release: n.Release, Namespace: n.Namespace,
		Host: p.host, URL: p.url, Image: img.String(), Revision: rel.Version,
		Status: rel.Info.Status.String(), Updated: rel.Info.LastDeployed.Time, Ref: n.Ref,
	}
	if ap == nil {
		return out, nil
	}
	if !d.Wait {
		d.cfg.log.Info("branch alias not moved: it moves to a commit once a deploy has waited for it to be available (--wait)", "ref", n.Ref)
		return out, nil
	}
	when := d.CommitTime
	if when.IsZero() {
		if when, err = d.cfg.commitTime(ctx, n); err != nil {
			return nil, err
		}
	}
	if out.Alias, err = d.cfg.moveAlias(ctx, n, ap, when, true); err != nil {
		// The commit is deployed: whatever the cause, not "bad input,
		// nothing changed" (exit 2), so the error is not wrapped.
		return nil, fmt.Errorf("deployed %s (%s), but: %v", n.Release, p.url, err)
	}
	return out, nil
}

// requireRoutable keeps what production's HTTPRoute needs of commit n.
// A ReferenceGrant lets HTTPRoutes of the app's production namespace reach
// the commit's Service; that namespace is made (this project's, refused if
// another project squatted it) before the grant exists, so the grant never
// names a namespace someone else owns. And a commit production's HTTPRoute
// sends requests to (live or canary), or an alias's HTTPRoute does, is
// not re-deployed without its grant (the ingress router): the host would
// answer 500 for it.
func (d *Deploy) requireRoutable(ctx context.Context, n Names, p *plan) error {
	if p.hasReferenceGrant() {
		return d.cfg.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil)
	}
	route, err := d.cfg.productionHTTPRoute(ctx, n)
	if err != nil {
		return err
	}
	if route != nil && slices.Contains(backendNamespaces(route), n.Namespace) {
		return &UsageError{Input: "--router", Value: string(d.cfg.router()), Rule: fmt.Sprintf(
			"production's HTTPRoute sends requests to commit %s: deploy it with --router gateway (this router would remove its ReferenceGrant, and production would answer 500)", n.Short)}
	}
	aliases, err := d.cfg.aliasRoutesTo(ctx, n)
	if err != nil || len(aliases) == 0 {
		return err
	}
	return &UsageError{Input: "--router", Value: string(d.cfg.router()), Rule: fmt.Sprintf(
		"the HTTPRoute of the alias of branch %s sends requests to commit %s: deploy it with --router gateway (this router would remove its ReferenceGrant, and the alias would answer 500)", aliases[0].Ref, n.Short)}
}

// isLive reports whether production serves commit n.
func (c *Configuration) isLive(ctx context.Context, n Names, fresh bool) (bool, error) {
	rec, err := c.deployedRecord(ctx, n.ProductionNamespace, n.ProductionRelease, fresh)
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		// No production namespace yet: shipper's role is bound in a
		// namespace only once it exists, so RBAC answers Forbidden.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return rec != nil && rec.SHA == n.Short, nil
}

// deployedVersion is the deployed revision of commit n's release, 0 when
// none is.
func (c *Configuration) deployedVersion(n Names) (int, error) {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return 0, err
	}
	rel, err := cfg.Releases.Deployed(n.Release)
	if err != nil {
		return 0, nil // none deployed: nothing to undo to
	}
	return rel.Version, nil
}

// undoRollout rolls commit n's release back to revision serving (the one
// deployed before), after a rollout failed while production serves n:
// production goes on serving the commit as it was. It waits for that
// revision to be available again and returns cause, saying so.
func (c *Configuration) undoRollout(ctx context.Context, n Names, serving int, cause error) error {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return cause
	}
	// The job's own deadline may be what ended the rollout: the undo gets
	// a minute of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	rb := action.NewRollback(cfg)
	rb.Version = serving
	rb.MaxHistory = maxHistory
	rb.Timeout = helmTimeout(ctx)
	if err := rb.Run(n.Release); err != nil {
		return fmt.Errorf("%w; the commit is live in production and rolling its release back to revision %d failed too: %v", cause, rb.Version, err)
	}
	if err := c.waitAvailable(ctx, n.Namespace, n.Release); err != nil {
		return fmt.Errorf("%w; the commit is live in production: its release was rolled back to revision %d, which is not available either: %v", cause, rb.Version, err)
	}
	c.log.Warn("the commit is live: rolled its release back so production keeps serving it", "release", n.Release, "to revision", rb.Version)
	return fmt.Errorf("%w; the commit is live in production, so its release was rolled back to revision %d, which production keeps serving", cause, rb.Version)
}
