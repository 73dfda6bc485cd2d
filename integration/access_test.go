package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestTheAPIServerRefusesWhatShipperNeedNotDo holds deploy/rbac's token
// to what shipper needs: the apiserver itself (RBAC and the admission
// policies), not shipper's own checks, refuses everything else. Requests
// that would destroy the shared test cluster if wrongly allowed are dry
// runs; admission and authorization run on them all the same.
func TestTheAPIServerRefusesWhatShipperNeedNotDo(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	tokenCfg := shipperToken(t, env)
	tokenCfg.WarningHandler = rest.NoWarnings{} // the probes' Pod Security warnings
	token, err := kubernetes.NewForConfig(tokenCfg)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	dryDelete := metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}

	// A namespace shipper made (labelled, with its RoleBinding), as deploy
	// makes one; and one it did not.
	appName := uniqueName("access")
	e := gitlabEnv(t, env, appName, "dddddddd44444444444444444444444444444444")
	if r := runBinary(t, e, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("deploy: %s", r.stderr)
	}
	owned := appName + "-dddddddd"
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(ctx, owned, metav1.DeleteOptions{}) })
	foreign := env.Namespace(t)

	labelled := func(name, enforce string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: strings.TrimSuffix(name, "-production"),
			release.LabelRole: release.RoleProduction, "pod-security.kubernetes.io/enforce": enforce,
		}}}
	}
	binding := func(ns, role string, subject rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}
	}
	me := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "shipper", Namespace: "shipper-system"}
	someoneElse := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: foreign}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}, Spec: pod.Spec},
		},
	}

	refused := map[string]func() error{
		"read a Secret in kube-system": func() error {
			_, err := token.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
			return err
		},
		"list Secrets cluster-wide": func() error {
			_, err := token.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		},
		"delete kube-system": func() error {
			return token.CoreV1().Namespaces().Delete(ctx, "kube-system", dryDelete)
		},
		"delete an unlabelled namespace": func() error {
			return token.CoreV1().Namespaces().Delete(ctx, foreign, dryDelete)
		},
		"create an unlabelled namespace": func() error {
			_, err := token.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("probe")}}, dry)
			return err
		},
		"create a labelled namespace without Pod Security restricted": func() error {
			_, err := token.CoreV1().Namespaces().Create(ctx, labelled(uniqueName("probe")+"-production", "privileged"), dry)
			return err
		},
		"create a pod in kube-system": func() error {
			_, err := token.CoreV1().Pods("kube-system").Create(ctx, pod, dry)
			return err
		},
		"create a Deployment in kube-system": func() error {
			_, err := token.AppsV1().Deployments("kube-system").Create(ctx, deployment, dry)
			return err
		},
		"create a Deployment in a namespace shipper did not make": func() error {
			_, err := token.AppsV1().Deployments(foreign).Create(ctx, deployment, dry)
			return err
		},
		"bind cluster-admin cluster-wide": func() error {
			_, err := token.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{me},
			}, dry)
			return err
		},
		"bind cluster-admin in its own namespace": func() error {
			_, err := token.RbacV1().RoleBindings(owned).Create(ctx, binding(owned, "cluster-admin", me), dry)
			return err
		},
		"bind its namespace role in a namespace it did not make": func() error {
			_, err := token.RbacV1().RoleBindings(foreign).Create(ctx, binding(foreign, release.NamespaceRole, me), dry)
			return err
		},
		"grant its namespace role to someone else": func() error {
			_, err := token.RbacV1().RoleBindings(owned).Create(ctx, binding(owned, release.NamespaceRole, someoneElse), dry)
			return err
		},
	}
	for what, try := range refused {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: err = %v, want the apiserver's Forbidden", what, err)
		}
	}

	// The same token does what shipper needs, so the refusals above come
	// from the policy, not from a token that can do nothing.
	allowed := map[string]func() error{
		"create a labelled namespace": func() error {
			_, err := token.CoreV1().Namespaces().Create(ctx, labelled(uniqueName("probe")+"-production", "restricted"), dry)
			return err
		},
		"bind its namespace role to itself in its namespace": func() error {
			_, err := token.RbacV1().RoleBindings(owned).Create(ctx, binding(owned, release.NamespaceRole, me), dry)
			return err
		},
		"create a Deployment in its namespace": func() error {
			_, err := token.AppsV1().Deployments(owned).Create(ctx, deployment, dry)
			return err
		},
		"read Secrets in its namespace": func() error {
			_, err := token.CoreV1().Secrets(owned).List(ctx, metav1.ListOptions{})
			return err
		},
		"delete its namespace": func() error {
			return token.CoreV1().Namespaces().Delete(ctx, owned, dryDelete)
		},
	}
	for what, try := range allowed {
		if err := try(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	// The GitLab stop job of a review app whose project never promoted:
	// no production namespace, hence no RoleBinding there to read from.
	if r := runBinary(t, e, "delete"); r.code != 0 {
		t.Errorf("delete of a commit of an app without production: exit %d\n%s", r.code, r.stderr)
	}
	if t.Failed() {
		rbs, _ := admin.RbacV1().RoleBindings(owned).List(ctx, metav1.ListOptions{})
		var names []string
		for _, rb := range rbs.Items {
			names = append(names, rb.Name+"->"+rb.RoleRef.Name)
		}
		t.Logf("RoleBindings in %s: %s", owned, strings.Join(names, ", "))
	}
}

// projectToken creates ServiceAccount shipper-system/project-<id> and its
// ClusterRoleBinding shipper-project-<id> (what an admin runs once per
// GitLab project: README.md, Security) and returns a token of it.
func projectToken(t *testing.T, env *testenv.Env, id string) *rest.Config {
	t.Helper()
	return boundToken(t, env, "project-"+id)
}

// sameRightsToken creates ServiceAccount shipper-system/<name> and gives it
// ClusterRole shipper's rules under a ClusterRole of its own (an admin's
// copy: ClusterRole shipper itself is bound only to shipper's identities),
// and returns a token of it.
func sameRightsToken(t *testing.T, env *testenv.Env, name string) *rest.Config {
	t.Helper()
	shipperToken(t, env) // deploy/rbac applied
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	role, err := admin.RbacV1().ClusterRoles().Get(ctx, "shipper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copied := "probe-shipper-copy-" + strings.ReplaceAll(name, ".", "-")
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: copied}, Rules: role.Rules},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shipper-system"}}
	if _, err := admin.CoreV1().ServiceAccounts("shipper-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: copied},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: copied},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "shipper-system"}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg, err := env.Token(ctx, "shipper-system", name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// boundToken creates ServiceAccount shipper-system/<name>, binds it to the
// ClusterRole shipper as README.md tells an admin to bind a project's
// account (kubectl create clusterrolebinding shipper-<name>), and returns
// a token of it.
func boundToken(t *testing.T, env *testenv.Env, name string) *rest.Config {
	t.Helper()
	shipperToken(t, env) // deploy/rbac applied
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shipper-system"}}
	if _, err := admin.CoreV1().ServiceAccounts("shipper-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "shipper"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "shipper-system"}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg, err := env.Token(ctx, "shipper-system", name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestProjectTokensKeepProjectsApart: with one ServiceAccount per project,
// the apiserver, not shipper, keeps project B out of project A's app, even
// when B's job claims A's project ID.
func TestProjectTokensKeepProjectsApart(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	tokA, tokB := projectToken(t, env, "101"), projectToken(t, env, "202")
	appName := uniqueName("tenant")
	sha := "eeeeeeee55555555555555555555555555555555"
	e := gitlabEnv(t, env, appName, sha)
	e["KUBE_TOKEN"], e["CI_PROJECT_ID"], e["CI_PROJECT_PATH"] = tokA.BearerToken, "101", "group-a/"+appName
	if r := runBinary(t, e, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("deploy as project 101: %s", r.stderr)
	}
	nsA := appName + "-eeeeeeee"
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(ctx, nsA, metav1.DeleteOptions{}) })

	// B's job claims A's project: shipper stops it before any request.
	lying := with(e, "KUBE_TOKEN", tokB.BearerToken)
	for _, cmd := range []string{"delete", "deploy", "promote", "rollback"} {
		r := runBinary(t, lying, cmd)
		if r.code != exitUsage || !strings.Contains(r.stderr, "ServiceAccount project-202, which acts for GitLab project 202 only") {
			t.Errorf("%s by project 202's token claiming 101: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, nsA, metav1.GetOptions{}); err != nil {
		t.Errorf("project 101's namespace after project 202's attempts: %v", err)
	}

	// And B's token used directly, as a hostile job would, is refused by
	// the apiserver.
	b, err := kubernetes.NewForConfig(tokB)
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	claim := func(project, name, app, role, sha string) *corev1.Namespace {
		l := map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: app, release.LabelRole: role,
			"pod-security.kubernetes.io/enforce": "restricted", release.LabelProject: project,
		}
		if sha != "" {
			l[release.LabelSHA] = sha
		}
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	me := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "project-202", Namespace: "shipper-system"}
	refused := map[string]func() error{
		"read project 101's Secrets": func() error {
			_, err := b.CoreV1().Secrets(nsA).List(ctx, metav1.ListOptions{})
			return err
		},
		"delete project 101's namespace": func() error {
			return b.CoreV1().Namespaces().Delete(ctx, nsA, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		},
		"bind itself in project 101's namespace": func() error {
			_, err := b.RbacV1().RoleBindings(nsA).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release.NamespaceRole},
				Subjects:   []rbacv1.Subject{me},
			}, dry)
			return err
		},
		"create a namespace labelled for project 101": func() error {
			_, err := b.CoreV1().Namespaces().Create(ctx, claim("101", appName+"-production", appName, "production", ""), dry)
			return err
		},
		"squat a namespace name (cert-manager)": func() error {
			_, err := b.CoreV1().Namespaces().Create(ctx, claim("202", "cert-manager", "cert", "preview", "manager"), dry)
			return err
		},
		"pin an old Pod Security version": func() error {
			ns := claim("202", "x-production", "x", "production", "")
			ns.Labels["pod-security.kubernetes.io/enforce-version"] = "v1.0"
			_, err := b.CoreV1().Namespaces().Create(ctx, ns, dry)
			return err
		},
	}
	for what, try := range refused {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("project 202's token: %s: err = %v, want the apiserver's Forbidden", what, err)
		}
	}
	if _, err := b.CoreV1().Namespaces().Create(ctx, claim("202", "x-production", "x", "production", ""), dry); err != nil {
		t.Errorf("project 202's token cannot create its own production namespace: %v", err)
	}
	if _, err := b.CoreV1().Namespaces().Create(ctx, claim("202", "x-abcdef12", "x", "preview", "abcdef12"), dry); err != nil {
		t.Errorf("project 202's token cannot create its own preview namespace: %v", err)
	}

	// Inside its own namespace, project 101 may make ClusterIP Services
	// only.
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []corev1.ServiceSpec{
		{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
		{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}},
		{ExternalIPs: []string{"10.96.0.1"}, Ports: []corev1.ServicePort{{Port: 80}}},
	} {
		_, err := a.CoreV1().Services(nsA).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, Spec: svc}, dry)
		if !apierrors.IsForbidden(err) {
			t.Errorf("Service %+v in its own namespace: err = %v, want Forbidden", svc, err)
		}
	}
	if _, err := a.CoreV1().Services(nsA).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "x"}, Ports: []corev1.ServicePort{{Port: 80}}}}, dry); err != nil {
		t.Errorf("a ClusterIP Service in its own namespace: %v", err)
	}
}

