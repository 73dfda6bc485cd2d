package release

import (
	"context"
	"errors"
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/storage/driver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Delete uninstalls one commit's release and deletes its namespace. It
// refuses the commit production serves, and never deletes a namespace that
// shipper did not create for that app.
type Delete struct{ cfg *Configuration }

// NewDelete returns a Delete.
func NewDelete(cfg *Configuration) *Delete { return &Delete{cfg: cfg} }

// Deleted says what Delete did. Gone is true when there was nothing left
// to delete (a GitLab stop job that runs twice).
type Deleted struct {
	Release string `json:"release"`
	Gone    bool   `json:"alreadyGone"`
}

// Run deletes commit n.
func (d *Delete) Run(ctx context.Context, n Names) (*Deleted, error) {
	n, _, err := d.cfg.beginCommit(ctx, n)
	if err != nil {
		return nil, err
	}
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
	// Locks in the one order every operation takes them: production's,
	// then the commit's. Under production's, a promote of this commit
	// cannot slip in between the checks and the delete; under the
	// commit's, neither can a deploy of it.
	del := func(ctx context.Context) error {
		return d.cfg.withLock(ctx, n.Namespace, n.Release, func(ctx context.Context) error {
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
			return d.cfg.uninstall(ctx, n)
		})
	}
	err = d.cfg.withProductionLock(ctx, n, del)
	if errors.Is(err, ErrNoProduction) {
		err = del(ctx) // no production yet: the commit's lock alone
	}
	if err != nil {
		return nil, fmt.Errorf("deleting %s: %w", n.Release, err)
	}
	return &Deleted{Release: n.Release}, nil
}

// uninstall removes the Helm release (so `helm list -A` stops showing it
// at once) and then the namespace, which takes the pull secret and lease.
func (c *Configuration) uninstall(ctx context.Context, n Names) error {
	cfg, err := c.helm(n.Namespace)
	if err != nil {
		return err
	}
	if _, err := c.repairPending(cfg, n.Release); err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = helmTimeout(ctx)
	if _, err := un.Run(n.Release); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("helm uninstall %s: %w", n.Release, err)
	}
	policy := metav1.DeletePropagationBackground
	err = c.client.CoreV1().Namespaces().Delete(ctx, n.Namespace, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %q: %w", n.Namespace, err)
	}
	c.log.Info("deleted", "release", n.Release, "namespace", n.Namespace)
	return nil
}
