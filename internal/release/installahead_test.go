package release_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	admv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/release"
)

// releaseLeft lists what of release ns exists in namespace ns: its
// records, and its Service, Deployment and Ingress.
func releaseLeft(t *testing.T, f *deployFixture, ns string) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	records, err := f.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range records.Items {
		left = append(left, "record "+s.Name+" "+s.Labels["status"])
	}
	if _, err := f.cs.CoreV1().Services(ns).Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "Service")
	}
	if _, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "Deployment")
	}
	if _, err := f.cs.NetworkingV1().Ingresses(ns).Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "Ingress")
	}
	return left
}

// installAhead starts a new commit's install ahead of its lock for a
// fresh app (release.InstallAhead), then opens its gate or gives it up.
func installAhead(t *testing.T, open bool) (*deployFixture, release.Names, *helmrelease.Release, error) {
	t.Helper()
	f := newDeployFixture(t)
	n, err := release.NewNames(f.app, testSHA)
	if err != nil {
		t.Fatal(err)
	}
	d := release.NewDeploy(f.cfg)
	d.Hosts = release.Hosts{Domain: "preview.example.com"}
	rel, err := release.InstallAhead(context.Background(), d, n, f.image, open)
	return f, n, rel, err
}

// TestInstallAheadGivenUpWritesNothing: an install started ahead of its
// lock, whose first write waits at its gate, leaves nothing in the cluster
// when it is given up (a deploy that could not isolate its namespace, a
// Lease it did not make, a cancelled job): no record, failed or pending,
// and no resource; it fails.
func TestInstallAheadGivenUpWritesNothing(t *testing.T) {
	f, n, _, err := installAhead(t, false)
	// Its writes fail with the gate's reason, or its context ends first.
	if !errors.Is(err, release.ErrNotAhead) && !errors.Is(err, context.Canceled) {
		t.Errorf("the install given up returned %v, want %v (or its context's end)", err, release.ErrNotAhead)
	}
	if left := releaseLeft(t, f, n.Namespace); len(left) > 0 {
		t.Errorf("an install given up at its gate left %v in the cluster, want nothing", left)
	}
}

// TestInstallAheadOpenedInstalls: the same install, its gate opened, is
// Helm's install as a deploy makes it: the record deployed, the resources
// there.
func TestInstallAheadOpenedInstalls(t *testing.T) {
	f, n, rel, err := installAhead(t, true)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 1 || rel.Info.Status.String() != "deployed" {
		t.Errorf("install = revision %d %s, want 1 deployed", rel.Version, rel.Info.Status)
	}
	left := releaseLeft(t, f, n.Namespace)
	want := []string{"record sh.helm.release.v1." + n.Release + ".v1 deployed", "Service", "Deployment", "Ingress"}
	if len(left) != len(want) {
		t.Fatalf("after the install: %v, want %v", left, want)
	}
	for i := range want {
		if left[i] != want[i] {
			t.Errorf("after the install: %v, want %v", left, want)
			break
		}
	}
}

// refuseCreate makes the apiserver refuse, with a ValidatingAdmissionPolicy,
// the creation of resource (of group) in the namespaces of f's app, unless
// the CEL expression allow holds; it returns once a dry-run create of
// probe in a namespace of the app is refused.
func refuseCreate(t *testing.T, f *deployFixture, group, resource, allow string, probe func(ctx context.Context, ns string) error) {
	t.Helper()
	ctx := context.Background()
	name := "refuse-" + f.app + "-" + resource
	vap := &admv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admv1.Fail),
			MatchConstraints: &admv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{release.LabelApp: f.app}},
				ResourceRules: []admv1.NamedRuleWithOperations{{RuleWithOperations: admv1.RuleWithOperations{
					Operations: []admv1.OperationType{admv1.Create},
					Rule:       admv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: []string{resource}},
				}}},
			},
			Validations: []admv1.Validation{{Expression: allow, Message: "refused by the test's policy"}},
		},
	}
	if _, err := f.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := &admv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       admv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name, ValidationActions: []admv1.ValidationAction{admv1.Deny}},
	}
	if _, err := f.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = f.cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	probeNS := f.app + "-probe"
	if _, err := f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS, Labels: map[string]string{release.LabelApp: f.app}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.cs.CoreV1().Namespaces().Delete(context.Background(), probeNS, metav1.DeleteOptions{}) })
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return strings.Contains(errString(probe(ctx, probeNS)), "refused by the test's policy"), nil
	})
	if err != nil {
		t.Fatalf("the policy on %s never took effect: %v", resource, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDeployFailingBeforeItsGateWritesNothing: a new commit's deploy that
// fails once its install has started ahead (its NetworkPolicy refused, or
// its pull Secret, written under the lock) leaves no record, Service,
// Deployment nor Ingress of the release, and never says "installing".
// From the hostile review of the install ahead.
func TestDeployFailingBeforeItsGateWritesNothing(t *testing.T) {
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for _, c := range []struct {
		group, resource, allow string
		probe                  func(f *deployFixture) func(ctx context.Context, ns string) error
	}{
		{"networking.k8s.io", "networkpolicies", "false", func(f *deployFixture) func(ctx context.Context, ns string) error {
			return func(ctx context.Context, ns string) error {
				_, err := f.cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, dryRun)
				return err
			}
		}},
		{"", "secrets", "object.metadata.name != '" + release.PullSecretName + "'", func(f *deployFixture) func(ctx context.Context, ns string) error {
			return func(ctx context.Context, ns string) error {
				_, err := f.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: release.PullSecretName}}, dryRun)
				return err
			}
		}},
	} {
		t.Run(c.resource, func(t *testing.T) {
			f := newDeployFixture(t)
			refuseCreate(t, f, c.group, c.resource, c.allow, c.probe(f))
			_, err := f.deploy(t, testSHA)
			if err == nil || !strings.Contains(err.Error(), "refused by the test's policy") {
				t.Fatalf("deploy: %v, want the policy's refusal", err)
			}
			if left := releaseLeft(t, f, f.app+"-7c77eb36"); len(left) > 0 {
				t.Errorf("a deploy that failed before its install's gate opened left %v, want nothing", left)
			}
			if strings.Contains(f.logs.String(), "installing") {
				t.Errorf("the deploy said it was installing:\n%s", f.logs.String())
			}
		})
	}
}
