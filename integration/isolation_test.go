package integration

import (
	"context"
	"maps"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// withSettings writes data into the settings ConfigMap (deploy/rbac's,
// applied empty) for the rest of the test.
func withSettings(t *testing.T, env *testenv.Env, data map[string]string) {
	t.Helper()
	shipperToken(t, env) // deploy/rbac applied: the ConfigMap exists
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cms := admin.CoreV1().ConfigMaps(release.SettingsNamespace)
	cm, err := cms.Get(ctx, release.SettingsName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := cm.Data
	// Over the tests' own settings (their base domains: deploy/rbac/hosts.yaml).
	cm.Data = maps.Clone(testSettings)
	maps.Copy(cm.Data, data)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cm, err := cms.Get(ctx, release.SettingsName, metav1.GetOptions{})
		if err == nil {
			cm.Data = before
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("restoring the settings: %v", err)
		}
	})
}

// TestEachNamespaceIsIsolatedWithinTheSettings: a deploy with project
// 101's own token leaves its namespace with the NetworkPolicy, the
// ResourceQuota and the LimitRange of the settings; that token, used with
// kubectl, cannot delete or loosen them, add a policy that admits more,
// raise its quota, run a Deployment in a namespace without them, or block
// drains with a PodDisruptionBudget. The apiserver refuses each.
func TestEachNamespaceIsIsolatedWithinTheSettings(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	router := env.Namespace(t)
	withSettings(t, env, map[string]string{"router-namespaces": router, "quota.pods": "7", "limits.max.memory": "1Gi",
		"quota.poddisruptionbudgets": "none"}) // a scope is valid only on compute resources and pods
	appName, ns, _, tokA := deployedFor(t, env, "101", "iso", "15015015aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}

	np, err := a.NetworkingV1().NetworkPolicies(ns).Get(ctx, release.IsolationPolicy, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the deploy's NetworkPolicy: %v", err)
	}
	if got := np.Spec.Ingress[1].From[0].NamespaceSelector.MatchExpressions; len(got) != 2 || got[1].Values[0] != router {
		t.Errorf("NetworkPolicy admits namespaces %+v, want the router's %s (setting router-namespaces)", got, router)
	}
	rq, err := a.CoreV1().ResourceQuotas(ns).Get(ctx, release.IsolationQuota, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the deploy's ResourceQuota: %v", err)
	}
	if got := rq.Spec.Hard[corev1.ResourcePods]; got.String() != "7" {
		t.Errorf("ResourceQuota pods = %s, want 7 (setting quota.pods)", got.String())
	}
	if got := rq.Spec.Hard[corev1.ResourceRequestsMemory]; got.String() != "8Gi" {
		t.Errorf("ResourceQuota requests.memory = %s, want the built-in 8Gi", got.String())
	}
	lr, err := a.CoreV1().LimitRanges(ns).Get(ctx, release.IsolationQuota, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the deploy's LimitRange: %v", err)
	}
	if got := lr.Spec.Limits[0].Max[corev1.ResourceMemory]; got.String() != "1Gi" {
		t.Errorf("LimitRange max memory = %s, want 1Gi (setting limits.max.memory)", got.String())
	}

	nps := a.NetworkingV1().NetworkPolicies(ns)
	quotas := a.CoreV1().ResourceQuotas(ns)
	updated := func(change func(*networkingv1.NetworkPolicySpec)) func() error {
		return func() error {
			u := np.DeepCopy()
			change(&u.Spec)
			_, err := nps.Update(ctx, u, metav1.UpdateOptions{})
			return err
		}
	}
	quotaUpdated := func(change func(*corev1.ResourceQuotaSpec)) func() error {
		return func() error {
			u := rq.DeepCopy()
			change(&u.Spec)
			_, err := quotas.Update(ctx, u, metav1.UpdateOptions{})
			return err
		}
	}
	everyone := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
			},
		},
	}
	bare := bareNamespace(t, a, appName)
	for what, try := range map[string]func() error{
		"delete the NetworkPolicy": func() error { return nps.Delete(ctx, release.IsolationPolicy, metav1.DeleteOptions{}) },
		"delete the ResourceQuota": func() error { return quotas.Delete(ctx, release.IsolationQuota, metav1.DeleteOptions{}) },
		"delete the LimitRange": func() error {
			return a.CoreV1().LimitRanges(ns).Delete(ctx, release.IsolationQuota, metav1.DeleteOptions{})
		},
		"patch the NetworkPolicy open": func() error {
			_, err := nps.Patch(ctx, release.IsolationPolicy, types.MergePatchType, []byte(`{"spec":{"ingress":[{}]}}`), metav1.PatchOptions{})
			return err
		},
		"update it to admit any source": updated(func(s *networkingv1.NetworkPolicySpec) { s.Ingress = []networkingv1.NetworkPolicyIngressRule{{}} }),
		"update it to admit every namespace": updated(func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: everyone}}
		}),
		"update it to admit every namespace but shipper's": updated(func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector.MatchExpressions = s.Ingress[1].From[0].NamespaceSelector.MatchExpressions[:1]
		}),
		"update it to admit another project's namespace": updated(func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector.MatchExpressions[1].Values = []string{router, "other-12345678"}
		}),
		// With router-namespaces set, the label form is no longer the
		// router's (isolation review): a namespace left labelled, or one
		// another tenant could label, would be admitted.
		"update it to admit the router label while router-namespaces is set": updated(func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{release.LabelRouter: "true"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: release.LabelManagedBy, Operator: metav1.LabelSelectorOpNotIn, Values: []string{release.ManagedBy}}}}
		}),
		"update it to admit 0.0.0.0/0": updated(func(s *networkingv1.NetworkPolicySpec) {
			s.Ingress[0].From = append(s.Ingress[0].From, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})
		}),
		"update it to cover only some pods": updated(func(s *networkingv1.NetworkPolicySpec) {
			s.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"isolated": "yes"}}
		}),
		"create a second policy admitting all": func() error {
			_, err := nps.Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-all"},
				Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}, metav1.CreateOptions{})
			return err
		},
		"raise the quota":       quotaUpdated(func(s *corev1.ResourceQuotaSpec) { s.Hard[corev1.ResourcePods] = resource.MustParse("1000") }),
		"drop a quota resource": quotaUpdated(func(s *corev1.ResourceQuotaSpec) { delete(s.Hard, corev1.ResourceRequestsCPU) }),
		// Scopes are immutable: a scoped quota is made first, in a
		// namespace made without shipper.
		"create a scoped quota": func() error {
			scoped := rq.DeepCopy()
			scoped.ObjectMeta = metav1.ObjectMeta{Name: release.IsolationQuota}
			scoped.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating}
			_, err := a.CoreV1().ResourceQuotas(bare).Create(ctx, scoped, metav1.CreateOptions{})
			return err
		},
		"lift the container maximum": func() error {
			u := lr.DeepCopy()
			u.Spec.Limits[0].Max = nil
			_, err := a.CoreV1().LimitRanges(ns).Update(ctx, u, metav1.UpdateOptions{})
			return err
		},
		"run a Deployment in a namespace without quota and policy": func() error {
			_, err := a.AppsV1().Deployments(bare).Create(ctx, deployment, metav1.CreateOptions{})
			return err
		},
		"block drains with minAvailable 100%": func() error {
			return createPDB(ctx, a, ns, "minAvailable", intstr.FromString("100%"))
		},
		"block drains with maxUnavailable 0": func() error {
			return createPDB(ctx, a, ns, "maxUnavailable", intstr.FromInt32(0))
		},
		// minAvailable 1 of the chart's default 1 replica: no eviction ever
		// (what shipper itself wrote with podDisruptionBudget.enabled).
		"block drains with minAvailable 1 of 1 replica": func() error {
			return createPDB(ctx, a, ns, "minAvailable", intstr.FromInt32(1))
		},
	} {
		// A policy whose parameter is missing refuses with reason Invalid.
		err := try()
		if !apierrors.IsForbidden(err) && !(apierrors.IsInvalid(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")) {
			t.Errorf("project 101's token can %s: err = %v (%s), want the apiserver's refusal", what, err, apierrors.ReasonForError(err))
			continue
		}
		t.Logf("%s: %v", what, err)
	}

	// A PDB that allows one eviction at a time, as the chart writes it.
	if err := createPDB(ctx, a, ns, "maxUnavailable", intstr.FromInt32(1)); err != nil {
		t.Errorf("project 101's PDB with maxUnavailable 1: %v, want admitted", err)
	}

	// Not too much: what shipper writes stays writable, tighter is fine.
	if err := updated(func(s *networkingv1.NetworkPolicySpec) {})(); err != nil {
		t.Errorf("project 101 updates its NetworkPolicy unchanged: %v", err)
	}
	if err := quotaUpdated(func(s *corev1.ResourceQuotaSpec) { s.Hard[corev1.ResourcePods] = resource.MustParse("3") })(); err != nil {
		t.Errorf("project 101 lowers its quota: %v", err)
	}
	if err := createPDB(ctx, a, ns, "maxUnavailable", intstr.FromInt32(1)); err != nil {
		t.Errorf("project 101 creates a PodDisruptionBudget that allows an eviction: %v", err)
	}
}