// TestOnlyNamedIdentitiesHaveRights: only shipper-system's project-<ID>
// accounts (and the shared "shipper", where an admin bound it) are shipper
// identities. The namespace's "default" account, which a job pod gets when
// it names none, has no rights at all; an account an admin bound by mistake
// is no identity for the admission policies, which never read an unknown
// name as "any project". And a project's own namespaces carry only
// shipper's labels and annotations. Every refusal is the apiserver's.
func TestOnlyNamedIdentitiesHaveRights(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	// Project 101's namespace, as its deploy made it.
	_, nsA, _, tokA := deployedFor(t, env, "101", "named", "abababab55555555555555555555555555555555")

	if _, err := admin.CoreV1().ServiceAccounts("shipper-system").Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "shipper-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	defaultCfg, err := env.Token(ctx, "shipper-system", "default")
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	nsFor := func(project, app, sha string, extra map[string]string, annotations map[string]string) *corev1.Namespace {
		l := map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: app, release.LabelRole: release.RolePreview,
			release.LabelSHA: sha, "pod-security.kubernetes.io/enforce": "restricted", release.LabelProject: project,
		}
		for k, v := range extra {
			l[k] = v
		}
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: app + "-" + sha, Labels: l, Annotations: annotations}}
	}
	attacks := func(cfg *rest.Config, self string) map[string]func() error {
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		me := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: self, Namespace: "shipper-system"}
		return map[string]func() error{
			"bind itself in project 101's namespace": func() error {
				_, err := c.RbacV1().RoleBindings(nsA).Create(ctx, &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release.NamespaceRole},
					Subjects:   []rbacv1.Subject{me},
				}, dry)
				return err
			},
			"create a namespace labelled for project 101": func() error {
				_, err := c.CoreV1().Namespaces().Create(ctx, nsFor("101", "shop", "1a2b3c4d", nil, nil), dry)
				return err
			},
			"delete project 101's namespace": func() error {
				return c.CoreV1().Namespaces().Delete(ctx, nsA, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
			},
			"read project 101's Secrets": func() error {
				_, err := c.CoreV1().Secrets(nsA).List(ctx, metav1.ListOptions{})
				return err
			},
		}
	}
	for _, who := range []struct {
		name string
		cfg  *rest.Config
	}{
		{"default", defaultCfg},
		// An account an admin gave shipper's rights by mistake (a
		// runner's), under a role of another name (ClusterRole shipper
		// itself it cannot be bound to: TestShippersRoleIsBoundOnlyToItsIdentities):
		// RBAC lets it through, the policies do not.
		{"runner", sameRightsToken(t, env, "runner")},
	} {
		for what, try := range attacks(who.cfg, who.name) {
			if err := try(); !apierrors.IsForbidden(err) {
				t.Errorf("shipper-system/%s: %s: err = %v, want the apiserver's Forbidden", who.name, what, err)
			}
		}
	}
	c, err := kubernetes.NewForConfig(defaultCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); !apierrors.IsForbidden(err) {
		t.Errorf("shipper-system/default lists namespaces: err = %v, want Forbidden (no rights at all)", err)
	}

	// Forged labels and annotations on a namespace project 101 may create.
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}
	for what, ns := range map[string]*corev1.Namespace{
		"a team label":                  nsFor("101", "shop", "1a2b3c4d", map[string]string{"team": "payments"}, nil),
		"istio-injection disabled":      nsFor("101", "shop", "1a2b3c4d", map[string]string{"istio-injection": "disabled"}, nil),
		"Pod Security warn privileged":  nsFor("101", "shop", "1a2b3c4d", map[string]string{"pod-security.kubernetes.io/warn": "privileged"}, nil),
		"a ref that is no slug":         nsFor("101", "shop", "1a2b3c4d", map[string]string{release.LabelRef: "Release.1"}, nil),
		"a node-selector annotation":    nsFor("101", "shop", "1a2b3c4d", nil, map[string]string{"scheduler.alpha.kubernetes.io/node-selector": "pool=payments"}),
		"an annotation not shipper.dev": nsFor("101", "shop", "1a2b3c4d", nil, map[string]string{"example.com/x": "y"}),
	} {
		if _, err := a.CoreV1().Namespaces().Create(ctx, ns, dry); !apierrors.IsForbidden(err) {
			t.Errorf("project 101 creates a namespace with %s: err = %v, want Forbidden", what, err)
		}
	}
	ok := nsFor("101", "shop", "1a2b3c4d", map[string]string{release.LabelRef: "main", "pod-security.kubernetes.io/warn": "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest"}, map[string]string{release.AnnotationSHA: "1a2b3c4d", release.AnnotationProjectPath: "group-a/shop"})
	if _, err := a.CoreV1().Namespaces().Create(ctx, ok, dry); err != nil {
		t.Errorf("project 101 cannot create a namespace with shipper's own labels: %v", err)
	}
}

