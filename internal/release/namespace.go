package release

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations shipper puts on what it creates. A namespace is
// shipper's, for an app, only when it carries LabelManagedBy=shipper and
// LabelApp=<app>: nothing else is ever deleted.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "shipper"
	LabelApp       = "shipper.dev/app"
	LabelSHA       = "shipper.dev/sha"
	LabelRole      = "shipper.dev/role"
	RolePreview    = "preview"
	RoleProduction = "production"
	// RoleAlias marks a branch alias's route (alias.go).
	RoleAlias = "alias"
	// LabelRef is the branch (or tag) slug of a commit's namespace and of
	// an alias's route and release records.
	LabelRef = "shipper.dev/ref"
	// AnnotationCommitTime is a commit namespace's commit time (RFC 3339),
	// which decides whether a deploy moves its branch's alias.
	AnnotationCommitTime = "shipper.dev/commit-time"
	// AnnotationFirstDeploy is when a commit's first deploy made its
	// namespace (RFC 3339 with nanoseconds: finer than the namespace's
	// creationTimestamp), the order of deploys without commit times.
	AnnotationFirstDeploy = "shipper.dev/first-deploy"
	AnnotationURL         = "shipper.dev/url"
	AnnotationSHA         = "shipper.dev/commit"
)

// ensureNamespace creates namespace ns with shipper's labels, or checks that
// an existing one is shipper's for this app. Pod Security "restricted" is
// enforced, as the chart's defaults comply with it.
func (c *Configuration) ensureNamespace(ctx context.Context, ns string, n Names, role string, labels, annotations map[string]string) error {
	_, err := c.ensureNamespaceThen(ctx, ns, n, role, labels, annotations, func(bool) {})
	return err
}

// ensureNamespaceThen is ensureNamespace that calls bound once shipper's
// role is bound in ns, found or made (the namespace is this app's), and
// before its isolation objects are checked or written: what reads ns
// with the token's rights there may go out from then on. created reports
// whether this call made ns, to bound too.
func (c *Configuration) ensureNamespaceThen(ctx context.Context, ns string, n Names, role string, labels, annotations map[string]string, bound func(created bool)) (created bool, err error) {
	want := map[string]string{
		LabelManagedBy:                       ManagedBy,
		LabelApp:                             n.AppPart,
		LabelRole:                            role,
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
	}
	for k, v := range labels {
		want[k] = v
	}
	if c.project.ID != "" {
		want[LabelProject] = c.project.ID
		annotations = mergeStrings(annotations, map[string]string{AnnotationProjectPath: c.project.Path})
	}
	// The settings are checked before anything changes (exit 2).
	iso, err := c.isolationSettings(ctx)
	if err != nil {
		return false, err
	}
	// GET first: a namespace usually exists already (production, a
	// re-deployed commit), and a GET is one request where a refused POST
	// and a GET are two. Not for one this operation read a moment ago
	// (resolveCommit): as it was then, and a new commit's missing one is
	// POSTed at once, whose refusal (another job made it meanwhile) is read
	// as before.
	got, err := c.getNamespace(ctx, ns)
	if apierrors.IsNotFound(err) {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: want, Annotations: annotations}}
		got, err = c.client.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
		if err == nil {
			c.log.Info("created namespace", "namespace", ns)
			if err := c.grantNamespaceRole(ctx, ns); err != nil {
				return true, err
			}
			bound(true)
			return true, c.ensureIsolation(ctx, ns, iso, true)
		}
		if apierrors.IsAlreadyExists(err) { // another job created it meanwhile
			got, err = c.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		}
	}
	if err != nil {
		return false, fmt.Errorf("ensuring namespace %q: %w", ns, err)
	}
	if err := c.owned(got, n); err != nil {
		return false, err
	}
	if got.DeletionTimestamp != nil {
		return false, fmt.Errorf("namespace %q is being deleted: retry once it is gone", ns)
	}
	bound(false)
	return false, c.keepIsolated(ctx, ns, iso)
}

// mergeStrings returns a and b in one new map; b wins.
func mergeStrings(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// getNamespace reads namespace ns, or answers as the operation's own read
// of it a moment ago did (resolveCommit; it serves once), without a
// request. For a look before any lock only: under one, read it.
func (c *Configuration) getNamespace(ctx context.Context, ns string) (*corev1.Namespace, error) {
	if v, ok := c.seen.LoadAndDelete(ns); ok && time.Since(v.(seenNamespace).at) < seenFor {
		if got := v.(seenNamespace).ns; got != nil {
			return got.DeepCopy(), nil
		}
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), ns)
	}
	return c.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
}

// seenNamespace is a namespace read at a time (ns nil: it was missing).
type seenNamespace struct {
	ns *corev1.Namespace
	at time.Time
}

// seenFor bounds how old a read getNamespace answers with may be: the
// look it saves comes tens of milliseconds after it, in the same
// operation; an older one (left by an operation that stopped before its
// next look) is not used, the namespace is read again.
const seenFor = time.Second
