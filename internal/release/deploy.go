package release

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/shipper-dev/shipper/internal/lease"
)

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
	// Protection puts the gate in front of the commit (protection.go);
	// nil or ProtectNone: none.
	Protection *Protection
	// Migrate, when set, runs before the commit's pods roll out, with its
	// environment (its database's): a shell command, or a JSON array
	// (migrate.go, MigrateArgv).
	Migrate string
}

// NewDeploy returns a Deploy that waits for the commit's pods.
func NewDeploy(cfg *Configuration) *Deploy { return &Deploy{cfg: cfg, Wait: true} }

// plan is the release Run installs for commit n running image
// ("repo:tag" or "repo@sha256:..."); prod, when sent, is the cached read
// of production's record (prepare sends it early).
func (d *Deploy) plan(ctx context.Context, n Names, image string, prod *early[*record]) (*plan, Image, error) {
	img, err := ParseImage(image)
	if err != nil {
		return nil, Image{}, err
	}
	env, err := d.checkEnv()
	if err != nil {
		return nil, Image{}, err
	}
	argv, err := d.migrateArgv()
	if err != nil {
		return nil, Image{}, err
	}
	if err := d.Protection.check(); err != nil {
		return nil, Image{}, err
	}
	// One login opens every preview through production's host, once
	// there is a production (offline, Render: none known).
	login := false
	if d.Protection.on() && d.cfg.online() == nil {
		if login, err = d.cfg.hasProduction(ctx, n, prod); err != nil {
			return nil, Image{}, err
		}
	}
	// A chart of the user's without the protection block runs no gate:
	// protecting with it would only say so (hostile review).
	ch, err := d.cfg.Chart()
	if err != nil {
		return nil, Image{}, err
	}
	var prot map[string]any
	switch {
	case hasProtection(ch):
		prot = protectionValues(n, d.Hosts, d.Protection, login)
	case d.Protection.on():
		return nil, Image{}, &UsageError{Input: "--protect", Value: string(d.Protection.Mode), Rule: "the chart (--chart) has no protection block to run the gate with: use shipper's chart, add the block (charts/preview-app), or --protect none"}
	}
	p, err := d.cfg.previewPlan(ctx, n, d.Hosts, withMigrate(ctx, d.Values, argv), img, d.Credentials != nil, env, prot)
	if err == nil {
		p.labels[LabelProtect] = cmp.Or(string(d.Protection.mode()), string(ProtectNone))
	}
	return p, img, err
}

// deployPlan is a deploy's plan and image, as plan makes them.
type deployPlan struct {
	plan *plan
	img  Image
}

func (d *Deploy) deployPlan(ctx context.Context, n Names, image string, prod *early[*record]) (deployPlan, error) {
	p, img, err := d.plan(ctx, n, image, prod)
	return deployPlan{plan: p, img: img}, err
}

// Render returns the manifests Run would apply for commit n, without a
// cluster, as `helm template` does.
func (d *Deploy) Render(ctx context.Context, n Names, image string) (string, error) {
	p, _, err := d.plan(ctx, n, image, nil)
	if err != nil {
		return "", err
	}
	return p.manifest, nil
}

// Run deploys commit n running image. Bad input returns a *UsageError
// before anything in the cluster changes. Its phases: prepare (plans,
// checks and the namespace, before any lock), install (under the locks),
// then move the branch's alias.
func (d *Deploy) Run(ctx context.Context, n Names, image string) (*Commit, error) {
	if err := d.cfg.requireVerifiable(d.Verify); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, d.Timeout)
	defer cancel()
	dp := &deployment{lock: lockAhead{ctx: ctx}}
	defer dp.lock.stop()
	defer func() { dp.ahead.abandon() }() // set by prepare, if at all
	if err := d.prepare(ctx, dp, n, image); err != nil {
		return nil, err
	}
	n, p := dp.n, dp.plan
	rel, err := d.install(dp)
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", n.Release, err)
	}
	d.cfg.log.Info("deployed", "release", n.Release, "revision", rel.Version, "url", p.url)
	out := &Commit{
		App: n.AppPart, SHA: n.SHA, Short: n.Short, Release: n.Release, Namespace: n.Namespace,
		Host: p.host, URL: p.url, Image: dp.img.String(), Revision: rel.Version,
		Status: rel.Info.Status.String(), Updated: rel.Info.LastDeployed.Time, Ref: n.Ref,
		Protect: p.labels[LabelProtect],
	}
	if out.Alias, err = d.moveAlias(ctx, dp); err != nil {
		return nil, err
	}
	return out, nil
}