// TestIngressAnnotationsCheckedByTheAPIServer: the chart's deny list for
// Ingress annotations holds for Ingresses written straight to the
// apiserver too, by a project's token (kubectl) or by an admin, in any
// namespace shipper made (policy shipper-ingresses).
func TestIngressAnnotationsCheckedByTheAPIServer(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	appName, ns, _, tokA := deployedFor(t, env, "101", "ingress", "acacacac55555555555555555555555555555555")
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	ingress := func(annotations map[string]string) *networkingv1.Ingress {
		return probeIngress(appName+"-acacacac.example.com", annotations, networkingv1.PathTypePrefix)
	}
	refused := map[string]map[string]string{
		"a configuration snippet":        {"nginx.ingress.kubernetes.io/configuration-snippet": "return 200;"},
		"a server snippet":               {"nginx.ingress.kubernetes.io/server-snippets": "x"},
		"a server alias":                 {"nginx.ingress.kubernetes.io/server-alias": "shop.example.com"},
		"a canary":                       {"nginx.ingress.kubernetes.io/canary": "true"},
		"a Traefik rule":                 {"traefik.ingress.kubernetes.io/router.rule": "Host(`shop.example.com`)"},
		"a Traefik router priority":      {"traefik.ingress.kubernetes.io/router.priority": "100000"},
		"Traefik TLS domains":            {"traefik.ingress.kubernetes.io/router.tls.domains.0.main": "shop.example.com"},
		"haproxy raw configuration":      {"haproxy-ingress.github.io/config-backend": "x"},
		"ALB conditions":                 {"alb.ingress.kubernetes.io/conditions.x": "[]"},
		"another namespace's TLS secret": {"nginx.ingress.kubernetes.io/auth-tls-secret": "payments/client-ca"},
		"another namespace's SSL secret": {"nginx.ingress.kubernetes.io/proxy-ssl-secret": "payments/tls"},
		"a line break in a value":        {"example.com/note": "a\nb"},
		// The router as a deputy: requests mirrored or sent for auth to
		// another project's Service, which admits the router's namespace.
		"a mirror target": {"nginx.ingress.kubernetes.io/mirror-target": "http://web.victim-12345678.svc.cluster.local$request_uri"},
		"an auth URL":     {"nginx.ingress.kubernetes.io/auth-url": "http://web.victim-12345678.svc.cluster.local/admin"},
		// A certificate naming more than the Ingress's hosts (cert-manager
		// copies these into the Certificate).
		"a certificate common name": {"cert-manager.io/common-name": "shop.example.com"},
	}
	for who, c := range map[string]kubernetes.Interface{"project 101's token": a, "an admin": admin} {
		for what, ann := range refused {
			if _, err := c.NetworkingV1().Ingresses(ns).Create(ctx, ingress(ann), dry); !apierrors.IsForbidden(err) {
				t.Errorf("%s: an Ingress with %s in %s: err = %v, want the apiserver's Forbidden", who, what, ns, err)
			}
		}
	}
	if _, err := a.NetworkingV1().Ingresses(ns).Create(ctx, ingress(map[string]string{
		"nginx.ingress.kubernetes.io/auth-tls-secret": "client-ca", "cert-manager.io/cluster-issuer": "letsencrypt"}), dry); err != nil {
		t.Errorf("project 101's token: an Ingress with allowed annotations: %v", err)
	}
	// Outside shipper's namespaces the policy does not apply.
	other := env.Namespace(t)
	if _, err := admin.NetworkingV1().Ingresses(other).Create(ctx, ingress(refused["a canary"]), dry); err != nil {
		t.Errorf("an admin's Ingress outside shipper's namespaces: %v", err)
	}
}

