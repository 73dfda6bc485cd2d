package main

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, dry); err != nil {
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
	tokA := projectToken(t, env, "101")
	appName := uniqueName("named")
	e := gitlabEnv(t, env, appName, "abababab55555555555555555555555555555555")
	e["KUBE_TOKEN"], e["CI_PROJECT_ID"], e["CI_PROJECT_PATH"] = tokA.BearerToken, "101", "group-a/"+appName
	if r := runBinary(t, e, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("deploy as project 101: %s", r.stderr)
	}
	nsA := appName + "-abababab"
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(ctx, nsA, metav1.DeleteOptions{}) })

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
		// An account an admin bound to shipper's role by mistake (a
		// runner's): RBAC lets it through, the policies do not.
		{"runner", boundToken(t, env, "runner")},
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
	tokA := projectToken(t, env, "101")
	appName := uniqueName("ingress")
	e := gitlabEnv(t, env, appName, "acacacac55555555555555555555555555555555")
	e["KUBE_TOKEN"], e["CI_PROJECT_ID"], e["CI_PROJECT_PATH"] = tokA.BearerToken, "101", "group-a/"+appName
	if r := runBinary(t, e, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	if r := runBinary(t, e, "deploy"); r.code != 0 {
		t.Fatalf("deploy as project 101: %s", r.stderr)
	}
	ns := appName + "-acacacac"
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	a, err := kubernetes.NewForConfig(tokA)
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	ingress := func(annotations map[string]string) *networkingv1.Ingress {
		pt := networkingv1.PathTypePrefix
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Annotations: annotations},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: appName + "-acacacac.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}}}},
			}}},
		}
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