// deployment is a deploy as prepared: the commit, its plan and image, the
// plan of its branch's alias (nil without a ref), whether production
// served the commit when it was planned and whether this deploy made its
// namespace; lock is the commit's lock, looked ahead at once the
// namespace is there (prepare), the reads sent early, and the install
// started ahead of the lock (nil: none).
type deployment struct {
	n       Names
	plan    *plan
	img     Image
	alias   *plan
	wasLive bool
	created bool
	lock    lockAhead
	early   deployReads
	ahead   *installAhead
}

// deployReads are the reads of prepare's checks, sent with the ownership
// checks (beginCommit): production's record as cached (is there a
// production, does it serve the commit) and, on the ingress router,
// what requireRoutable reads. Nil: not sent.
type deployReads struct {
	prod    *early[*record]
	route   *early[*gwv1.HTTPRoute]
	aliases *early[[]servingAlias]
}

// send sends the reads of n's deploy.
func (r *deployReads) send(ctx context.Context, c *Configuration, n Names) {
	go func() { _, _ = c.settings(ctx) }() // read once, whoever asks first
	r.prod = readEarly(func() (*record, error) { return c.productionRecord(ctx, n, cached) })
	if c.router() != RouterGateway {
		r.route = readEarly(func() (*gwv1.HTTPRoute, error) { return c.productionHTTPRoute(ctx, n) })
		r.aliases = readEarly(func() ([]servingAlias, error) { return c.aliasRoutesTo(ctx, n) })
	}
}

// prepare plans the deploy of n into dp, checks what the cluster can
// answer before anything changes, and makes the commit's namespace. The
// plan is made (rendered, its values checked) while the ownership checks
// and the early reads are answered, and taken after them as before: made
// again for the rare commit whose SHA the resolution lengthens (a short
// SHA of a commit deployed with its full one).
func (d *Deploy) prepare(ctx context.Context, dp *deployment, n Names, image string) error {
	planned, plannedFor := (*early[deployPlan])(nil), n
	n, found, err := d.cfg.beginCommit(ctx, n, writing, func() {
		dp.early.send(ctx, d.cfg, plannedFor)
		planned = readEarly(func() (deployPlan, error) { return d.deployPlan(ctx, plannedFor, image, dp.early.prod) })
	})
	if err != nil {
		return err
	}
	if !found && len(n.SHA) < shortSHALen {
		return &UsageError{Input: "commit SHA", Value: n.SHA, Rule: fmt.Sprintf(
			"names no deployed commit, and a new one needs at least %d characters (GitLab's CI_COMMIT_SHORT_SHA has 8; CI_COMMIT_SHA all 40)", shortSHALen)}
	}
	dp.n = n
	if n.SHA != plannedFor.SHA {
		// The plan, and the aliases routing to the namespace the given SHA
		// named (a 7-character one names another than its commit's), are
		// made again for the resolved commit.
		planned, dp.early.aliases = nil, nil
	}
	made, err := planned.get(func() (deployPlan, error) { return d.deployPlan(ctx, n, image, dp.early.prod) })
	if err != nil {
		return err
	}
	dp.plan, dp.img = made.plan, made.img
	// Helm's install needs discovery (its REST mapping, the capabilities it
	// renders with) only under the lock: read while the namespace is
	// made, not alongside the plan, whose CPU (the schema, the render)
	// the first writes wait for.
	d.cfg.warmDiscovery(true)
	if n.Ref != "" {
		if dp.alias, err = d.cfg.aliasPlan(ctx, n, d.Hosts, d.Values); err != nil {
			return err
		}
	}
	if err := d.requireRoutable(ctx, n, dp.plan, dp.early); err != nil {
		return err
	}
	if err := d.requireAliasMovable(ctx, dp); err != nil {
		return err
	}
	return d.makeNamespace(ctx, dp)
}

