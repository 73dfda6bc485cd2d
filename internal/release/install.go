package release

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/shipper-dev/shipper/internal/kube"
)

// maxHistory bounds the revisions Helm keeps per release: enough to roll
// production back through its recent promotions.
const maxHistory = 20

// repairPending marks a release left pending-install, pending-upgrade or
// pending-rollback as failed, so the next Helm action can proceed instead
// of stopping at "another operation is in progress". Call it only while
// holding the release's lock: then no other shipper is mid-operation and
// the pending state is a leftover of a killed process. It returns the last
// release record (nil when there is none).
//
// The last revision is found by its labels (one list of metadata, no
// decoding) and only it is read whole: Helm's Releases.Last decodes every
// revision kept (a production release's 20 records are ~30 ms of a
// promote's CPU), and Helm's own upgrade and rollback read the history
// again anyway. A newest record that cannot be read falls back to Helm's
// Last, which skips undecodable records. The records listed are returned
// too, newest first, for pruneHistory.
func (c *Configuration) repairPending(ctx context.Context, cfg *action.Configuration, namespace, name string) (*release.Release, []record, error) {
	recs, err := c.records(ctx, namespace, "name="+name, consistent)
	if err != nil {
		return nil, nil, fmt.Errorf("reading release %q: %w", name, err)
	}
	return c.repairPendingOf(cfg, name, recs, nil)
}

// repairPendingOf is repairPending of the records recs, listed
// consistently under the release's lock; read, when set, is the newest
// revision already read whole under it.
func (c *Configuration) repairPendingOf(cfg *action.Configuration, name string, recs []record, read *release.Release) (*release.Release, []record, error) {
	if len(recs) == 0 {
		return nil, nil, nil
	}
	last, err := read, error(nil)
	if read == nil || read.Version != recs[0].Version {
		last, err = getRelease(cfg, name, recs[0].Version)
	}
	if err != nil {
		last, err = cfg.Releases.Last(name)
	}
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, recs, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading release %q: %w", name, err)
	}
	// A delete killed mid-uninstall leaves "uninstalling", which Helm's
	// install and upgrade refuse ("has no deployed releases"): resolved
	// the same way, so the next deploy re-deploys and the next delete
	// finishes.
	if !last.Info.Status.IsPending() && last.Info.Status != release.StatusUninstalling {
		return last, recs, nil
	}
	was := last.Info.Status
	last.SetStatus(release.StatusFailed, fmt.Sprintf("marked failed by shipper: left %s by an interrupted operation", was))
	if err := cfg.Releases.Update(last); err != nil {
		return nil, nil, fmt.Errorf("repairing release %q left %s: %w", name, was, err)
	}
	c.log.Warn("repaired a release left "+was.String()+" by an interrupted operation", "release", name, "revision", last.Version, "was", was)
	for i := range recs {
		if recs[i].Version == last.Version {
			recs[i].Status = release.StatusFailed.String()
		}
	}
	return last, recs, nil
}

// getRelease is Helm's Releases.Get, with a record that does not decode
// an error: Helm 3.22's Secrets driver panics on one (it sets the labels
// of the nil release), where its Query skips it.
func getRelease(cfg *action.Configuration, name string, version int) (rel *release.Release, err error) {
	defer func() {
		if r := recover(); r != nil {
			rel, err = nil, fmt.Errorf("revision %d of %s does not decode", version, name)
		}
	}()
	return cfg.Releases.Get(name, version)
}

