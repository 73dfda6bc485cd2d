package release

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Delete uninstalls one commit's release and deletes its namespace. It
// refuses the commit production serves, and one a branch alias serves
// unless WithAlias, and never deletes a namespace that shipper did not
// create for that app.
type Delete struct {
	cfg *Configuration
	// WithAlias deletes the branch aliases that serve the commit with it
	// (a GitLab stop job of the branch's review environment).
	WithAlias bool
}

// NewDelete returns a Delete.
func NewDelete(cfg *Configuration) *Delete { return &Delete{cfg: cfg} }

// Deleted says what Delete did. Gone is true when there was nothing left
// to delete (a GitLab stop job that runs twice).
type Deleted struct {
	Release string `json:"release"`
	Gone    bool   `json:"alreadyGone"`
	// Aliases are the branches whose alias went with it (WithAlias).
	Aliases []string `json:"aliases,omitempty"`
}

// Run deletes commit n.
func (d *Delete) Run(ctx context.Context, n Names) (*Deleted, error) {
	n, _, err := d.cfg.beginCommit(ctx, n)
	if err != nil {
		return nil, err
	}
	out, err := d.prepare(ctx, n)
	if err != nil || out.Gone {
		return out, err
	}
	// Locks in the one order every operation takes them: production's,
	// then (with WithAlias) the aliases', then the commit's. Under
	// production's, a promote of this commit cannot slip in between the
	// checks and the delete; under the commit's, neither can a deploy of
	// it, nor an alias move to it.
	err = d.cfg.withProductionLock(ctx, n, func(ctx context.Context) error { return d.locked(ctx, n, out, nil) })
	if errors.Is(err, ErrNoProduction) {
		err = d.locked(ctx, n, out, nil) // no production yet: the commit's lock alone
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

// locked deletes commit n under the aliases' locks (WithAlias) and its
// own, the caller holding production's. guard, when set, runs first under
// them all: prune's check that the commit is still what it planned to
// remove.
func (d *Delete) locked(ctx context.Context, n Names, out *Deleted, guard func(context.Context) error) error {
	var aliasLocks []string
	if d.WithAlias {
		serving, err := d.cfg.aliasesServing(ctx, n, cached)
		if err != nil {
			return err
		}
		for _, a := range serving {
			aliasLocks = append(aliasLocks, a.Release)
		}
	}
	return d.cfg.withLocks(ctx, n.ProductionNamespace, aliasLocks, func(ctx context.Context) error {
		return d.cfg.withLock(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
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
				return &UsageError{Input: "commit", Value: n.Short, Rule: "is live in production: promote another commit (`shipper promote --sha <sha>`) or roll back (`shipper rollback`) first"}
			}
			if err := d.cfg.requireNoRoute(ctx, n); err != nil {
				return err
			}
			serving, err := d.cfg.aliasesServing(ctx, n, consistent)
			if err != nil {
				return err
			}
			for _, a := range serving {
				if !d.WithAlias {
					return &UsageError{Input: "commit", Value: n.Short, Rule: fmt.Sprintf(
						"the alias of branch %s (release %s) serves it: deploy a newer commit of the branch, or delete with --with-alias", a.Ref, a.Release)}
				}
				if !slices.Contains(aliasLocks, a.Release) {
					return fmt.Errorf("the alias of branch %s moved to this commit meanwhile: run again", a.Ref)
				}
			}
			for _, a := range serving {
				if err := d.cfg.uninstallAlias(ctx, n, a); err != nil {
					return err
				}
				out.Aliases = append(out.Aliases, a.Ref)
			}
			return d.cfg.uninstall(ctx, n)
		})
	})
}

// uninstall removes the Helm release (so `helm list -A` stops showing it
// at once) and then the namespace, which takes the pull secret and lease.
func (c *Configuration) uninstall(ctx context.Context, n Names) error {
	if err := c.helmUninstall(ctx, n.Namespace, n.Release); err != nil {
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
// already gone is no error.
func (c *Configuration) helmUninstall(ctx context.Context, namespace, release string) error {
	cfg, err := c.helm(namespace)
	if err != nil {
		return err
	}
	if _, err := c.repairPending(cfg, release); err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = helmTimeout(ctx)
	if _, err := un.Run(release); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("helm uninstall %s: %w", release, err)
	}
	return nil
}