// deployedFor is the namespace of a preview deployed, as a GitLab job of
// project id would, with that project's own token: the app name, its
// commit's namespace, the job's environment and the token.
func deployedFor(t *testing.T, env *testenv.Env, id, prefix, sha string) (string, string, map[string]string, *rest.Config) {
	t.Helper()
	tok := projectToken(t, env, id)
	appName := uniqueName(prefix)
	e := gitlabEnv(t, env, appName, sha)
	e["KUBE_TOKEN"], e["CI_PROJECT_ID"], e["CI_PROJECT_PATH"] = tok.BearerToken, id, "group-"+id+"/"+appName
	if r := runBinary(t, e, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("deploy as project %s: %s", id, r.stderr)
	}
	ns := appName + "-" + sha[:8]
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return appName, ns, e, tok
}

// probeIngress is an Ingress for host with the given annotations and path
// type.
func probeIngress(host string, annotations map[string]string, pt networkingv1.PathType) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Annotations: annotations},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
}

// TestIngressPolicyReadsAnnotationsAsTheControllersDo (hostile review of
// 5cd2388): shipper-ingresses compares keys case-sensitively and under one
// prefix per controller, but the controllers do not read them that way.
// Traefik decodes its annotations with its label parser, which ignores case
// (paerser: strings.EqualFold for the "traefik.router." filter and every
// field), so router.Priority is router.priority; its router.pathmatcher is
// pasted into the rule unquoted (ingress/kubernetes.go: fmt.Sprintf("%s(%q)",
// matcher, path)), so it is a router.rule of its own: "Host(`x`) ||
// PathPrefix" routes another host. haproxy-ingress reads
// ingress.kubernetes.io/ as well as haproxy-ingress.github.io/ (its
// --annotations-prefix default), and has server-alias and
// server-alias-regex of its own. And the policy matches ingresses, not
// ingresses/status, whose strategy keeps only the spec: whoever may write
// an Ingress's status (every ingress controller, an admin) writes any
// annotation through it.
func TestIngressPolicyReadsAnnotationsAsTheControllersDo(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	appName, ns, _, tokA := deployedFor(t, env, "101", "ctl", "adadadad55555555555555555555555555555555")
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}
	host := appName + "-adadadad.example.com"
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	holes := []struct {
		what string
		ann  map[string]string
		pt   networkingv1.PathType
	}{
		{"Traefik router.Priority (Traefik ignores case)", map[string]string{"traefik.ingress.kubernetes.io/router.Priority": "100000"}, networkingv1.PathTypePrefix},
		{"Traefik Router.TLS.Domains (Traefik ignores case)", map[string]string{"traefik.ingress.kubernetes.io/Router.TLS.Domains.0.main": "shop.example.com"}, networkingv1.PathTypePrefix},
		{"a Traefik rule through router.pathmatcher", map[string]string{"traefik.ingress.kubernetes.io/router.pathmatcher": "Host(`shop.example.com`) || PathPrefix"}, networkingv1.PathTypeImplementationSpecific},
		{"haproxy-ingress raw configuration under its ingress.kubernetes.io/ prefix", map[string]string{"ingress.kubernetes.io/config-backend": "http-request redirect location https://evil.example.com/"}, networkingv1.PathTypePrefix},
		{"a haproxy-ingress server alias", map[string]string{"haproxy-ingress.github.io/server-alias": "shop.example.com"}, networkingv1.PathTypePrefix},
		{"a haproxy-ingress regex server alias", map[string]string{"ingress.kubernetes.io/server-alias-regex": ".*"}, networkingv1.PathTypePrefix},
	}
	for who, c := range map[string]kubernetes.Interface{"project 101's token": a, "an admin": admin} {
		for _, h := range holes {
			if _, err := c.NetworkingV1().Ingresses(ns).Create(ctx, probeIngress(host, h.ann, h.pt), dry); !apierrors.IsForbidden(err) {
				t.Errorf("%s: an Ingress with %s (%v) in %s: err = %v, want the apiserver's Forbidden", who, h.what, h.ann, ns, err)
			}
		}
	}

	// Through the status subresource (an admin here; any ingress
	// controller's token can do the same).
	live, err := admin.NetworkingV1().Ingresses(ns).Create(ctx, probeIngress(host, nil, networkingv1.PathTypePrefix), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live.Annotations = map[string]string{"nginx.ingress.kubernetes.io/configuration-snippet": "return 200 'not yours';"}
	if _, err := admin.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, live, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		got, _ := admin.NetworkingV1().Ingresses(ns).Get(ctx, live.Name, metav1.GetOptions{})
		t.Errorf("an admin writes a configuration snippet through ingresses/status: err = %v, want Forbidden; the stored Ingress's annotations: %v", err, got.GetAnnotations())
	}
}