// pruneHistory deletes the oldest of a release's revisions recs (newest
// first, as repairPending returns them) beyond keep, never the newest
// deployed one nor revision also (a rollback's target, which Helm reads
// before it prunes; 0 for none): what Helm's MaxHistory does when it
// stores a revision (storage.removeLeastRecent), done from the records'
// labels. Helm's way decodes every revision kept, twice (its History, then
// Deployed), on every upgrade and rollback: with 20 production revisions,
// a quarter of a promote's CPU. A record's Secret is deleted by name, as
// Helm's driver does, without reading it first (Helm's storage Delete
// decodes it, and panics on one that does not decode). Call it under the
// release's lock, before the upgrade or rollback that adds a revision,
// with keep one less than the history to keep; the action then runs with
// MaxHistory 0. Unlike Helm, a revision that cannot be deleted is left for
// the next run rather than failing the operation, and one is pruned even
// when the action then stops before writing its revision.
func (c *Configuration) pruneHistory(ctx context.Context, recs []record, keep, also int) {
	if len(recs) <= keep {
		return
	}
	deployed := 0 // newest first: the first deployed one stays
	for _, r := range recs {
		if r.Status == release.StatusDeployed.String() {
			deployed = r.Version
			break
		}
	}
	excess := len(recs) - keep
	for i := len(recs) - 1; i >= 0 && excess > 0; i-- {
		r := recs[i]
		if r.Version == deployed || r.Version == also {
			continue
		}
		err := c.client.CoreV1().Secrets(r.Namespace).Delete(ctx, r.Secret, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.log.Warn("could not delete an old revision", "release", r.Name, "revision", r.Version, "error", err)
		}
		excess--
	}
}

// pruneHistoryAside is pruneHistory sent while the caller goes on (with
// the Helm action that adds a revision, which reads none of the revisions
// pruned: the newest, the deployed one and also stay); wait waits for it.
func (c *Configuration) pruneHistoryAside(ctx context.Context, recs []record, keep, also int) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.pruneHistory(ctx, recs, keep, also)
	}()
	return func() { <-done }
}

// helmRelease is one release as an operation that holds its lock finds
// it: Helm's configuration for its namespace, its last revision (nil when
// it has none) and its records, newest first, a revision left pending
// repaired. Every Helm write starts from one (openRelease).
type helmRelease struct {
	cfg             *action.Configuration
	namespace, name string
	last            *release.Release
	records         []record
	// fresh: opened under a Lease the operation made in a namespace it
	// made (lease.Created), so nothing of the release is there yet.
	fresh bool
	// announced: "installing" was said, or is said by the install's gate
	// (installAhead) when its writes go.
	announced bool
}

// openRelease opens release name in namespace for a Helm write under its
// lock, repairing a revision left pending (repairPending).
func (c *Configuration) openRelease(ctx context.Context, namespace, name string) (*helmRelease, error) {
	return c.openReleaseOf(ctx, namespace, name, nil, nil)
}

// openReleaseOf is openRelease with the release's records when the caller
// has listed them already (consistently, under its lock; nil: not), and
// its newest revision when it has read that too (nil: not).
func (c *Configuration) openReleaseOf(ctx context.Context, namespace, name string, recs []record, last *release.Release) (*helmRelease, error) {
	cfg, err := c.helm(namespace)
	if err != nil {
		return nil, err
	}
	if recs != nil {
		last, recs, err = c.repairPendingOf(cfg, name, recs, last)
	} else {
		last, recs, err = c.repairPending(ctx, cfg, namespace, name)
	}
	if err != nil {
		return nil, err
	}
	cfg.Releases.Driver = &knownDriver{Driver: cfg.Releases.Driver, write: &recordWriter{secrets: c.client.CoreV1().Secrets(namespace)}}
	return &helmRelease{cfg: cfg, namespace: namespace, name: name, last: last, records: recs}, nil
}

// freshRecords are the records of a release opened fresh (see
// helmRelease): none, known without a list; else nil, to be listed.
func freshRecords(fresh bool) []record {
	if fresh {
		return []record{}
	}
	return nil
}

// recordAside makes an install of a release opened fresh write its first
// record beside its resources (recordaside.go); settle waits for that
// write and returns its error. Nothing changes for a release that was not
// opened fresh.
func (r *helmRelease) recordAside() (settle func() error) {
	d, ok := r.cfg.Releases.Driver.(*knownDriver)
	kc, isReached := r.cfg.KubeClient.(reachedClient)
	if !r.fresh || !ok || !isReached || d.write == nil {
		return func() error { return nil }
	}
	a := &recordAside{write: d.write, namespace: r.namespace}
	d.aside, kc.aside = a, a
	r.cfg.KubeClient = kc
	return func() error {
		_, err := a.settle()
		return err
	}
}

