package release

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// NamespaceRole is the ClusterRole that holds what shipper does inside a
// namespace it manages (deploy/rbac/clusterroles.yaml). shipper's own
// cluster-wide rights hold none of it: right after creating a namespace,
// shipper binds this role there to itself, so its token can touch Secrets,
// Deployments and Pods only in namespaces it made.
const NamespaceRole = "shipper-namespace"

// self is who the apiserver says the Configuration's credentials are
// (authentication.k8s.io SelfSubjectReview, GA in Kubernetes 1.28), asked
// once.
type self struct {
	once sync.Once
	user string
	err  error
}

func (c *Configuration) whoAmI(ctx context.Context) (string, error) {
	c.self.once.Do(func() {
		r, err := c.client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			c.self.err = fmt.Errorf("asking the apiserver who shipper runs as: %w", err)
			return
		}
		c.self.user = r.Status.UserInfo.Username
	})
	return c.self.user, c.self.err
}

// awaitGrant waits until the apiserver's authorizer has seen a RoleBinding
// just made (its RBAC cache follows a watch, a few milliseconds behind), so
// the next request, the Lease, is not refused. SelfSubjectAccessReview asks
// the authorizer itself; at most a few seconds, then the requests that
// follow say what is wrong.
func (c *Configuration) awaitGrant(ctx context.Context, ns string) error {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"},
	}}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 3*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := c.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, nil
		}
		// RBAC names the role once it has seen the binding: a denial that
		// names it ("clusterrole ... shipper-namespace not found") will not
		// change by waiting.
		return r.Status.Allowed || strings.Contains(r.Status.Reason, NamespaceRole), nil
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
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
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper", Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: NamespaceRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	_, err = c.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Debug("granted", "role", NamespaceRole, "namespace", ns, "to", user)
		return c.awaitGrant(ctx, ns)
	case apierrors.IsAlreadyExists(err):
	case apierrors.IsForbidden(err):
		c.log.Debug("could not bind the namespace role; going on with the token's own rights", "namespace", ns, "error", err)
	default:
		return fmt.Errorf("binding %s in namespace %q: %w", NamespaceRole, ns, err)
	}
	return nil
}