// TestShippersRoleIsBoundOnlyToItsIdentities (hostile review of d09a869):
// every policy judges shipper's identities by their names in
// shipper-system. An account elsewhere (a runner's, in its own namespace)
// bound to ClusterRole shipper would be seen by none of them, and RBAC
// alone would let it bind shipper-namespace in kube-system, create any
// namespace and delete any. So policy shipper-bindings refuses, to
// anyone, an admin included, a binding of ClusterRole shipper to anything
// but shipper-system's shipper and project-<digits> ServiceAccounts.
func TestShippersRoleIsBoundOnlyToItsIdentities(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	shipperToken(t, env) // deploy/rbac applied
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	runnerNS := env.Namespace(t)
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	shipperRole := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "shipper"}
	sa := func(ns, name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
	}
	for what, subjects := range map[string][]rbacv1.Subject{
		"a runner's account in its own namespace": {sa(runnerNS, "gitlab-runner")},
		"shipper-system's default account":        {sa("shipper-system", "default")},
		"a look-alike of a project's account":     {sa("shipper-system", "project-101x")},
		"the group of shipper-system's accounts":  {{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:shipper-system"}},
		"a user":                                  {{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
		"a project's account and a runner's":      {sa("shipper-system", "project-101"), sa(runnerNS, "gitlab-runner")},
	} {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, RoleRef: shipperRole, Subjects: subjects}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, dry); !apierrors.IsForbidden(err) {
			t.Errorf("an admin binds ClusterRole shipper to %s: err = %v, want the apiserver's Forbidden", what, err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, RoleRef: shipperRole, Subjects: subjects}
		if _, err := admin.RbacV1().RoleBindings(runnerNS).Create(ctx, rb, dry); !apierrors.IsForbidden(err) {
			t.Errorf("an admin binds ClusterRole shipper in a namespace to %s: err = %v, want the apiserver's Forbidden", what, err)
		}
	}
	for what, subjects := range map[string][]rbacv1.Subject{
		"project 101's account": {sa("shipper-system", "project-101")},
		"the shared account":    {sa("shipper-system", "shipper")},
		"nobody":                nil,
	} {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, RoleRef: shipperRole, Subjects: subjects}
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, dry); err != nil {
			t.Errorf("an admin binds ClusterRole shipper to %s: %v", what, err)
		}
	}
}