// sendChecksAhead makes r's install send its existence checks at once
// (checksAhead); drop forgets what they read that was not taken.
func (c *Configuration) sendChecksAhead(ctx context.Context, r *helmRelease) (drop func()) {
	kc, ok := r.cfg.KubeClient.(reachedClient)
	if !ok || c.ahead == nil {
		return func() {}
	}
	kc.ahead = &checksAhead{ctx: ctx, r: c.ahead}
	r.cfg.KubeClient = kc
	return c.ahead.Forget
}

// unrecorded is an install whose first record, written beside its
// resources, was refused, and whose outcome could not be created in its
// place either: no record holds what Helm created, which is deleted (by
// the manifest, as Helm's uninstall would), and the refusal returned. The
// cluster is left as Helm's order, record first, would have left it: the
// install stopped before any resource.
func (r *helmRelease) unrecorded(rel *release.Release, cause error) error {
	err := fmt.Errorf("storing the release's record: %w", cause)
	if rel == nil || rel.Manifest == "" {
		return err
	}
	resources, berr := r.cfg.KubeClient.Build(strings.NewReader(rel.Manifest), false)
	if berr != nil {
		return fmt.Errorf("%w; the resources created beside it could not be read back to delete them: %v", err, berr)
	}
	if _, errs := r.cfg.KubeClient.Delete(resources); len(errs) > 0 {
		return fmt.Errorf("%w; deleting the resources created beside it: %v", err, errors.Join(errs...))
	}
	return err
}

// deployedVersion is the release's newest deployed revision, 0 when none
// is.
func (r *helmRelease) deployedVersion() int {
	for _, rec := range r.records {
		if rec.Status == release.StatusDeployed.String() {
			return rec.Version
		}
	}
	return 0
}

// deployed is the release's deployed revision: its last one when that is
// deployed (one read saved), else Helm's Deployed.
func (r *helmRelease) deployed() (*release.Release, error) {
	if r.last != nil && r.last.Info.Status == release.StatusDeployed {
		return r.last, nil
	}
	return r.cfg.Releases.Deployed(r.name)
}

// installOrUpgrade is `helm upgrade --install` of plan p to release r,
// whose lock the caller holds: the release is installed when it has no
// record, upgraded otherwise (Helm upgrades a release whose only revisions
// failed, too). live, when set, is the live block the release runs with
// (sizing.go), set over the plan's.
func (c *Configuration) installOrUpgrade(ctx context.Context, r *helmRelease, p *plan, live map[string]any) (*release.Release, error) {
	r.cfg.Capabilities = c.capabilitiesFor(p.chart)
	values := p.values
	if live != nil {
		values = maps.Clone(p.values)
		values["live"] = live
	}
	// The plan checked the values against the chart's schema before
	// anything changed, so Helm need not do it again; and the apiserver
	// validates every object it is sent, so Helm's client-side OpenAPI
	// validation (which downloads and parses the OpenAPI documents on every
	// run, about half of a deploy's time) is skipped.
	if r.last == nil {
		if !r.announced {
			c.sayInstalling(p)
		}
		in := action.NewInstall(r.cfg)
		in.ReleaseName, in.Namespace, in.Labels = p.release, p.namespace, p.labels
		in.SkipSchemaValidation, in.DisableOpenAPIValidation = true, true
		in.Timeout = helmTimeout(ctx)
		forget := r.know()
		settle := r.recordAside()
		dropAhead := c.sendChecksAhead(ctx, r)
		rel, err := in.RunWithContext(ctx, p.chart, values)
		dropAhead()
		aside := settle()
		forget()
		if aside != nil && !r.recorded(rel) {
			return rel, r.unrecorded(rel, aside)
		}
		if err != nil {
			return rel, err
		}
		return rel, c.confirmRecorded(ctx, r, rel)
	}
	c.log.Info("upgrading", "release", p.release, "namespace", p.namespace, "from", r.last.Version)
	up := action.NewUpgrade(r.cfg)
	labels := maps.Clone(p.labels)
	for _, l := range p.unlabels {
		labels[l] = "null" // Helm's way to drop a label the last revision had
	}
	up.Namespace, up.Labels = p.namespace, labels
	up.SkipSchemaValidation, up.DisableOpenAPIValidation = true, true
	pruned := c.pruneHistoryAside(ctx, r.records, maxHistory-1, 0)
	up.MaxHistory = 0 // pruned aside
	up.Timeout = helmTimeout(ctx)
	up.Description = p.description
	forget := r.know()
	rel, err := up.RunWithContext(ctx, p.release, p.chart, values)
	forget()
	pruned()
	if err != nil {
		return rel, err
	}
	return rel, c.confirmRecorded(ctx, r, rel)
}