// makeNamespace makes (or checks) the commit's namespace of a deploy
// prepared, with its labels and annotations, and whether production
// serves the commit (dp.wasLive: which locks install takes). The commit's
// Lease is read while the namespace's isolation objects are written (it
// needs the role the namespace's binding grants), and taken then too
// when it is the only lock the deploy takes: a commit production serves
// takes production's first (install). In a namespace it made, the
// Lease is not read (no other operation has had a moment to make it:
// lease.Locker.LookAheadNew) and the commit's install starts then too,
// its writes held until installLocked lets them go (installAhead).
func (d *Deploy) makeNamespace(ctx context.Context, dp *deployment) error {
	n := dp.n
	labels := map[string]string{LabelSHA: n.Short}
	annotations := map[string]string{AnnotationURL: dp.plan.url, AnnotationSHA: n.SHA, AnnotationFirstDeploy: time.Now().UTC().Format(time.RFC3339Nano)}
	if n.Ref != "" {
		labels[LabelRef] = n.Ref
	}
	if !d.CommitTime.IsZero() {
		annotations[AnnotationCommitTime] = d.CommitTime.UTC().Format(time.RFC3339)
	}
	rec, err := dp.early.prod.get(func() (*record, error) { return d.cfg.productionRecord(ctx, n, cached) })
	if err != nil {
		return err
	}
	dp.wasLive = rec != nil && rec.SHA == n.Short
	lock := lease.Name{Namespace: n.Namespace, Name: n.Release}
	dp.created, err = d.cfg.ensureNamespaceThen(ctx, n.Namespace, n, RolePreview, labels, annotations, func(created bool) {
		dp.lock.start(d.cfg.locker, lock, created)
		if !dp.wasLive {
			d.cfg.locker.Take(dp.lock.ctx, lock)
		}
		if created && d.installsAhead(dp) {
			dp.ahead = d.startInstall(dp.lock.ctx, dp)
		}
	})
	return err
}

// lockAhead is a lock's election started before the lock is taken
// (lease.Locker.LookAhead): ctx carries it to the Do that takes it.
type lockAhead struct {
	ctx  context.Context
	done func()
}

// start starts the election of lock n; created: in a namespace this
// operation made, where it sends no read of the Lease
// (lease.Locker.LookAheadNew).
func (l *lockAhead) start(locker *lease.Locker, n lease.Name, created bool) {
	if created {
		l.ctx, l.done = locker.LookAheadNew(l.ctx, n)
		return
	}
	l.ctx, l.done = locker.LookAhead(l.ctx, n)
}

// stop ends the election if no Do took it over.
func (l *lockAhead) stop() {
	if l.done != nil {
		l.done()
	}
}

// requireAliasMovable checks what the alias move will need before
// anything of the commit changes: the production namespace this
// project's (requireRoutable made it already for a ReferenceGrant), and
// on the gateway router the Gateway (and the alias route on it).
func (d *Deploy) requireAliasMovable(ctx context.Context, dp *deployment) error {
	if dp.alias == nil || !d.Wait {
		return nil
	}
	if !dp.plan.hasReferenceGrant() {
		if err := d.cfg.ensureNamespace(ctx, dp.n.ProductionNamespace, dp.n, RoleProduction, nil, nil); err != nil {
			return err
		}
	}
	if d.cfg.router() == RouterGateway {
		return d.cfg.requireGateway(ctx, dp.n.asAlias())
	}
	return nil
}

// install installs or upgrades the commit under its lock. Re-deploying
// the live commit changes what production serves: it holds production's
// lock too, taken first as every operation does, and the commit's Lease
// is watched from the start, so a killed deploy's two locks expire
// together for the next one (lease.Locker.LookAhead). It runs in the
// run's context with that Lease's election started (dp.lock.ctx).
func (d *Deploy) install(dp *deployment) (*release.Release, error) {
	var rel *release.Release
	run := func(ctx context.Context) error {
		return d.cfg.locker.Do(ctx, dp.n.Namespace, dp.n.Release, func(ctx context.Context) (err error) {
			rel, err = d.installLocked(ctx, dp)
			return err
		})
	}
	ctx := dp.lock.ctx
	if !dp.wasLive {
		err := run(ctx)
		return rel, err
	}
	lctx, stop := d.cfg.locker.LookAhead(ctx, lease.Name{Namespace: dp.n.Namespace, Name: dp.n.Release})
	defer stop()
	err := d.cfg.withProductionLock(lctx, dp.n, run)
	return rel, err
}