// TestOneProjectCannotLockAnotherOutOfItsApp (hostile review of d09a869):
// shipper-namespaces lets project-202 create a namespace for any app name,
// as long as it carries 202's ID, and shipper refuses every command on an
// app any of whose namespaces carries another project's ID
// (requireOwnApp). So project 202's token, used with kubectl, creates
// <101's app>-00000000 labelled 202, and project 101 can no longer deploy,
// promote, roll back or delete its own app, nor remove the squatter.
func TestOneProjectCannotLockAnotherOutOfItsApp(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	appName, _, e, _ := deployedFor(t, env, "101", "lock", "aeaeaeae55555555555555555555555555555555")
	b, err := kubernetes.NewForConfig(projectToken(t, env, "202"))
	if err != nil {
		t.Fatal(err)
	}
	squat := func(name, role, sha string) *corev1.Namespace {
		l := map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: appName, release.LabelRole: role,
			"pod-security.kubernetes.io/enforce": "restricted", release.LabelProject: "202",
		}
		if sha != "" {
			l[release.LabelSHA] = sha
		}
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	if _, err := b.CoreV1().Namespaces().Create(ctx, squat(appName+"-production", "production", ""), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("project 202 creates %s-production, labelled 202, for project 101's app: err = %v, want Forbidden", appName, err)
	}
	_, err = b.CoreV1().Namespaces().Create(ctx, squat(appName+"-00000000", "preview", "00000000"), metav1.CreateOptions{})
	if err == nil {
		t.Cleanup(func() {
			_ = admin.CoreV1().Namespaces().Delete(context.Background(), appName+"-00000000", metav1.DeleteOptions{})
		})
		r := runBinary(t, e, "deploy")
		t.Errorf("project 202 creates %s-00000000, labelled 202, for project 101's app: admitted, want Forbidden; "+
			"project 101's own deploy of its app then: exit %d, %s", appName, r.code, strings.TrimSpace(r.stderr))
	} else if !apierrors.IsForbidden(err) {
		t.Errorf("project 202 creates %s-00000000: err = %v, want Forbidden", appName, err)
	}
}

// TestNamespaceLabelValuesShipperNeverSets (hostile review of d09a869):
// "only the labels shipper sets, with its values", but shipper.dev/sha and
// shipper.dev/ref are checked only where shipper sets them (a preview's
// name, a ref slug): a production namespace, which shipper makes without
// either, takes any sha value.
func TestNamespaceLabelValuesShipperNeverSets(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	a, err := kubernetes.NewForConfig(projectToken(t, env, "101"))
	if err != nil {
		t.Fatal(err)
	}
	app := uniqueName("vals")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: app + "-production", Labels: map[string]string{
		release.LabelManagedBy: release.ManagedBy, release.LabelApp: app, release.LabelRole: release.RoleProduction,
		"pod-security.kubernetes.io/enforce": "restricted", release.LabelProject: "101",
		release.LabelSHA: "Anything_At.All",
	}}}
	if _, err := a.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("project 101 creates a production namespace labelled %s=%q: err = %v, want Forbidden", release.LabelSHA, ns.Labels[release.LabelSHA], err)
	}
	// An app named like another app's preview (hosts.yaml): its production
	// host would be that preview's; one with "--", whose hosts would be
	// another app's alias hosts.
	for _, lookalike := range []string{app + "-1a2b3c4d", "x--" + app} {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lookalike + "-production", Labels: map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: lookalike, release.LabelRole: release.RoleProduction,
			"pod-security.kubernetes.io/enforce": "restricted", release.LabelProject: "101",
		}}}
		if _, err := a.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
			t.Errorf("project 101 creates the production namespace of app %s: err = %v, want Forbidden", lookalike, err)
		}
	}
	ns.Name, ns.Labels[release.LabelApp] = app+"-production", app
	if _, err := a.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("project 101 creates the production namespace of app %s: %v", app, err)
	}
}

