package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/gate"
	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestProtectedPreviews runs deploy, list, share and deploy --protect none
// with project 103's own token, as a pipeline does, and reads what the
// cluster holds: the gate beside the app on the port the Service and the
// router reach, the app's key made once and copied to each commit, a new
// password carried to every commit, a share link the gate accepts until
// the key is rotated, and no password, bypass or key in Helm's records or
// in the job's output.
func TestProtectedPreviews(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	const (
		pw1, pw2 = "first-preview-password-4711", "second-preview-password-0815"
		bypass   = "automation-bypass-secret-9999"
		// oidcSecret is the client secret of the gate's GitLab application.
		oidcSecret = "oidc-client-secret-value-2468"
		shaA       = "1a1a1a1a00000000000000000000000000000000"
		shaB       = "2b2b2b2b00000000000000000000000000000000"
	)
	tok := projectToken(t, env, "103")
	appName := uniqueName("prot")
	base := gitlabEnv(t, env, appName, shaA)
	base["KUBE_TOKEN"], base["CI_PROJECT_ID"], base["CI_PROJECT_PATH"] = tok.BearerToken, "103", "group-103/"+appName
	gateImage := env.Registry.Repository("tools/shipper") + ":test"
	protected := with(base, "SHIPPER_PROTECT", "previews", "SHIPPER_GATE_IMAGE", gateImage,
		"SHIPPER_PREVIEW_PASSWORD", pw1, "SHIPPER_PROTECTION_BYPASS", bypass)
	at := func(e map[string]string, sha string) map[string]string {
		return with(e, "CI_COMMIT_SHA", sha, "CI_COMMIT_SHORT_SHA", sha[:8])
	}
	nsA, nsB, prod := appName+"-"+shaA[:8], appName+"-"+shaB[:8], appName+"-production"
	t.Cleanup(func() {
		for _, ns := range []string{nsA, nsB, prod} {
			_ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})
	var output strings.Builder
	mustRun := func(e map[string]string, args ...string) string {
		t.Helper()
		r := runBinary(t, e, args...)
		output.WriteString(r.stdout + r.stderr)
		if r.code != 0 {
			t.Fatalf("shipper %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	mustRun(at(protected, shaA), "package")

	// Bad input first: exit 2, nothing made.
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"a bad --protect", with(protected, "SHIPPER_PROTECT", "previews-only"), "--protect"},
		{"no gate image", with(protected, "SHIPPER_GATE_IMAGE", ""), "--gate-image"},
		{"a bad gate image", with(protected, "SHIPPER_GATE_IMAGE", "Registry/Shipper"), "--gate-image"},
		{"a short bypass", with(protected, "SHIPPER_PROTECTION_BYPASS", "short-bypass"), "SHIPPER_PROTECTION_BYPASS"},
		{"a short password", with(protected, "SHIPPER_PREVIEW_PASSWORD", "1234567"), "SHIPPER_PREVIEW_PASSWORD"},
		{"an http OIDC issuer", with(protected, "SHIPPER_OIDC_ISSUER", "http://gitlab.example.com", "SHIPPER_OIDC_CLIENT_ID", "app-id",
			"SHIPPER_OIDC_GROUPS", "acme/web", "SHIPPER_OIDC_CLIENT_SECRET", oidcSecret), "--oidc-issuer"},
		{"OIDC letting in nobody chosen", with(protected, "SHIPPER_OIDC_ISSUER", "https://gitlab.example.com", "SHIPPER_OIDC_CLIENT_ID", "app-id",
			"SHIPPER_OIDC_CLIENT_SECRET", oidcSecret), "--oidc-groups"},
	} {
		r := runBinary(t, at(tc.env, shaA), "deploy")
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 naming %s", tc.name, r.code, r.stderr, tc.want)
		}
		output.WriteString(r.stdout + r.stderr)
		if _, err := admin.CoreV1().Namespaces().Get(ctx, nsA, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: namespace %s after exit 2: %v", tc.name, nsA, err)
		}
	}

	mustRun(at(protected, shaA), "deploy")
	dep, err := admin.AppsV1().Deployments(nsA).Get(ctx, nsA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 2 || pod.Containers[1].Name != "gate" || pod.Containers[1].Image != gateImage {
		t.Fatalf("containers %+v, want the app and the gate from %s", pod.Containers, gateImage)
	}
	app, gt := pod.Containers[0], pod.Containers[1]
	if app.Ports[0].Name != "app" || gt.Ports[0].Name != "http" || gt.Ports[0].ContainerPort != release.GatePort {
		t.Errorf("ports: app %+v, gate %+v; want the gate's named http (%d), the app's app", app.Ports, gt.Ports, release.GatePort)
	}
	// --domain even before production exists: the commit may be promoted,
	// and production's host is the login host, which sends browsers back
	// to the app's hosts under it only.
	if !slices.Contains(gt.Args, fmt.Sprintf("--public-listen=:%d", release.GatePublicPort)) || !slices.Contains(gt.Args, "--sha="+shaA[:8]) ||
		!slices.Contains(gt.Args, "--domain=example.com") ||
		len(gt.Ports) != 2 || gt.Ports[1].Name != "public" {
		t.Errorf("gate args %q, ports %+v: want its public listener (production's, --protect previews) and the commit", gt.Args, gt.Ports)
	}
	svc, err := admin.CoreV1().Services(nsA).Get(ctx, nsA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].TargetPort != intstr.FromString("http") || svc.Spec.Ports[1].Name != "public" || svc.Spec.Ports[1].TargetPort != intstr.FromString("public") {
		t.Errorf("Service ports %+v, want http at the gate's http, public at its public listener", svc.Spec.Ports)
	}
	np, err := admin.NetworkingV1().NetworkPolicies(nsA).Get(ctx, release.IsolationPolicy, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	routerRule := np.Spec.Ingress[len(np.Spec.Ingress)-1]
	if len(routerRule.Ports) != 2 || routerRule.Ports[0].Port.String() != "http" || routerRule.Ports[1].Port.String() != "public" || routerRule.From[0].NamespaceSelector == nil {
		t.Errorf("the router's rule %+v: want the ports named http and public only", routerRule)
	}

	secretData := func(ns, name string) map[string]string {
		t.Helper()
		s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("secret %s/%s: %v", ns, name, err)
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out
	}
	appKey := secretData(prod, "shipper-gate")
	if len(appKey["key"]) != 32 || appKey["password"] != pw1 || appKey["bypass"] != bypass {
		t.Fatalf("the app's gate Secret holds a %d-byte key, password ok %t, bypass ok %t; want 32 bytes and the job's", len(appKey["key"]), appKey["password"] == pw1, appKey["bypass"] == bypass)
	}
	if got := secretData(nsA, nsA+"-gate"); got["key"] != appKey["key"] || got["password"] != pw1 {
		t.Error("the commit's gate Secret is not a copy of the app's")
	}

	// A second commit with a new password and sign-in with GitLab: the
	// same key, and the first commit's copy gets the new password too (its
	// sessions end); the client secret is the app's like the password.
	withOIDC := with(protected, "SHIPPER_PREVIEW_PASSWORD", pw2, "SHIPPER_OIDC_ISSUER", "https://gitlab.example.com",
		"SHIPPER_OIDC_CLIENT_ID", "app-id", "SHIPPER_OIDC_GROUPS", "acme/web", "SHIPPER_OIDC_CLIENT_SECRET", oidcSecret)
	mustRun(at(withOIDC, shaB), "package")
	mustRun(at(withOIDC, shaB), "deploy")
	depB, err := admin.AppsV1().Deployments(nsB).Get(ctx, nsB, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := depB.Spec.Template.Spec.Containers[1].Args; !slices.Contains(args, "--oidc-issuer=https://gitlab.example.com") ||
		!slices.Contains(args, "--oidc-groups=acme/web") || strings.Contains(strings.Join(args, " "), oidcSecret) {
		t.Errorf("gate args %q: want the sign-in flags, never the secret", args)
	}
	if got := secretData(prod, "shipper-gate"); got["oidc-client-secret"] != oidcSecret {
		t.Error("the app's gate Secret has not the OIDC client secret")
	}
	for _, ns := range []string{nsA, nsB} {
		if got := secretData(ns, ns+"-gate"); got["key"] != appKey["key"] || got["password"] != pw2 {
			t.Errorf("%s: same key %t, new password %t; want both", ns, got["key"] == appKey["key"], got["password"] == pw2)
		}
	}
	// A job without the (protected) variable keeps the app's password.
	mustRun(at(with(protected, "SHIPPER_PREVIEW_PASSWORD", ""), shaB), "deploy")
	if got := secretData(prod, "shipper-gate"); got["password"] != pw2 {
		t.Error("a deploy without SHIPPER_PREVIEW_PASSWORD changed the app's password")
	}

	var listed []release.Commit
	if err := json.Unmarshal([]byte(mustRun(at(protected, shaA), "list", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	for _, c := range listed {
		if c.Protect != "previews" {
			t.Errorf("list: %s protect %q, want previews", c.Short, c.Protect)
		}
	}

	// A share link opens commit A's preview in the gate until the key is
	// rotated; it is no good for commit B.
	link := strings.TrimSpace(mustRun(at(protected, shaA), "share", "--ttl", "1h"))
	if !strings.HasPrefix(link, "https://"+nsA+".example.com/?shipper-share=v1.") {
		t.Fatalf("share printed %q", link)
	}
	opens := func(key, sha, link string) bool {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
		defer up.Close()
		u, _ := url.Parse(up.URL)
		g, err := gate.New(gate.Config{App: appName, SHA: sha, Upstream: u, Key: []byte(key), Password: pw2, Secure: true})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, link, nil))
		return w.Code == http.StatusSeeOther && len(w.Result().Cookies()) == 1
	}
	if !opens(appKey["key"], shaA[:8], link) {
		t.Error("the gate of commit A does not accept its share link")
	}
	if opens(appKey["key"], shaB[:8], strings.Replace(link, nsA, nsB, 1)) {
		t.Error("commit A's share link opens commit B")
	}
	for _, ttl := range []string{"0s", "721h", "-1h"} {
		if r := runBinary(t, at(protected, shaA), "share", "--ttl", ttl); r.code != exitUsage || !strings.Contains(r.stderr, "--ttl") {
			t.Errorf("share --ttl %s: exit %d %q, want 2 naming --ttl", ttl, r.code, r.stderr)
		}
	}
	mustRun(at(protected, shaA), "share", "--revoke-all")
	rotated := secretData(prod, "shipper-gate")
	if rotated["key"] == appKey["key"] || len(rotated["key"]) != 32 || rotated["password"] != pw2 {
		t.Fatal("--revoke-all did not give the app a new key (keeping its password)")
	}
	for _, ns := range []string{nsA, nsB} {
		if secretData(ns, ns+"-gate")["key"] != rotated["key"] {
			t.Errorf("%s kept the old key after --revoke-all", ns)
		}
	}
	if opens(rotated["key"], shaA[:8], link) {
		t.Error("a share link of the old key still opens the preview")
	}

	// Protection off is a deploy: one container, the Service at the app,
	// no gate Secret; list says so; share refuses.
	mustRun(at(with(protected, "SHIPPER_PROTECT", "none"), shaA), "deploy")
	dep, err = admin.AppsV1().Deployments(nsA).Get(ctx, nsA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := dep.Spec.Template.Spec.Containers; len(c) != 1 || c[0].Ports[0].Name != "http" {
		t.Errorf("after --protect none: containers %+v, want the app alone on the port named http", c)
	}
	if _, err := admin.CoreV1().Secrets(nsA).Get(ctx, nsA+"-gate", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the gate Secret after --protect none: %v, want it removed", err)
	}
	if r := runBinary(t, at(protected, shaA), "share"); r.code != exitUsage || !strings.Contains(r.stderr, "not protected") {
		t.Errorf("share of an unprotected commit: exit %d %q, want 2", r.code, r.stderr)
	}

	// Nothing secret in Helm's records or the jobs' output.
	for _, ns := range []string{nsA, nsB, prod} {
		recs, err := admin.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs.Items {
			rel := helmRecord(t, r)
			for _, s := range []string{pw1, pw2, bypass, oidcSecret, appKey["key"], rotated["key"]} {
				if strings.Contains(rel, s) {
					t.Errorf("Helm record %s/%s holds a secret", ns, r.Name)
				}
			}
		}
	}
	for _, s := range []string{pw1, pw2, bypass, oidcSecret} {
		if strings.Contains(output.String(), s) {
			t.Error("a job's output holds a secret")
		}
	}
}

// helmRecord decodes a Helm release record (base64 of gzipped JSON).
func helmRecord(t *testing.T, s corev1.Secret) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(string(s.Data["release"]))
	if err != nil {
		t.Fatal(err)
	}
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestServicesStayInsideTheirNamespace: with a project's own token, the
// apiserver refuses a Service that reaches out of its namespace or in
// around the router (and so around a protected preview's gate):
// ExternalName, external IPs, NodePort, LoadBalancer, no selector. A
// ClusterIP Service of the namespace's pods, the chart's kind, is fine;
// so is a NetworkPolicy update that keeps the router to the port named
// http, and one that opens the app's port to the router is refused.
func TestServicesStayInsideTheirNamespace(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	_, ns, _, tok := deployedFor(t, env, "104", "svc", "3c3c3c3c00000000000000000000000000000000")
	c, err := kubernetes.NewForConfig(tok)
	if err != nil {
		t.Fatal(err)
	}
	port := []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}
	sel := map[string]string{"app": "x"}
	for _, tc := range []struct {
		name string
		spec corev1.ServiceSpec
		ok   bool
	}{
		{"ClusterIP of the namespace's pods", corev1.ServiceSpec{Selector: sel, Ports: port}, true},
		{"ExternalName", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "victim.other-ns.svc.cluster.local"}, false},
		{"external IPs", corev1.ServiceSpec{Selector: sel, Ports: port, ExternalIPs: []string{"10.0.0.7"}}, false},
		{"NodePort", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: sel, Ports: port}, false},
		{"LoadBalancer", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: sel, Ports: port}, false},
		{"no selector (endpoints of its own choosing)", corev1.ServiceSpec{Ports: port}, false},
	} {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, Spec: tc.spec}
		_, err := c.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
		if tc.ok && err != nil || !tc.ok && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Errorf("%s: %v, want allowed %t", tc.name, err, tc.ok)
		}
		if !tc.ok && err != nil && apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "shipper-services") {
			t.Errorf("%s: refused by %v, want policy shipper-services", tc.name, err)
		}
	}
	nps := c.NetworkingV1().NetworkPolicies(ns)
	np, err := nps.Get(ctx, release.IsolationPolicy, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	open := np.DeepCopy()
	open.Spec.Ingress[len(open.Spec.Ingress)-1].Ports = nil
	if _, err := nps.Update(ctx, open, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("opening every port to the router: %v, want Forbidden", err)
	}
	appPort := np.DeepCopy()
	appPort.Spec.Ingress[len(appPort.Spec.Ingress)-1].Ports = []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("app"))}}
	if _, err := nps.Update(ctx, appPort, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("opening the app's port to the router: %v, want Forbidden", err)
	}
	if _, err := nps.Update(ctx, np, metav1.UpdateOptions{}); err != nil {
		t.Errorf("the NetworkPolicy as shipper made it: %v", err)
	}
}