// bareNamespace is a namespace of project 101's app made with its token as
// kubectl would, without shipper: labelled as the policies require, with
// the namespace role bound, and nothing else.
func bareNamespace(t *testing.T, a kubernetes.Interface, appName string) string {
	t.Helper()
	ctx := context.Background()
	name := appName + "-bbbbbbbb"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		release.LabelManagedBy: release.ManagedBy, release.LabelApp: appName, release.LabelRole: release.RolePreview,
		release.LabelSHA: "bbbbbbbb", release.LabelProject: "101", "pod-security.kubernetes.io/enforce": "restricted",
	}}}
	if _, err := a.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("project 101 creates a namespace of its app: %v", err)
	}
	t.Cleanup(func() { _ = a.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper", Namespace: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release.NamespaceRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "project-101", Namespace: "shipper-system"}},
	}
	if _, err := a.RbacV1().RoleBindings(name).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("project 101 binds its role there: %v", err)
	}
	return name
}

func createPDB(ctx context.Context, c kubernetes.Interface, ns, field string, v intstr.IntOrString) error {
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
		Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}}
	if field == "minAvailable" {
		pdb.Spec.MinAvailable = &v
	} else {
		pdb.Spec.MaxUnavailable = &v
	}
	_, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{})
	return err
}

// TestIsolationFollowsTheSettings: a bad setting stops a deploy with exit
// 2 before anything changes, naming the key; a namespace made before this
// version (or whose objects an admin removed) keeps working, and gets them
// on its next deploy; one made under older settings is brought to the new
// ones.
func TestIsolationFollowsTheSettings(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	// A maximum, which the apiserver copies into the default limit, and
	// which the policy holds project 101's LimitRange to.
	withSettings(t, env, map[string]string{"limits.max.cpu": "2"})
	appName, ns, e, tok := deployedFor(t, env, "101", "isoset", "5e775e77aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")

	// A re-deploy under the same settings changes none of the three.
	versions := func() string {
		np, err1 := admin.NetworkingV1().NetworkPolicies(ns).Get(ctx, release.IsolationPolicy, metav1.GetOptions{})
		rq, err2 := admin.CoreV1().ResourceQuotas(ns).Get(ctx, release.IsolationQuota, metav1.GetOptions{})
		lr, err3 := admin.CoreV1().LimitRanges(ns).Get(ctx, release.IsolationQuota, metav1.GetOptions{})
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("the isolation objects: %v, %v, %v", err1, err2, err3)
		}
		return np.ResourceVersion + " " + rq.ResourceVersion + " " + lr.ResourceVersion
	}
	before := versions()
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("re-deploy: %s", r.stderr)
	}
	if after := versions(); after != before {
		t.Errorf("a re-deploy under the same settings rewrote the isolation objects: %s, then %s", before, after)
	}

	withSettings(t, env, map[string]string{"quota.requests.cpu": "plenty"})
	next := with(e, "CI_COMMIT_SHA", "5e775e78aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "CI_COMMIT_SHORT_SHA", "5e775e78")
	if r := runBinary(t, next, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	r := runBinary(t, next, "deploy")
	if r.code != 2 || !strings.Contains(r.stderr, `"quota.requests.cpu"`) || strings.Contains(r.stderr, "plenty") {
		t.Errorf("deploy under a bad setting: exit %d, stderr %q; want exit 2 naming the key, not its value", r.code, r.stderr)
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, appName+"-5e775e78", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("deploy under a bad setting made namespace %s-5e775e78 (err = %v)", appName, err)
	}

	// The namespace as a version before this one left it.
	for _, del := range []func() error{
		func() error {
			return admin.NetworkingV1().NetworkPolicies(ns).Delete(ctx, release.IsolationPolicy, metav1.DeleteOptions{})
		},
		func() error {
			return admin.CoreV1().LimitRanges(ns).Delete(ctx, release.IsolationQuota, metav1.DeleteOptions{})
		},
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	withSettings(t, env, map[string]string{"quota.pods": "9"})
	// Its app keeps working: the policies that want the objects judge a
	// Deployment's creation only, so the project's token still changes the
	// one there (as a promote's sizing does).
	a, err := kubernetes.NewForConfig(tok)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := a.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Spec.Replicas = ptrTo(int32(2))
	if _, err := a.AppsV1().Deployments(ns).Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
		t.Errorf("project 101 scales its Deployment in a namespace that predates isolation: %v", err)
	}
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("re-deploy: %s", r.stderr)
	}
	if _, err := admin.NetworkingV1().NetworkPolicies(ns).Get(ctx, release.IsolationPolicy, metav1.GetOptions{}); err != nil {
		t.Errorf("the NetworkPolicy after a re-deploy: %v", err)
	}
	if _, err := admin.CoreV1().LimitRanges(ns).Get(ctx, release.IsolationQuota, metav1.GetOptions{}); err != nil {
		t.Errorf("the LimitRange after a re-deploy: %v", err)
	}
	rq, err := admin.CoreV1().ResourceQuotas(ns).Get(ctx, release.IsolationQuota, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rq.Spec.Hard[corev1.ResourcePods]; got.String() != "9" {
		t.Errorf("ResourceQuota pods after the settings changed = %s, want 9", got.String())
	}
}
