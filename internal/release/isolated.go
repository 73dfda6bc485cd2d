package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationIsolation is, on a namespace's NetworkPolicy, the stamp of
// the three isolation objects it was written with (isolationStamp).
const AnnotationIsolation = "shipper.dev/isolation"

// isolationStamp sums the specs of a namespace's three isolation objects
// as the settings want them.
func isolationStamp(np *networkingv1.NetworkPolicy, rq *corev1.ResourceQuota, lr *corev1.LimitRange) string {
	b, _ := json.Marshal([]any{np.Spec, rq.Spec, lr.Spec})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// stamped is ensureIsolation's differ for the NetworkPolicy: its spec,
// and the stamp of the objects written before it.
func stamped(want *networkingv1.NetworkPolicy) func(*networkingv1.NetworkPolicy) bool {
	spec := setSpec(want.Spec, func(o *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicySpec { return &o.Spec })
	return func(got *networkingv1.NetworkPolicy) bool {
		changed := spec(got)
		if v := want.Annotations[AnnotationIsolation]; got.Annotations[AnnotationIsolation] != v {
			metav1.SetMetaDataAnnotation(&got.ObjectMeta, AnnotationIsolation, v)
			changed = true
		}
		return changed
	}
}

// keepIsolated is what ensureNamespace does for a namespace that exists:
// its RoleBinding and its three isolation objects, as the run that made
// it left them or a later one brought them to the settings. One GET says
// whether that is done: ensureIsolation writes the NetworkPolicy last,
// stamped with the specs of all three (isolationStamp), so a NetworkPolicy
// with the settings' spec and stamp was written after the quota and the
// LimitRange it names, and after the RoleBinding, without which a
// project's token could not have read it. Anything else (a job killed
// before the end, settings changed since, a namespace from before the
// stamp or the objects, an object removed by an admin with the
// NetworkPolicy) takes the whole way: the binding, then each object read
// and brought to the settings. (A quota or LimitRange changed by hand
// under a stamped NetworkPolicy is brought back at the next change of the
// settings; a project's token may only lower them, deploy/rbac's
// policies see to that.)
func (c *Configuration) keepIsolated(ctx context.Context, ns string, iso *isolation) error {
	np, rq, lr := iso.objects(ns)
	got, err := c.client.NetworkingV1().NetworkPolicies(ns).Get(ctx, IsolationPolicy, metav1.GetOptions{})
	if err == nil && got.Annotations[AnnotationIsolation] == isolationStamp(np, rq, lr) &&
		apiequality.Semantic.DeepEqual(got.Spec, np.Spec) {
		return nil
	}
	if err := c.grantNamespaceRole(ctx, ns); err != nil {
		return err
	}
	return c.ensureIsolation(ctx, ns, iso, false)
}
