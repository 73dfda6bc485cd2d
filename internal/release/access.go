package release

import (
	"context"
	"fmt"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/kube"
)

// NamespaceRole is the ClusterRole that holds what shipper does inside a
// namespace it manages (deploy/rbac/clusterroles.yaml). shipper's own
// cluster-wide rights hold none of it: right after creating a namespace,
// shipper binds this role there to itself, so its token can touch Secrets,
// Deployments and Pods only in namespaces it made.
const NamespaceRole = "shipper-namespace"

// self is who the apiserver says the Configuration's credentials are
// (kube.WhoAmI), asked once.
type self struct {
	once sync.Once
	user string
	err  error
}

func (c *Configuration) whoAmI(ctx context.Context) (string, error) {
	c.self.once.Do(func() { c.self.user, c.self.err = kube.WhoAmI(ctx, c.client) })
	return c.self.user, c.self.err
}

// projectAccountPrefix names the ServiceAccounts of deploy/rbac that act
// for one GitLab project each: project-<ID> in namespace shipper-system.
const projectAccountPrefix = "system:serviceaccount:shipper-system:project-"

// requireOwnToken refuses, before anything changes, a job whose token is
// one project's ServiceAccount while the job says it acts for another: the
// admission policies would refuse its writes anyway, with a less helpful
// message.
func (c *Configuration) requireOwnToken(ctx context.Context) error {
	user, err := c.whoAmI(ctx)
	if err != nil {
		return nil // no SelfSubjectReview: the apiserver's own checks decide
	}
	id, ok := strings.CutPrefix(user, projectAccountPrefix)
	if !ok || id == c.project.ID {
		return nil
	}
	return &UsageError{Input: "project ID", Value: c.project.ID, Rule: fmt.Sprintf(
		"the cluster token is ServiceAccount project-%s, which acts for GitLab project %s only: use this project's own token, or --project-id %s", id, id, id)}
}

// grantNamespaceRole binds NamespaceRole in ns to shipper's own identity.
// It runs whenever shipper ensures one of its namespaces, not only when it
// creates one: a job killed between the two leaves a namespace without the
// binding, which the next run completes. A refusal is not fatal: with a
// token that already has these rights everywhere (an admin, or the broad
// rules of shipper < 0.2) the binding is not needed, and with one that
// needs it the next request says Forbidden.
func (c *Configuration) grantNamespaceRole(ctx context.Context, ns string) error {
	user, err := c.whoAmI(ctx)
	if err != nil {
		// An apiserver older than 1.28 has no SelfSubjectReview, and only
		// an admin-like token can work there: go on with its rights.
		c.log.Debug("not binding the namespace role", "namespace", ns, "error", err)
		return nil
	}
	// The next requests, the Lease and the isolation objects (the quota
	// and the LimitRange at once), must not meet an authorizer that has
	// not seen the binding yet. The Lease is asked about, and so is a
	// Secret, a right every version of the role grants: a token may have
	// Leases from another grant (everywhere), which says nothing of the
	// binding. (Not the quota: the role of manifests older than the
	// isolation objects does not grant it, and would be waited for in
	// vain.) Not at all when the token may do anything there without the
	// binding (an admin's), asked while it is written.
	lease := authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"}
	secret := authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "secrets"}
	anything := authorizationv1.ResourceAttributes{Namespace: ns, Verb: "*", Group: "*", Resource: "*"}
	already := readEarly(func() (bool, error) { return kube.Allowed(ctx, c.client, anything) })
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper", Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: NamespaceRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	_, err = c.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Debug("granted", "role", NamespaceRole, "namespace", ns, "to", user)
		if ok, _ := already.get(nil); ok {
			return nil
		}
		return kube.AwaitBinding(ctx, c.client, NamespaceRole, lease, secret)
	case apierrors.IsAlreadyExists(err):
	case apierrors.IsForbidden(err):
		c.log.Debug("could not bind the namespace role; going on with the token's own rights", "namespace", ns, "error", err)
	default:
		return fmt.Errorf("binding %s in namespace %q: %w", NamespaceRole, ns, err)
	}
	return nil
}