// sayInstalling says that plan p's release is being installed: once, by
// installOrUpgrade or, for an install started ahead, when its writes go.
func (c *Configuration) sayInstalling(p *plan) {
	c.log.Info("installing", "release", p.release, "namespace", p.namespace)
}

// revert returns commit n's release to revision to after a change that
// failed (a rollout, a size-up) and, with wait, waits until that revision
// is available again: deploy's and sizing's one way back. ctx is
// undoContext's. back says whether Helm's rollback was made; err is what
// failed.
func (c *Configuration) revert(ctx context.Context, n Names, to int, wait bool) (back bool, err error) {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return false, err
	}
	rb := action.NewRollback(cfg)
	rb.Version, rb.MaxHistory, rb.Timeout = to, maxHistory, helmTimeout(ctx)
	if err := rb.Run(n.Release); err != nil {
		return false, err
	}
	if wait {
		return true, c.waitAvailable(ctx, n.Namespace, n.Release)
	}
	return true, nil
}

// undoContext is the context of an undo: a minute of its own, whatever is
// left of ctx, as the job's own deadline may be what ended the change.
func undoContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
}

// confirmRecorded makes sure the stored record of rel says what Helm
// returned. Helm's install and upgrade log and ignore an error writing the
// final status (an apiserver restarting at that moment), which leaves the
// release "pending-install" although it is deployed. When the apiserver
// answered that write without error (r.recorded), the record holds it;
// else it is read back (one GET) and written again, with retries, when it
// disagrees.
func (c *Configuration) confirmRecorded(ctx context.Context, r *helmRelease, rel *release.Release) error {
	if r.recorded(rel) {
		return nil
	}
	cfg := r.cfg
	return retry.OnError(kube.TransientBackoff, func(err error) bool { return ctx.Err() == nil }, func() error {
		stored, err := cfg.Releases.Get(rel.Name, rel.Version)
		if err != nil {
			return err
		}
		if stored.Info.Status == rel.Info.Status {
			return nil
		}
		c.log.Warn("re-recording a release whose final status Helm could not write", "release", rel.Name, "revision", rel.Version, "stored", stored.Info.Status, "status", rel.Info.Status)
		return cfg.Releases.Update(rel)
	})
}

// markFailed records that rel did not become available, so that `helm
// list` tells the truth and the next deploy of the same commit upgrades
// (repairs) it. It returns cause.
func (c *Configuration) markFailed(ns string, rel *release.Release, cause error) error {
	cfg, err := c.helm(ns)
	if err != nil {
		return cause
	}
	rel.SetStatus(release.StatusFailed, firstLine(cause.Error()))
	if err := cfg.Releases.Update(rel); err != nil {
		c.log.Warn("could not mark the release failed", "release", rel.Name, "error", err)
	}
	return cause
}

// appContainer is the chart's container whose logs a failure shows.
const appContainer = "app"

// waitAvailable waits until the release's Deployment (the chart names it
// after the release) has rolled out, looking at the release's pods on the
// way (kube.Rollout); a rollout that fails is a *RolloutError.
func (c *Configuration) waitAvailable(ctx context.Context, ns, name string) error {
	r := kube.Rollout{Client: c.client, Log: c.log.With("release", name), Selector: "app.kubernetes.io/instance=" + name, Container: appContainer}
	err := r.Wait(ctx, ns, name)
	var re *kube.RolloutError
	if errors.As(err, &re) {
		return &RolloutError{Release: name, RolloutError: re}
	}
	return err
}