// installLocked is install under the locks: the commit's secrets, then
// Helm's install or upgrade, then (Wait) the rollout and the preview
// route.
func (d *Deploy) installLocked(ctx context.Context, dp *deployment) (*release.Release, error) {
	n, p := dp.n, dp.plan
	// A namespace this deploy made, under a Lease it made: no operation
	// has held the commit's lock there, so what is only written under it
	// (the env Secret, the release's records, a migration Job) is not
	// there yet, and nothing is read or removed for it.
	fresh := dp.created && lease.Created(ctx)
	if !fresh {
		dp.ahead.abandon() // it assumed no record: confirmed only by a Lease this deploy made
	}
	if err := d.applySecrets(ctx, dp, fresh); err != nil {
		return nil, err
	}
	announced := false
	if dp.ahead != nil && fresh {
		rel, redo, err := dp.ahead.finish(ctx)
		if !redo {
			if err == nil && d.Wait {
				err = d.awaitServing(ctx, dp, rel, 0)
			}
			return rel, err
		}
		// Failed before its first write: nothing of it was sent, and the
		// install is made again the usual way.
		announced = true
	}
	// Confirmed under both locks with a fresh read, so a rollback since
	// cannot make shipper undo a commit no longer live. (A commit promoted
	// in the milliseconds before this deploy took its lock may be missed by
	// the cached read: its failed rollout is then only marked failed, as
	// for any commit.)
	live := dp.wasLive
	if live {
		var err error
		if live, err = d.cfg.isLive(ctx, n, consistent); err != nil {
			return nil, err
		}
	}
	r, err := d.cfg.openReleaseOf(ctx, n.Namespace, n.Release, freshRecords(fresh), nil)
	if err != nil {
		return nil, err
	}
	r.fresh, r.announced = fresh, announced
	serving := 0 // the revision production serves, to undo to
	if live {
		serving = r.deployedVersion()
	}
	carried, err := d.cfg.carriedLive(r, p)
	if err != nil {
		return nil, err
	}
	wasProtected := r.lastProtected()
	rel, err := d.installMigrating(ctx, n, r, p, carried)
	if err == nil && d.Wait {
		err = d.awaitServing(ctx, dp, rel, serving)
	}
	// Protection turned off: the gate's Secret goes once no pod of a
	// protected revision needs it (a failed rollout's undo returns to one).
	if err == nil && !d.Protection.on() && wasProtected && (d.Wait || serving == 0) {
		err = d.cfg.removeGate(ctx, n)
	}
	return rel, err
}

// applySecrets writes the commit's image pull secret and its secret
// environment, whose version the pods' template names. fresh: no env
// Secret can be there (installLocked), none to remove.
func (d *Deploy) applySecrets(ctx context.Context, dp *deployment, fresh bool) error {
	if d.Credentials != nil {
		if err := d.cfg.applyPullSecret(ctx, dp.n.Namespace, dp.img.Repository, *d.Credentials); err != nil {
			return err
		}
	}
	if d.Protection.on() {
		if err := d.cfg.applyGate(ctx, dp.n, d.Protection); err != nil {
			return err
		}
	}
	if fresh && len(d.Secrets) == 0 && d.cfg.db == nil {
		return nil
	}
	version, err := d.applyEnv(ctx, dp.n)
	if err != nil {
		return err
	}
	dp.plan.values = mergeValues(dp.plan.values, map[string]any{"envSecret": map[string]any{"version": version}})
	return nil
}

// awaitServing waits until revision rel of the commit is available, and
// on the gateway router until the Gateway has taken its preview route
// (and --verify). A rollout that fails is recorded failed and, while
// production serves the commit (serving, the revision it serves, is not
// 0), undone.
func (d *Deploy) awaitServing(ctx context.Context, dp *deployment, rel *release.Release, serving int) error {
	n, p := dp.n, dp.plan
	if err := d.cfg.waitAvailable(ctx, n.Namespace, n.Release); err != nil {
		err = d.cfg.markFailed(n.Namespace, rel, err)
		if serving > 0 {
			return d.cfg.undoRollout(ctx, n, serving, err)
		}
		return err
	}
	if !p.hasHTTPRoute() {
		return nil
	}
	if err := d.cfg.awaitRoute(ctx, n.Namespace, n.Release); err != nil {
		return err
	}
	return d.cfg.verifyServing(ctx, d.Verify, p.url+p.path(), n.SHA)
}

