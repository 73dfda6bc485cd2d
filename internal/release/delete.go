package release

import (
	"context"
	"errors"
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/lease"
)

// Delete uninstalls one commit's release and deletes its namespace. It
// refuses the commit production serves, and one a branch alias serves,
// and never deletes a namespace that shipper did not create for that app.
type Delete struct {
	cfg *Configuration
	// WithAlias, for names made WithRef, is a GitLab stop job of the
	// branch's review environment: the branch's alias goes first, whatever
	// commit it serves; then the commit, unless something else still needs
	// it (production, a canary, another branch's alias), in which case it
	// is kept and Deleted.Kept says why, with no error.
	WithAlias bool
}

// NewDelete returns a Delete.
func NewDelete(cfg *Configuration) *Delete { return &Delete{cfg: cfg} }

// Deleted says what Delete did. Gone is true when there was nothing left
// to delete (a GitLab stop job that runs twice).
type Deleted struct {
	Release string `json:"release"`
	Gone    bool   `json:"alreadyGone"`
	// Aliases are the branches whose alias was deleted (WithAlias).
	Aliases []string `json:"aliases,omitempty"`
	// Kept says why the commit was kept (WithAlias).
	Kept string `json:"kept,omitempty"`
}

// Run deletes commit n.
func (d *Delete) Run(ctx context.Context, n Names) (*Deleted, error) {
	if d.WithAlias && n.Ref == "" {
		return nil, &UsageError{Input: "--with-alias", Value: "", Rule: "needs the branch whose alias goes: --ref (GitLab sets CI_COMMIT_REF_SLUG)"}
	}
	n, _, err := d.cfg.beginCommit(ctx, n, writing)
	if err != nil {
		return nil, err
	}
	out, err := d.prepare(ctx, n)
	if err != nil || out.Gone && !d.WithAlias {
		return out, err
	}
	// Locks in the one order every operation takes them: production's,
	// then (WithAlias) the alias's, then the commit's. Under the commit's,
	// no deploy, promote, rollback or alias move reaches the commit
	// between the checks and the delete (each takes it); production's
	// keeps a promote from even planning with it meanwhile.
	// Those after production's are watched from now on, so a killed
	// delete's locks expire together for the next one (lease.Locker.LookAhead).
	ahead := []lease.Name{{Namespace: n.Namespace, Name: n.Release}}
	if d.WithAlias {
		ahead = append(ahead, lease.Name{Namespace: n.ProductionNamespace, Name: n.AliasRelease})
	}
	lctx, stop := d.cfg.locker.LookAhead(ctx, ahead...)
	defer stop()
	err = d.cfg.withProductionLock(lctx, n, func(ctx context.Context) error { return d.locked(ctx, n, out, true, nil) })
	if errors.Is(err, ErrNoProduction) {
		// No production namespace yet: no alias either, the commit's lock
		// alone.
		err = d.locked(lctx, n, out, false, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("deleting %s: %w", n.Release, err)
	}
	return out, nil
}

// prepare checks what can be checked before any lock: the namespace is
// this app's preview (Gone when there is nothing to delete), and binds
// shipper's role in it.
func (d *Delete) prepare(ctx context.Context, n Names) (*Deleted, error) {
	ns, err := d.cfg.client.CoreV1().Namespaces().Get(ctx, n.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		d.cfg.log.Info("already gone", "release", n.Release)
		return &Deleted{Release: n.Release, Gone: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %q: %w", n.Namespace, err)
	}
	if err := d.cfg.owned(ns, n); err != nil {
		return nil, err
	}
	if ns.DeletionTimestamp != nil {
		d.cfg.log.Info("already being deleted", "release", n.Release, "namespace", n.Namespace)
		return &Deleted{Release: n.Release, Gone: true}, nil
	}
	if role := ns.Labels[LabelRole]; role != RolePreview {
		return nil, &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf("namespace %q is not a preview namespace (role %q)", n.Namespace, role)}
	}
	// A deploy killed between creating the namespace and binding shipper's
	// role in it leaves a namespace shipper cannot read: bind it first, so
	// the GitLab stop job can always delete what a deploy began.
	if err := d.cfg.grantNamespaceRole(ctx, n.Namespace); err != nil {
		return nil, err
	}
	return &Deleted{Release: n.Release}, nil
}

// locked deletes commit n under its branch alias's lock (WithAlias, when
// the production namespace exists) and its own, the caller holding
// production's when it exists. guard, when set, runs first under the
// commit's lock: prune's check that the commit is still what it planned
// to remove.
func (d *Delete) locked(ctx context.Context, n Names, out *Deleted, production bool, guard func(context.Context) error) error {
	var aliasLocks []string
	if d.WithAlias && production {
		aliasLocks = []string{n.AliasRelease}
	}
	// refuse is a check's verdict: an error, or with WithAlias (a stop
	// job) the reason the commit stays.
	refuse := func(err error) error {
		var ue *UsageError
		if d.WithAlias && errors.As(err, &ue) {
			out.Kept = ue.Rule
			d.cfg.log.Info("kept the commit", "release", n.Release, "why", ue.Rule)
			return nil
		}
		return err
	}
	return d.cfg.locker.DoAll(ctx, n.ProductionNamespace, aliasLocks, func(ctx context.Context) error {
		if len(aliasLocks) > 0 {
			gone, err := d.cfg.uninstallAlias(ctx, n, servingAlias{Release: n.AliasRelease, Ref: n.Ref})
			if err != nil {
				return err
			}
			if !gone {
				out.Aliases = append(out.Aliases, n.Ref)
			}
		}
		if out.Gone {
			return nil
		}
		return d.cfg.locker.Do(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
			if guard != nil {
				if err := guard(ctx); err != nil {
					return err
				}
			}
			live, err := d.cfg.isLive(ctx, n, consistent)
			if err != nil {
				return err
			}
			if live {
				return refuse(&UsageError{Input: "commit", Value: n.Short, Rule: "is live in production: promote another commit (`shipper promote --sha <sha>`) or roll back (`shipper rollback`) first"})
			}
			if err := d.cfg.requireNoRoute(ctx, n); err != nil {
				return refuse(err)
			}
			serving, err := d.cfg.aliasesServing(ctx, n, consistent)
			if err != nil {
				return err
			}
			if len(serving) > 0 {
				return refuse(&UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf(
					"the alias of branch %s (release %s) serves it: deploy a newer commit of that branch, or delete it with that branch's stop job (--ref %s --with-alias)",
					serving[0].Ref, serving[0].Release, serving[0].Ref)})
			}
			return d.cfg.uninstall(ctx, n)
		})
	})
}

