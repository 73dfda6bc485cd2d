package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// WhoAmI is who the apiserver says client's credentials are
// (authentication.k8s.io SelfSubjectReview, GA in Kubernetes 1.28), as
// `kubectl auth whoami` asks.
func WhoAmI(ctx context.Context, client kubernetes.Interface) (string, error) {
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the apiserver who shipper runs as: %w", err)
	}
	return r.Status.UserInfo.Username, nil
}

// Allowed asks the apiserver's authorizer once whether client's
// credentials may make the request ra describes
// (SelfSubjectAccessReview). An error says nothing either way.
func Allowed(ctx context.Context, client kubernetes.Interface, ra authorizationv1.ResourceAttributes) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}
	r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// AwaitBinding waits until the apiserver's authorizer has seen a binding
// of ClusterRole role just made (its RBAC cache follows a watch, a few
// milliseconds behind), so that the requests ras describe, sent next, are
// not refused. SelfSubjectAccessReview asks the authorizer itself, for
// each request in turn: one the token may already make through another
// grant says nothing about the binding, so every request sent at once
// after it is asked about. At most a few seconds in all, then the
// requests that follow say what is wrong. It fails only when ctx ends.
func AwaitBinding(ctx context.Context, client kubernetes.Interface, role string, ras ...authorizationv1.ResourceAttributes) error {
	budget, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, ra := range ras {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}
		err := wait.PollUntilContextCancel(budget, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			if err != nil {
				return false, nil
			}
			// RBAC names the role once it has seen the binding: a denial
			// that names it (`clusterrole.rbac.authorization.k8s.io
			// "<role>" not found`) will not change by waiting.
			return r.Status.Allowed || strings.Contains(r.Status.Reason, role), nil
		})
		if err != nil {
			return ctx.Err() // nil once the budget is spent
		}
	}
	return nil
}
