package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Production size. A commit serves production with its own workload (its
// preview release's Deployment), so promote makes that workload production's
// before the switch and returns it to its preview size after the switch away:
//
//	size up     the incoming commit's release is upgraded with a "live" block
//	            of values: its own replicaCount, resources, autoscaling,
//	            podDisruptionBudget and env with the production overlay
//	            merged over them (the production: block of promote's values,
//	            kept in every production revision), and the Secret of
//	            production's secret variables; then shipper waits until that
//	            many pods are ready, diagnosing as deploy does. A failure
//	            rolls the commit's release back (Helm's rollback) and
//	            switches nothing.
//	switch      production's revision, as before.
//	size down   after a drain delay, without holding production's lock
//	            meanwhile, each commit at production size that production no
//	            longer routes to is upgraded without the block (no wait: it
//	            only loses pods) and its production Secret is deleted.
//
// Each step is a revision, with a description, in `helm history` of the
// release it changes. The commits at production size are listed in one
// Secret of the production namespace, "<app>-production-sized", written
// before a size-up changes anything and cleared after a size-down, so a
// job killed anywhere leaves a list that is a superset of the truth: the
// next promote or rollback sizes down every listed commit production does
// not route to (after the drain delay, counted from its own switch).
// shipper's role grants Secrets and not ConfigMaps in its namespaces; the
// list holds no secret, only short SHAs and times.
//
// All of it runs under production's Lease and the commit's (the order
// production, then commit). A deploy of a commit at production size keeps
// its live block (installOrUpgrade carries it over from the last revision),
// so re-deploying the live commit does not shrink production.

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

// liveBlock is the live block for a commit whose release values are vals:
// each sizing key its own (with the chart's defaults) with the overlay
// merged over it, as Helm merges values files, and the production Secret.
func (c *Configuration) liveBlock(vals map[string]any, s sizing, secret, version string) (map[string]any, error) {
	ch, err := c.Chart()
	if err != nil {
		return nil, err
	}
	own := maps.Clone(vals)
	delete(own, "live")
	eff, err := chartutil.CoalesceValues(ch, own)
	if err != nil {
		return nil, err
	}
	live := map[string]any{"enabled": true, "envSecret": map[string]any{"name": secret, "version": version}}
	for _, k := range sizingKeys {
		v := eff[k]
		if o, ok := s.overlay[k]; ok {
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

// sameValues compares two value trees as JSON: decoded records hold
// float64 where shipper's own maps hold int.
func sameValues(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// sizeUp brings commit n, which production is about to route to (or
// routes to), to production size s and waits until its pods are ready. A
// failure returns the commit's release to the revision it had before
// (Helm's rollback) and says why. With s none, a commit at production size
// returns to its preview size, waited for too. The caller holds
// production's lock and n's.
func (c *Configuration) sizeUp(ctx context.Context, n Names, s sizing, why string) error {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return err
	}
	rel, err := cfg.Releases.Deployed(n.Release)
	if err != nil {
		return fmt.Errorf("reading the deployed revision of %s: %w", n.Release, err)
	}
	current := liveOf(rel.Config)
	if s.none() && current == nil {
		return nil
	}
	want := disabledLive()
	description := "shipper: preview size while serving production (no production overlay): " + why
	if !s.none() {
		// Listed first: from here a killed job leaves a commit that the
		// next promote or rollback finds.
		if err := c.markSized(ctx, n, true); err != nil {
			return err
		}
		version, err := c.applyEnvSecretNamed(ctx, n, productionEnvSecretName(n), s.secrets)
		if err != nil {
			return err
		}
		secret := ""
		if version != "" {
			secret = productionEnvSecretName(n)
		}
		if want, err = c.liveBlock(rel.Config, s, secret, version); err != nil {
			return err
		}
		description = "shipper: sized up for production: " + why
	}
	had := current
	if had == nil {
		had = disabledLive()
	}
	if !sameValues(had, want) {
		if _, err := c.upgradeValues(ctx, n, rel, want, description); err != nil {
			return fmt.Errorf("sizing up %s for production: %w", n.Release, err)
		}
		c.log.Info("sizing up for production", "release", n.Release, "replicas", want["replicaCount"])
	}
	if err := c.waitAvailable(ctx, n.Namespace, n.Release); err != nil {
		if last, lerr := cfg.Releases.Last(n.Release); lerr == nil && last.Version != rel.Version {
			err = c.markFailed(n.Namespace, last, err)
			return c.undoSizeUp(ctx, n, rel.Version, current == nil, err)
		}
		return err
	}
	if s.none() {
		return c.dropSized(ctx, n)
	}
	return nil
}

// undoSizeUp rolls commit n's release back to revision before after a
// size-up that did not become ready, so production is not switched and
// the commit runs as it did. wasPreview: the commit was at its preview
// size, and its production Secret and listing go too.
func (c *Configuration) undoSizeUp(ctx context.Context, n Names, before int, wasPreview bool, cause error) error {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return cause
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	rb := action.NewRollback(cfg)
	rb.Version, rb.MaxHistory, rb.Timeout = before, maxHistory, helmTimeout(ctx)
	if err := rb.Run(n.Release); err != nil {
		return fmt.Errorf("sizing up %s for production: %w; nothing was switched, and rolling its release back to revision %d failed: %v (the next promote or rollback retries)", n.Release, cause, before, err)
	}
	if wasPreview {
		if err := c.dropSized(ctx, n); err != nil {
			c.log.Warn("could not clear the production size of a commit returned to its preview size", "release", n.Release, "error", err)
		}
	}
	c.log.Warn("size-up failed: the commit's release was rolled back, production not switched", "release", n.Release, "to revision", before)
	return fmt.Errorf("sizing up %s for production: %w; nothing was switched: production serves what it served, and the commit's release was rolled back to revision %d", n.Release, cause, before)
}

// sizeDown returns commit n to its preview size: its release upgraded
// without the live block (no wait: it only loses pods), its production
// Secret deleted, its listing cleared. The caller holds production's lock
// and n's. A commit whose release is gone is only unlisted.
func (c *Configuration) sizeDown(ctx context.Context, n Names, productionRevision int) error {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return err
	}
	rel, err := cfg.Releases.Deployed(n.Release)
	if err != nil && !errors.Is(err, driver.ErrNoDeployedReleases) && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("reading the deployed revision of %s: %w", n.Release, err)
	}
	if rel != nil && liveOf(rel.Config) != nil {
		desc := fmt.Sprintf("shipper: sized down to preview (production revision %d routes elsewhere)", productionRevision)
		if _, err := c.upgradeValues(ctx, n, rel, disabledLive(), desc); err != nil {
			return fmt.Errorf("sizing down %s: %w", n.Release, err)
		}
		c.log.Info("sized down to preview", "release", n.Release)
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

// upgradeValues upgrades commit n's release from rel with its own values
// and live as the live block: Helm's upgrade with the recorded values,
// the chart this shipper carries, and description in `helm history`.
func (c *Configuration) upgradeValues(ctx context.Context, n Names, rel *release.Release, live map[string]any, description string) (*release.Release, error) {
	vals := maps.Clone(rel.Config)
	vals["live"] = live
	p, err := c.newPlan(ctx, n, n.Release, n.Namespace, "", "", vals)
	if err != nil {
		return nil, err
	}
	p.description = description
	return c.installOrUpgrade(ctx, p)
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
// production size that production's deployed revision does not route to.
// It waits without holding production's lock, then re-reads both under
// it. A cancelled wait leaves them for the next promote or rollback. It
// returns the short SHAs sized down.
func (c *Configuration) settleSizes(ctx context.Context, n Names, delay time.Duration) ([]string, error) {
	stale, _, err := c.staleSizes(ctx, n)
	if err != nil || len(stale) == 0 {
		return nil, err
	}
	if delay > 0 {
		c.log.Info("draining before the size-down", "commits", strings.Join(stale, ","), "delay", delay)
		select {
		case <-ctx.Done():
			c.log.Warn("cancelled before the size-down: the next promote or rollback does it", "commits", strings.Join(stale, ","))
			return nil, nil
		case <-time.After(delay):
		}
	}
	var done []string
	err = c.withProductionLock(ctx, n, func(ctx context.Context) error {
		stale, revision, err := c.staleSizes(ctx, n)
		if err != nil {
			return err
		}
		for _, sha := range stale {
			cn, err := n.WithSHA(sha)
			if err != nil {
				return err
			}
			if _, err := c.client.CoreV1().Namespaces().Get(ctx, cn.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				if err := c.markSized(ctx, cn, false); err != nil {
					return err
				}
				continue
			}
			if err := c.withLock(ctx, cn.Namespace, cn.Release, func(ctx context.Context) error {
				return c.sizeDown(ctx, cn, revision)
			}); err != nil {
				return err
			}
			done = append(done, sha)
		}
		return nil
	})
	if err != nil {
		return done, fmt.Errorf("sizing down the commits production left (the next promote or rollback retries): %w", err)
	}
	return done, nil
}

// staleSizes are the commits listed at production size that production's
// deployed revision routes no request to, and that revision's number.
func (c *Configuration) staleSizes(ctx context.Context, n Names) ([]string, int, error) {
	sized, err := c.sizedCommits(ctx, n)
	if err != nil || len(sized) == 0 {
		return nil, 0, err
	}
	rec, err := c.deployedRecord(ctx, n.ProductionNamespace, n.ProductionRelease, consistent)
	if err != nil {
		return nil, 0, err
	}
	var stale []string
	revision := 0
	if rec != nil {
		revision = rec.Version
	}
	for _, sha := range sized {
		if rec != nil && (sha == rec.SHA || sha == rec.Canary) {
			continue
		}
		stale = append(stale, sha)
	}
	return stale, revision, nil
}

// RenderLive returns the manifests of commit n's release as promote p
// sizes it up before the switch (Render's, when p sets no production
// size), without a cluster. The Secret of production's variables is named,
// not rendered: shipper writes it at the size-up.
func (d *Deploy) RenderLive(ctx context.Context, n Names, image string, p *Promote) (string, error) {
	pl, _, err := d.plan(ctx, n, image)
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
	live, err := d.cfg.liveBlock(pl.values, s, secret, "")
	if err != nil {
		return "", err
	}
	vals := maps.Clone(pl.values)
	vals["live"] = live
	lp, err := d.cfg.newPlan(ctx, n, n.Release, n.Namespace, pl.host, pl.url, vals)
	if err != nil {
		return "", err
	}
	return lp.manifest, nil
}