// uninstall stops a migration a killed job left running (migrate.go),
// drops the commit's database (database.go), removes the Helm
// release (so `helm list -A` stops showing it at once) and then the
// namespace, which takes the pull secret and lease.
func (c *Configuration) uninstall(ctx context.Context, n Names) error {
	if err := c.stopMigrations(ctx, n); err != nil {
		return err
	}
	if err := c.dropDatabase(ctx, n); err != nil {
		return err
	}
	if _, err := c.helmUninstall(ctx, n.Namespace, n.Release); err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	err := c.client.CoreV1().Namespaces().Delete(ctx, n.Namespace, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %q: %w", n.Namespace, err)
	}
	c.log.Info("deleted", "release", n.Release, "namespace", n.Namespace)
	return nil
}

// helmUninstall is `helm uninstall` of release in namespace, whose lock
// the caller holds: a record left pending is repaired first, and a release
// already gone is no error (gone is true).
func (c *Configuration) helmUninstall(ctx context.Context, namespace, release string) (gone bool, err error) {
	cfg, err := c.helm(namespace)
	if err != nil {
		return false, err
	}
	if _, _, err := c.repairPending(ctx, cfg, namespace, release); err != nil {
		return false, err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = helmTimeout(ctx)
	_, err = un.Run(release)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("helm uninstall %s: %w", release, err)
	}
	return false, nil
}