// moveAlias moves the branch's alias to the deployed commit (alias.go),
// once a deploy has waited for it to be available.
func (d *Deploy) moveAlias(ctx context.Context, dp *deployment) (*Alias, error) {
	n := dp.n
	if dp.alias == nil {
		return nil, nil
	}
	if !d.Wait {
		d.cfg.log.Info("branch alias not moved: it moves to a commit once a deploy has waited for it to be available (--wait)", "ref", n.Ref)
		return nil, nil
	}
	when := d.CommitTime
	if when.IsZero() {
		var err error
		if when, err = d.cfg.commitTime(ctx, n); err != nil {
			return nil, err
		}
	}
	a, err := d.cfg.moveAlias(ctx, n, dp.alias, when, true)
	if err != nil {
		// The commit is deployed: whatever the cause, not "bad input,
		// nothing changed" (exit 2), so the error is not wrapped.
		return nil, fmt.Errorf("deployed %s (%s), but: %v", n.Release, dp.plan.url, err)
	}
	return a, nil
}

// requireRoutable keeps what production's HTTPRoute needs of commit n.
// A ReferenceGrant lets HTTPRoutes of the app's production namespace reach
// the commit's Service; that namespace is made (this project's, refused if
// another project squatted it) before the grant exists, so the grant never
// names a namespace someone else owns. And a commit production's HTTPRoute
// sends requests to (live or canary), or an alias's HTTPRoute does, is
// not re-deployed without its grant (the ingress router): the host would
// answer 500 for it.
func (d *Deploy) requireRoutable(ctx context.Context, n Names, p *plan, reads deployReads) error {
	if p.hasReferenceGrant() {
		return d.cfg.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil)
	}
	route, err := reads.route.get(func() (*gwv1.HTTPRoute, error) { return d.cfg.productionHTTPRoute(ctx, n) })
	if err != nil {
		return err
	}
	if route != nil && slices.Contains(backendNamespaces(route), n.Namespace) {
		return &UsageError{Input: "--router", Value: string(d.cfg.router()), Rule: fmt.Sprintf(
			"production's HTTPRoute sends requests to commit %s: deploy it with --router gateway (this router would remove its ReferenceGrant, and production would answer 500)", n.Short)}
	}
	aliases, err := reads.aliases.get(func() ([]servingAlias, error) { return d.cfg.aliasRoutesTo(ctx, n) })
	if err != nil || len(aliases) == 0 {
		return err
	}
	return &UsageError{Input: "--router", Value: string(d.cfg.router()), Rule: fmt.Sprintf(
		"the HTTPRoute of the alias of branch %s sends requests to commit %s: deploy it with --router gateway (this router would remove its ReferenceGrant, and the alias would answer 500)", aliases[0].Ref, n.Short)}
}

// isLive reports whether production serves commit n.
func (c *Configuration) isLive(ctx context.Context, n Names, fresh bool) (bool, error) {
	rec, err := c.productionRecord(ctx, n, fresh)
	return rec != nil && rec.SHA == n.Short, err
}

// hasProduction reports whether n's app has a production release; read,
// when sent, is the cached read of its record.
func (c *Configuration) hasProduction(ctx context.Context, n Names, read *early[*record]) (bool, error) {
	rec, err := read.get(func() (*record, error) { return c.productionRecord(ctx, n, cached) })
	return rec != nil, err
}

// productionRecord is the deployed record of n's production, nil when
// there is none (or no production namespace yet).
func (c *Configuration) productionRecord(ctx context.Context, n Names, fresh bool) (*record, error) {
	rec, err := c.deployedRecord(ctx, n.ProductionNamespace, n.ProductionRelease, fresh)
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		// No production namespace yet: shipper's role is bound in a
		// namespace only once it exists, so RBAC answers Forbidden.
		return nil, nil
	}
	return rec, err
}

// undoRollout rolls commit n's release back to revision serving (the one
// deployed before), after a rollout failed while production serves n:
// production goes on serving the commit as it was. It waits for that
// revision to be available again and returns cause, saying so.
func (c *Configuration) undoRollout(ctx context.Context, n Names, serving int, cause error) error {
	ctx, cancel := undoContext(ctx)
	defer cancel()
	back, err := c.revert(ctx, n, serving, true)
	switch {
	case !back:
		return fmt.Errorf("%w; the commit is live in production and rolling its release back to revision %d failed too: %v", cause, serving, err)
	case err != nil:
		return fmt.Errorf("%w; the commit is live in production: its release was rolled back to revision %d, which is not available either: %v", cause, serving, err)
	}
	c.log.Warn("the commit is live: rolled its release back so production keeps serving it", "release", n.Release, "to revision", serving)
	return fmt.Errorf("%w; the commit is live in production, so its release was rolled back to revision %d, which production keeps serving", cause, serving)
}
