package release

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Production size. A commit serves production with its own workload (its
// preview release's Deployment), so promote makes that workload production's
// before the switch and returns it to its preview size after the switch away:
//
//	size up     the incoming commit's release is upgraded, with the chart it
//	            runs (a values-only change), with a "live" block of values:
//	            its own replicaCount, resources, autoscaling,
//	            podDisruptionBudget and env with the production overlay
//	            merged over them (the production: block of promote's values,
//	            kept in every production revision), the overlay itself, and
//	            the Secret of production's secret variables; then shipper
//	            waits until that many pods are ready, diagnosing as deploy
//	            does. A failure (of Helm's upgrade or of the wait) rolls the
//	            commit's release back (Helm's rollback), puts its production
//	            Secret back as it was, and switches nothing.
//	switch      production's revision, as before.
//	size down   after a drain delay counted from the end of the switch (and
//	            of the Gateway's and --verify's waits), without holding
//	            production's lock meanwhile, each commit at production size
//	            that production no longer routes to is upgraded without the
//	            block (no wait: it only loses pods) and its production Secret
//	            is deleted, under production's Lease and the commit's.
//
// Each step is a revision, with a description, in `helm history` of the
// release it changes. The commits at production size are listed in one
// Secret of the production namespace, "<app>-production-sized", written
// before a size-up changes anything and cleared after a size-down, so a
// job killed anywhere leaves a list that is a superset of the truth: the
// next promote or rollback sizes down every listed commit production does
// not route to (neither its deployed revision nor its newest, a switch
// that may have been cut off). shipper's role grants Secrets and not
// ConfigMaps in its namespaces; the list holds no secret, only short SHAs
// and times.
//
// Size-up and switch run under production's Lease and the commit's (the
// order production, then commit). A deploy of a commit at production size
// keeps it there: deploy recomputes the live block from the new values and
// the overlay the deployed revision recorded (carriedLive) and hands it to
// installOrUpgrade, so re-deploying the live commit neither shrinks
// production nor ignores its new values. Sizing calls install.go, never
// the other way round.

// DefaultDrainDelay is how long the outgoing commit keeps its production
// size after the switch, for requests in flight and connections the
// router still holds.
const DefaultDrainDelay = 30 * time.Second

// sizingKeys are the chart values the production overlay sets.
var sizingKeys = []string{"replicaCount", "resources", "autoscaling", "podDisruptionBudget", "env"}

// productionOverlay is the production overlay of values: the sizing keys
// of their production block. Empty when there is none.
func productionOverlay(vals map[string]any) map[string]any {
	prod, _ := vals["production"].(map[string]any)
	out := map[string]any{}
	for _, k := range sizingKeys {
		if v, ok := prod[k]; ok && v != nil {
			out[k] = v
		}
	}
	return out
}

// Sizing is what production runs with: the overlay from production's
// values and the secret variables of the production environment.
type sizing struct {
	overlay map[string]any
	secrets map[string]string
}

// none reports whether production runs at preview size: no overlay, no
// production secrets.
func (s sizing) none() bool { return len(s.overlay) == 0 && len(s.secrets) == 0 }

// liveOf is the live block of a release's values, nil when it has none
// (or it is disabled).
func liveOf(vals map[string]any) map[string]any {
	l, _ := vals["live"].(map[string]any)
	if on, _ := l["enabled"].(bool); !on {
		return nil
	}
	return l
}

// disabledLive is the live block of a commit at its preview size.
func disabledLive() map[string]any { return map[string]any{"enabled": false} }

// productionEnvSecretName is the Secret of production's secret variables
// in the namespace of a commit at production size.
func productionEnvSecretName(n Names) string { return n.Release + "-env-production" }

// liveBlock is the live block for a commit whose release values are vals
// and chart ch: each sizing key its own (with the chart's defaults) with
// overlay merged over it, as Helm merges values files; the Secret of
// production's variables; and the overlay itself, so a re-deploy of the
// commit recomputes the block from its new values (carriedLive).
func liveBlock(ch *chart.Chart, vals, overlay map[string]any, secret, version string) (map[string]any, error) {
	own := maps.Clone(vals)
	delete(own, "live")
	eff, err := chartutil.CoalesceValues(ch, own)
	if err != nil {
		return nil, err
	}
	live := map[string]any{"enabled": true, "envSecret": map[string]any{"name": secret, "version": version}, "overlay": maps.Clone(overlay)}
	for _, k := range sizingKeys {
		v := eff[k]
		if o, ok := overlay[k]; ok {
			om, oIsMap := o.(map[string]any)
			vm, vIsMap := v.(map[string]any)
			if oIsMap && vIsMap {
				v = mergeValues(vm, om)
			} else {
				v = o
			}
		}
		live[k] = v
	}
	return live, nil
}

// hasLive reports whether chart ch can run a commit at production size:
// its values have the live block (a chart of the user's may not).
func hasLive(ch *chart.Chart) bool {
	_, ok := ch.Values["live"]
	return ok
}

// carriedLive is the live block for plan p of commit release r (a
// re-deploy), recomputed from p's values, when the deployed revision has
// one: a commit at production size stays so when re-deployed, with its new
// values under the same overlay and production Secret. nil when there is
// none to carry. A failed or repaired last revision (a size-up cut off) is
// not carried: the deployed revision says what the commit runs at.
func (c *Configuration) carriedLive(r *helmRelease, p *plan) (map[string]any, error) {
	if r.last == nil || !hasLive(p.chart) {
		return nil, nil
	}
	src, err := r.deployed()
	if err != nil {
		return nil, nil // none deployed: nothing to carry
	}
	live := liveOf(src.Config)
	if live == nil {
		return nil, nil
	}
	overlay, _ := live["overlay"].(map[string]any)
	es, _ := live["envSecret"].(map[string]any)
	name, _ := es["name"].(string)
	version, _ := es["version"].(string)
	c.log.Info("the commit runs at production size: keeping it", "release", p.release)
	return liveBlock(p.chart, p.values, overlay, name, version)
}

// sameValues compares two value trees as JSON: decoded records hold
// float64 where shipper's own maps hold int.
func sameValues(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// sizeUp brings commit n, which production is about to route to (or
// routes to), to production size s and waits until its pods are ready,
// with the chart the release runs (a values-only change). A failure
// returns the commit's release to the revision it had before (Helm's
// rollback) and its production Secret to what it held, and says why.
// With s none, a commit at production size returns to its preview size,
// waited for too. The caller holds production's lock and n's.
func (c *Configuration) sizeUp(ctx context.Context, n Names, s sizing, why string) error {
	if s.none() {
		// No production size, the common case: the list (one GET, which
		// unlike a list of release records does not wait for the watch
		// cache after the Lease's write) says whether the commit may be at
		// production size from an earlier promote; if not, nothing to do.
		sized, err := c.sizedCommits(ctx, n)
		if err != nil {
			return err
		}
		if !slices.Contains(sized, n.Short) {
			return nil
		}
	}
	r, err := c.openRelease(ctx, n.Namespace, n.Release)
	if err != nil {
		return err
	}
	rel, err := r.deployed()
	if err != nil {
		return fmt.Errorf("reading the deployed revision of %s: %w", n.Release, err)
	}
	current := liveOf(rel.Config)
	if s.none() && current == nil {
		return nil
	}
	rz, err := c.resizeFor(ctx, n, rel, s, why)
	if err != nil {
		return err
	}
	had := current
	if had == nil {
		had = disabledLive()
	}
	if sameValues(had, rz.live) {
		return c.waitAvailable(ctx, n.Namespace, n.Release)
	}
	c.log.Info("sizing up for production", "release", n.Release, "replicas", rz.live["replicaCount"])
	up, err := c.upgradeValues(ctx, r, n, rel, rz.live, rz.description)
	if err == nil {
		if err = c.waitAvailable(ctx, n.Namespace, n.Release); err != nil {
			err = c.markFailed(n.Namespace, up, err)
		}
	}
	if err != nil {
		// Helm's upgrade may have failed half way, having recorded a
		// failed revision: undone the same way as a size-up not ready.
		if last, lerr := r.cfg.Releases.Last(n.Release); lerr == nil && last.Version != rel.Version {
			return c.undoSizeUp(ctx, n, rel.Version, current == nil, rz.oldSecret, err)
		}
		return fmt.Errorf("sizing up %s for production: %w", n.Release, err)
	}
	if s.none() {
		return c.dropSized(ctx, n)
	}
	return nil
}

// resize is one change of a commit's size: the live block it gets, the
// description of its revision, and what its production Secret held
// before (put back if the change fails; nil: none).
type resize struct {
	live        map[string]any
	description string
	oldSecret   map[string][]byte
}

// resizeFor is the change that brings commit n, whose deployed revision is
// rel, to size s: with s none its preview size; else production's, the
// commit listed at production size and its production Secret written
// first, so a killed job leaves a commit that the next promote or
// rollback finds.
func (c *Configuration) resizeFor(ctx context.Context, n Names, rel *release.Release, s sizing, why string) (*resize, error) {
	if s.none() {
		return &resize{live: disabledLive(), description: "shipper: preview size while serving production (no production overlay): " + why}, nil
	}
	if !hasLive(rel.Chart) {
		return nil, &UsageError{Input: "chart", Value: rel.Chart.Metadata.Name, Rule: "has no live block in its values, so it cannot run a commit at production size (see charts/preview-app): drop the production: sizing values and the production secret variables, or add it"}
	}
	if err := c.markSized(ctx, n, true); err != nil {
		return nil, err
	}
	name := productionEnvSecretName(n)
	old, err := c.secretData(ctx, n.Namespace, name)
	if err != nil {
		return nil, err
	}
	version, err := c.applyEnvSecretNamed(ctx, n, name, s.secrets)
	if err != nil {
		return nil, err
	}
	if version == "" {
		name = ""
	}
	live, err := liveBlock(rel.Chart, rel.Config, s.overlay, name, version)
	if err != nil {
		return nil, err
	}
	return &resize{live: live, description: "shipper: sized up for production: " + why, oldSecret: old}, nil
}

// undoSizeUp rolls commit n's release back to revision before after a
// size-up that failed, so production is not switched and the commit runs
// as it did, and puts its production Secret back as it was (secret; nil:
// none). wasPreview: the commit was at its preview size, and its listing
// goes too; else it may be live, and the rollback is waited for.
func (c *Configuration) undoSizeUp(ctx context.Context, n Names, before int, wasPreview bool, secret map[string][]byte, cause error) error {
	ctx, cancel := undoContext(ctx)
	defer cancel()
	if err := c.restoreSecret(ctx, n, productionEnvSecretName(n), secret); err != nil {
		c.log.Warn("could not restore the production Secret of a commit whose size-up failed", "release", n.Release, "error", err)
	}
	back, err := c.revert(ctx, n, before, !wasPreview)
	switch {
	case !back:
		return fmt.Errorf("sizing up %s for production: %w; nothing was switched, and rolling its release back to revision %d failed: %v (the next promote or rollback sizes it down)", n.Release, cause, before, err)
	case err != nil:
		return fmt.Errorf("sizing up %s for production: %w; nothing was switched, its release was rolled back to revision %d, which is not available either: %v", n.Release, cause, before, err)
	}
	if wasPreview {
		if err := c.markSized(ctx, n, false); err != nil {
			c.log.Warn("could not unlist a commit returned to its preview size", "release", n.Release, "error", err)
		}
	}
	c.log.Warn("size-up failed: the commit's release was rolled back, production not switched", "release", n.Release, "to revision", before)
	return fmt.Errorf("sizing up %s for production: %w; nothing was switched: production serves what it served, and the commit's release was rolled back to revision %d", n.Release, cause, before)
}

// sizeDown returns commit n to its preview size: its release upgraded
// without the live block (no wait: it only loses pods), its production
// Secret deleted, its listing cleared. A revision left pending by a
// killed size-up is repaired first, and a failed one with the live block
// counts: what Helm applied of it may run. The caller holds production's
// lock and n's. A commit whose release is gone is only unlisted.
func (c *Configuration) sizeDown(ctx context.Context, n Names, why string) error {
	r, err := c.openRelease(ctx, n.Namespace, n.Release)
	if err != nil {
		return err
	}
	if last := r.last; last != nil {
		base := last
		if d, err := r.deployed(); err == nil {
			base = d
		}
		if liveOf(base.Config) != nil || liveOf(last.Config) != nil {
			if _, err := c.upgradeValues(ctx, r, n, base, disabledLive(), "shipper: sized down to preview: "+why); err != nil {
				return fmt.Errorf("sizing down %s: %w", n.Release, err)
			}
			c.log.Info("sized down to preview", "release", n.Release)
		}
	}
	return c.dropSized(ctx, n)
}

// dropSized deletes commit n's production Secret and unlists it.
func (c *Configuration) dropSized(ctx context.Context, n Names) error {
	if _, err := c.applyEnvSecretNamed(ctx, n, productionEnvSecretName(n), nil); err != nil {
		return err
	}
	return c.markSized(ctx, n, false)
}

// secretData is the data of Secret name in ns, nil when there is none.
func (c *Configuration) secretData(ctx context.Context, ns, name string) (map[string][]byte, error) {
	s, err := c.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %s", ns, name, apierrors.ReasonForError(err))
	}
	return s.Data, nil
}

// restoreSecret writes Secret name of commit n back to data (nil: none).
func (c *Configuration) restoreSecret(ctx context.Context, n Names, name string, data map[string][]byte) error {
	vals := make(map[string]string, len(data))
	for k, v := range data {
		vals[k] = string(v)
	}
	_, err := c.applyEnvSecretNamed(ctx, n, name, vals)
	return err
}

// upgradeValues upgrades commit n's release r from rel with rel's values,
// live as the live block, and rel's chart: a values-only change, as
// `helm upgrade --reuse-values` with the same chart, described in `helm
// history`.
func (c *Configuration) upgradeValues(ctx context.Context, r *helmRelease, n Names, rel *release.Release, live map[string]any, description string) (*release.Release, error) {
	vals := maps.Clone(rel.Config)
	vals["live"] = live
	// A values-only change runs no migration: the chart's hook would run
	// the commit's again (production's is promote's, migrate.go).
	delete(vals, "migrate")
	p, err := c.newPlanChart(ctx, n, n.Release, n.Namespace, "", "", rel.Chart, vals)
	if err != nil {
		return nil, err
	}
	p.description = description
	p.labels[LabelSizing] = "down"
	if liveOf(vals) != nil {
		p.labels[LabelSizing] = "up"
	}
	return c.installOrUpgrade(ctx, r, p, nil)
}

// sizedListName is the Secret listing the commits at production size.
func sizedListName(n Names) string { return n.ProductionRelease + "-sized" }

// sizedCommits are the short SHAs listed at production size, sorted.
func (c *Configuration) sizedCommits(ctx context.Context, n Names) ([]string, error) {
	s, err := c.client.CoreV1().Secrets(n.ProductionNamespace).Get(ctx, sizedListName(n), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the commits at production size: %w", err)
	}
	out := slices.Collect(maps.Keys(s.Data))
	sort.Strings(out)
	return out, nil
}

// markSized lists (on) or unlists commit n at production size.
func (c *Configuration) markSized(ctx context.Context, n Names, on bool) error {
	api := c.client.CoreV1().Secrets(n.ProductionNamespace)
	name := sizedListName(n)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := api.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if !on {
				return nil
			}
			s = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: n.ProductionNamespace,
					Labels: map[string]string{LabelManagedBy: ManagedBy, LabelApp: n.AppPart, LabelRole: RoleProduction}},
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{n.Short: []byte(time.Now().UTC().Format(time.RFC3339))},
			}
			_, err = api.Create(ctx, s, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("secrets"), name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if _, listed := s.Data[n.Short]; listed == on {
			return nil
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		if on {
			s.Data[n.Short] = []byte(time.Now().UTC().Format(time.RFC3339))
		} else {
			delete(s.Data, n.Short)
		}
		_, err = api.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// settleSizes sizes down, after delay, every commit of n's app listed at
// production size that production does not route to. It waits without
// holding production's lock, then re-reads both under it. A cancelled
// wait, or a commit that cannot be sized down now (logged), is left for
// the next promote or rollback: the switch is done, and this is its
// clean-up. It returns the short SHAs sized down.
func (c *Configuration) settleSizes(ctx context.Context, n Names, delay time.Duration) []string {
	stale, err := c.staleSizes(ctx, n)
	if err != nil {
		c.log.Warn("could not read the commits at production size: the next promote or rollback sizes them down", "error", err)
		return nil
	}
	if len(stale) == 0 {
		return nil
	}
	if delay > 0 {
		c.log.Info("draining before the size-down", "commits", strings.Join(stale, ","), "delay", delay)
		select {
		case <-ctx.Done():
			c.log.Warn("cancelled before the size-down: the next promote or rollback does it", "commits", strings.Join(stale, ","))
			return nil
		case <-time.After(delay):
		}
	}
	var done []string
	err = c.withProductionLock(ctx, n, func(ctx context.Context) error {
		stale, err := c.staleSizes(ctx, n)
		if err != nil {
			return err
		}
		for _, sha := range stale {
			if err := c.settleOne(ctx, n, sha); err != nil {
				c.log.Warn("could not size a commit down: the next promote or rollback retries", "sha", sha, "error", err)
				continue
			}
			done = append(done, sha)
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not size down the commits production left: the next promote or rollback does it", "error", err)
	}
	return done
}

// settleOne sizes commit sha of n's app down under its Lease, or only
// unlists it when its namespace is gone, going, or not this project's.
func (c *Configuration) settleOne(ctx context.Context, n Names, sha string) error {
	cn, err := n.WithSHA(sha)
	if err != nil {
		return err
	}
	if err := c.requireNamespace(ctx, cn); IsUsage(err) {
		return c.markSized(ctx, cn, false) // gone, going, or not this project's
	} else if err != nil {
		return err
	}
	return c.locker.Do(ctx, cn.Namespace, cn.Release, func(ctx context.Context) error {
		return c.sizeDown(ctx, cn, "production routes elsewhere")
	})
}

// staleSizes are the commits listed at production size that production
// routes no request to: neither its deployed revision nor its newest (a
// switch cut off, pending or failed, may route to its commit until the
// next promote or rollback repairs it).
func (c *Configuration) staleSizes(ctx context.Context, n Names) ([]string, error) {
	sized, err := c.sizedCommits(ctx, n)
	if err != nil || len(sized) == 0 {
		return nil, err
	}
	hist, err := c.records(ctx, n.ProductionNamespace, "name="+n.ProductionRelease, consistent)
	if err != nil {
		return nil, err
	}
	routed := map[string]bool{}
	for i, r := range hist {
		if i == 0 || r.Status == release.StatusDeployed.String() {
			routed[r.SHA], routed[r.Canary] = true, true
		}
	}
	var stale []string
	for _, sha := range sized {
		if !routed[sha] {
			stale = append(stale, sha)
		}
	}
	return stale, nil
}

// RenderLive returns the manifests of commit n's release as promote p
// sizes it up before the switch (Render's, when p sets no production
// size), without a cluster. The Secret of production's variables is named,
// not rendered: shipper writes it at the size-up.
func (d *Deploy) RenderLive(ctx context.Context, n Names, image string, p *Promote) (string, error) {
	pl, _, err := d.plan(ctx, n, image, nil)
	if err != nil {
		return "", err
	}
	s := sizing{overlay: productionOverlay(p.Values), secrets: p.Secrets}
	if s.none() {
		return pl.manifest, nil
	}
	secret := ""
	if len(s.secrets) > 0 {
		secret = productionEnvSecretName(n)
	}
	live, err := liveBlock(pl.chart, pl.values, s.overlay, secret, "")
	if err != nil {
		return "", err
	}
	vals := maps.Clone(pl.values)
	vals["live"] = live
	lp, err := d.cfg.newPlanChart(ctx, n, n.Release, n.Namespace, pl.host, pl.url, pl.chart, vals)
	if err != nil {
		return "", err
	}
	return lp.manifest, nil
}