// TestWhatAProjectCannotChangeAfterCreation (hostile review of d09a869 and
// 5cd2388: the paths found sound, kept as regressions): project 101's
// token cannot add through UPDATE (Update, merge and JSON patches,
// server-side apply) an Ingress annotation CREATE refuses, cannot relabel
// or unlabel its namespace (the namespaceSelector of shipper-ingresses
// holds), cannot bind a Group, and accounts whose names only look like
// project-<ID> are no shipper identity.
func TestWhatAProjectCannotChangeAfterCreation(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	appName, ns, _, tokA := deployedFor(t, env, "101", "after", "afafafaf55555555555555555555555555555555")
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}
	live, err := a.NetworkingV1().Ingresses(ns).Create(ctx, probeIngress(appName+"-afafafaf.example.com", nil, networkingv1.PathTypePrefix), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("project 101 creates a clean Ingress in its namespace: %v", err)
	}
	ings := a.NetworkingV1().Ingresses(ns)
	snippet := "nginx.ingress.kubernetes.io/configuration-snippet"
	for what, try := range map[string]func() error{
		"Update": func() error {
			u := live.DeepCopy()
			u.Annotations = map[string]string{snippet: "return 200;"}
			_, err := ings.Update(ctx, u, metav1.UpdateOptions{})
			return err
		},
		"merge patch": func() error {
			_, err := ings.Patch(ctx, live.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+snippet+`":"return 200;"}}}`), metav1.PatchOptions{})
			return err
		},
		"JSON patch": func() error {
			_, err := ings.Patch(ctx, live.Name, types.JSONPatchType, []byte(`[{"op":"add","path":"/metadata/annotations","value":{"traefik.ingress.kubernetes.io/router.priority":"100000"}}]`), metav1.PatchOptions{})
			return err
		},
		"server-side apply": func() error {
			_, err := ings.Patch(ctx, live.Name, types.ApplyPatchType, []byte(`{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"`+live.Name+`","annotations":{"nginx.ingress.kubernetes.io/server-alias":"shop.example.com"}}}`),
				metav1.PatchOptions{FieldManager: "kubectl", Force: ptrTo(true)})
			return err
		},
	} {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("project 101 adds a refused Ingress annotation by %s: err = %v, want Forbidden", what, err)
		}
	}

	namespaces := a.CoreV1().Namespaces()
	// relabel sends its namespace, Pod Security set to privileged, with send.
	relabel := func(send func(*corev1.Namespace) error) error {
		got, err := namespaces.Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got.Labels["pod-security.kubernetes.io/enforce"] = "privileged"
		return send(got)
	}
	me := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "project-101", Namespace: "shipper-system"}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for what, try := range map[string]func() error{
		"remove managed-by from its namespace (merge patch)": func() error {
			_, err := namespaces.Patch(ctx, ns, types.MergePatchType, []byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":null}}}`), metav1.PatchOptions{})
			return err
		},
		"add a team label to its namespace (server-side apply)": func() error {
			_, err := namespaces.Patch(ctx, ns, types.ApplyPatchType, []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+ns+`","labels":{"team":"payments"}}}`),
				metav1.PatchOptions{FieldManager: "kubectl", Force: ptrTo(true)})
			return err
		},
		"relabel its namespace through namespaces/finalize": func() error {
			return relabel(func(got *corev1.Namespace) error {
				_, err := namespaces.Finalize(ctx, got, metav1.UpdateOptions{})
				return err
			})
		},
		"relabel its namespace through namespaces/status": func() error {
			return relabel(func(got *corev1.Namespace) error {
				_, err := namespaces.UpdateStatus(ctx, got, metav1.UpdateOptions{})
				return err
			})
		},
		"bind the group of shipper-system's accounts in its namespace": func() error {
			_, err := a.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release.NamespaceRole},
				Subjects:   []rbacv1.Subject{me, {Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:shipper-system"}},
			}, dry)
			return err
		},
		"write an Ingress's status": func() error {
			_, err := ings.UpdateStatus(ctx, live, metav1.UpdateOptions{})
			return err
		},
	} {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("project 101: %s: err = %v, want Forbidden", what, err)
		}
	}

	// Names that only look like a project's account, bound by mistake.
	for _, name := range []string{"project-101x", "project-101-ci", "projects-101", "project-1.01"} {
		c, err := kubernetes.NewForConfig(sameRightsToken(t, env, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release.NamespaceRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "shipper-system"}},
		}, dry); !apierrors.IsForbidden(err) {
			t.Errorf("shipper-system/%s binds itself in project 101's namespace: err = %v, want Forbidden", name, err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestUpgradeEmptiesTheOldGroupBinding (hostile review of d09a869): the
// upgrade path. A ClusterRoleBinding applied from the previous
// clusterrolebinding.yaml (the group of shipper-system's accounts), then
// from this one (subjects: []) with kubectl, has no subject left whether
// either apply is client-side or server-side.
func TestUpgradeEmptiesTheOldGroupBinding(t *testing.T) {
	env := testenv.Get(t)
	shipperToken(t, env) // ClusterRole shipper exists
	kubectl, err := testenv.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	current, err := os.ReadFile("../deploy/rbac/clusterrolebinding.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const old = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: shipper
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: shipper
subjects:
  - kind: Group
    apiGroup: rbac.authorization.k8s.io
    name: system:serviceaccounts:shipper-system
`
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct{ before, after string }{
		{"client-side", "client-side"},
		{"server-side", "server-side"},
		{"client-side", "server-side"},
		{"server-side", "client-side"},
	} {
		name := uniqueName("probe-upgrade")
		// Another name, and another role: policy shipper-bindings refuses
		// the old group subject on ClusterRole shipper now, and what is
		// tested is how kubectl empties the subjects.
		rename := func(doc string) string {
			doc = strings.Replace(doc, "metadata:\n  name: shipper\n", "metadata:\n  name: "+name+"\n", 1)
			return strings.Replace(doc, "  kind: ClusterRole\n  name: shipper\n", "  kind: ClusterRole\n  name: view\n", 1)
		}
		t.Cleanup(func() {
			_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
		for i, step := range []struct{ mode, doc string }{{c.before, rename(old)}, {c.after, rename(string(current))}} {
			if !strings.Contains(step.doc, "name: "+name) || !strings.Contains(step.doc, "name: view") {
				t.Fatalf("the binding's name not found in %q", step.doc)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.yaml", name, i))
			if err := os.WriteFile(file, []byte(step.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"--kubeconfig", env.Kubeconfig, "apply", "-f", file}
			if step.mode == "server-side" {
				args = append(args, "--server-side")
			}
			if out, err := exec.Command(kubectl, args...).CombinedOutput(); err != nil {
				t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		got, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Subjects) != 0 {
			t.Errorf("applied %s from the old file, then %s from deploy/rbac: subjects %+v, want none", c.before, c.after, got.Subjects)
		}
	}
}

// TestAHostBelongsToOneApp (issue 26): with project 4711's token, an
// Ingress or HTTPRoute in its own namespace may name only its app's derived
// hosts under the cluster's base domains and the hosts granted to 4711
// (testSettings): the apiserver (deploy/rbac/hosts.yaml) refuses the rest,
// and release.Settings.HostAllowed, which shipper asks before any change,
// answers as the apiserver does for every host. Another app's production
// host, preview host or alias host, a host without a rule, a TLS entry for
// another host (what cert-manager's ingress-shim would request a
// certificate for) and a catch-all are refused; `deploy --host` or
// `--domain` outside them is exit 2 with nothing created.
func TestAHostBelongsToOneApp(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	app, ns, e, tok := deployedFor(t, env, "4711", "host", "cdcdcdcd55555555555555555555555555555555")
	cs, err := kubernetes.NewForConfig(tok)
	if err != nil {
		t.Fatal(err)
	}
	gwc, err := gwclient.NewForConfig(tok)
	if err != nil {
		t.Fatal(err)
	}
	settings := release.Settings{Found: true, Data: testSettings}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	hosts := map[string]bool{
		app + ".example.com":               true,
		app + "-0123abcd.example.com":      true,
		app + "--main.preview.example.com": true,
		"shop.example.org":                 true,
		"a.previews.example.org":           true,
		"other.example.com":                false, // app other's production
		app + "-main.example.com":          false, // app <app>-main's production
		"other-0123abcd.example.com":       false,
		"other--main.example.com":          false,
		"x." + app + ".example.com":        false,
		app + ".example.net":               false,
		"www.example.com":                  false,
		"example.com":                      false,
		"*.example.com":                    false,
		"shop.example.org.example.com":     false,
		strings.TrimSuffix(app, app[len(app)-1:]) + ".example.com": false,
	}
	for host, want := range hosts {
		if got := settings.HostAllowed(app, "4711", host); got != want {
			t.Errorf("HostAllowed(%s) = %v, want %v", host, got, want)
		}
		_, errIng := cs.NetworkingV1().Ingresses(ns).Create(ctx, probeIngress(host, nil, networkingv1.PathTypePrefix), dry)
		_, errRoute := gwc.GatewayV1().HTTPRoutes(ns).Create(ctx, &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
			Spec:       gwv1.HTTPRouteSpec{Hostnames: []gwv1.Hostname{gwv1.Hostname(host)}},
		}, dry)
		for kind, err := range map[string]error{"Ingress": errIng, "HTTPRoute": errRoute} {
			if want && err != nil || !want && !apierrors.IsForbidden(err) {
				t.Errorf("%s for %s in %s's namespace: err = %v, want allowed %v", kind, host, app, err, want)
			}
		}
	}

	own := app + ".example.com"
	catchAll := probeIngress("", nil, networkingv1.PathTypePrefix)
	otherTLS := probeIngress(own, nil, networkingv1.PathTypePrefix)
	otherTLS.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{own, "other.example.com"}, SecretName: "x"}}
	anyTLS := probeIngress(own, nil, networkingv1.PathTypePrefix)
	anyTLS.Spec.TLS = []networkingv1.IngressTLS{{SecretName: "x"}}
	withDefault := probeIngress(own, nil, networkingv1.PathTypePrefix)
	withDefault.Spec.DefaultBackend = withDefault.Spec.Rules[0].HTTP.Paths[0].Backend.DeepCopy()
	twoRules := probeIngress(own, nil, networkingv1.PathTypePrefix)
	twoRules.Spec.Rules = append(twoRules.Spec.Rules, probeIngress("other.example.com", nil, networkingv1.PathTypePrefix).Spec.Rules...)
	for what, ing := range map[string]*networkingv1.Ingress{
		"a rule without a host": catchAll, "a TLS entry for another app's host": otherTLS,
		"a TLS entry without hosts": anyTLS, "a default backend": withDefault, "a second rule for another app's host": twoRules,
	} {
		if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, dry); !apierrors.IsForbidden(err) {
			t.Errorf("Ingress with %s: err = %v, want Forbidden", what, err)
		}
	}
	ownTLS := probeIngress(own, nil, networkingv1.PathTypePrefix)
	ownTLS.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{own}, SecretName: "x"}}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ownTLS, dry); err != nil {
		t.Errorf("Ingress with TLS for its own host: %v", err)
	}
	if _, err := gwc.GatewayV1().HTTPRoutes(ns).Create(ctx, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}, dry); !apierrors.IsForbidden(err) {
		t.Errorf("HTTPRoute without hostnames: err = %v, want Forbidden", err)
	}

	// shipper asks the same question before its first change.
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	next := with(e, "CI_COMMIT_SHA", "cdcdcdce55555555555555555555555555555555", "CI_COMMIT_SHORT_SHA", "cdcdcdce")
	if r := runBinary(t, next, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	for _, args := range [][]string{
		{"deploy", "--host", "other.example.com"},
		{"deploy", "--domain", "example.net"},
		{"deploy", "--host", "{sha}.{app}.{domain}"},
	} {
		r := runBinary(t, next, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "is not app "+app+"'s on this cluster") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming the host's owner rule", args, r.code, r.stderr)
		}
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, app+"-cdcdcdce", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace of the refused deploys: err = %v, want NotFound (nothing created)", err)
	}
	if r := runBinary(t, next, "deploy", "--host", "shop.example.org"); r.code != 0 {
		t.Errorf("deploy --host of a host granted to the project: exit %d, %s", r.code, r.stderr)
	}
	_ = admin.CoreV1().Namespaces().Delete(ctx, app+"-cdcdcdce", metav1.DeleteOptions{})
}
