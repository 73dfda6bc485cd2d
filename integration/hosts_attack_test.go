package integration

// TestHostOwnershipUnderAttack: a hostile review of 71e0c08 ("A host
// belongs to one app") probed policy shipper-hosts (deploy/rbac/hosts.yaml)
// with project tokens on the real apiserver; each way it found in is a
// subtest here (each failed before its fix), and "held" the ways that
// were refused from the start.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestHostOwnershipUnderAttack(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	clientOf := func(id string) kubernetes.Interface {
		c, err := kubernetes.NewForConfig(projectToken(t, env, id))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c202, c101 := clientOf("202"), clientOf("101")
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	suffix := uniqueName("r")[2:] // 6 hex

	// bind gives project id shipper-namespace in ns as shipper does
	// (access.go), with creator's client, and waits for the authorizer.
	bind := func(creator, user kubernetes.Interface, ns, id string) {
		t.Helper()
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "shipper", Namespace: ns, Labels: map[string]string{release.LabelManagedBy: release.ManagedBy}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "shipper-namespace"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:serviceaccount:shipper-system:project-" + id}},
		}
		if _, err := creator.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("binding project %s in %s: %v", id, ns, err)
		}
		for i := 0; i < 100; i++ {
			r, err := user.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "networking.k8s.io", Resource: "ingresses"}}}, metav1.CreateOptions{})
			if err == nil && r.Status.Allowed {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("project %s never got ingresses in %s", id, ns)
	}
	// preview makes the namespace of app's commit sha8 as project id's
	// shipper would (namespace.go), with creator's client (the project's
	// own token, or an admin's for a namespace made before the upgrade).
	preview := func(creator, user kubernetes.Interface, id, app, name, role, sha8 string) string {
		t.Helper()
		labels := map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: app, release.LabelRole: role,
			"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
			"pod-security.kubernetes.io/warn": "restricted", release.LabelProject: id,
		}
		if sha8 != "" {
			labels[release.LabelSHA] = sha8
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if _, err := creator.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace %s (app %s, project %s): %v", name, app, id, err)
		}
		t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
		bind(creator, user, name, id)
		start := time.Now()
		for {
			_, err := user.NetworkingV1().Ingresses(name).Create(ctx, probeIngress("other.example.com", nil, networkingv1.PathTypePrefix), dry)
			if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "shipper-hosts") {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("policy shipper-hosts not enforced in %s: other.example.com: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Logf("shipper-hosts enforced in %s after %v", name, d.Round(time.Millisecond))
		}
		return name
	}
	withTLS := func(host string, ann map[string]string) *networkingv1.Ingress {
		ing := probeIngress(host, ann, networkingv1.PathTypePrefix)
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: "probe-tls"}}
		return ing
	}
	settings := release.Settings{Found: true, Data: testSettings}

	// Control, first: deploy/rbac was applied moments ago (shipperToken),
	// and the apiserver enforces a new policy only once it has compiled
	// it (seconds on a busy machine: a probe before that is admitted). Wait
	// until another app's host is refused; preview checks the same in
	// every namespace it makes.
	t.Run("control", func(t *testing.T) {
		app := "ct" + suffix
		ns := app + "-6f708192"
		_ = preview(c202, c202, "202", app, ns, release.RolePreview, "6f708192")
	})

	// App "xn" would own every IDN label ("xn--<ref>" aliases: punycode;
	// xn--n1ae5d4v is Cyrillic "ѕһор", like "shop"), and every 2-character
	// app's alias is a reserved label: no project may create one, and a
	// namespace of one from before (an admin's here) routes no alias host.
	t.Run("app xn serves no IDN look-alikes", func(t *testing.T) {
		xn := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "xn-1a2b3c4d", Labels: map[string]string{
			release.LabelManagedBy: release.ManagedBy, release.LabelApp: "xn", release.LabelRole: release.RolePreview,
			release.LabelSHA: "1a2b3c4d", "pod-security.kubernetes.io/enforce": "restricted", release.LabelProject: "202"}}}
		if _, err := c202.CoreV1().Namespaces().Create(ctx, xn, dry); !apierrors.IsForbidden(err) {
			t.Errorf("project 202 creates a namespace of app xn: err = %v, want Forbidden", err)
		}
		ns := preview(admin, c202, "202", "xn", "xn-1a2b3c4d", release.RolePreview, "1a2b3c4d")
		for _, host := range []string{"xn--n1ae5d4v.example.com", "xn--n1ae5d4v.preview.example.com"} {
			_, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, withTLS(host, map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}), dry)
			if !apierrors.IsForbidden(err) || settings.HostAllowed("xn", "202", host) {
				t.Errorf("app xn, Ingress+TLS for %s: err = %v, HostAllowed %v; want both refusing", host, err, settings.HostAllowed("xn", "202", host))
			}
		}
	})

	// testSettings nests preview.example.com and new.example.com under
	// example.com: app "preview"'s production host is a base domain.
	t.Run("an app named like a nested base domain does not serve it", func(t *testing.T) {
		ns := preview(c202, c202, "202", "preview", "preview-2b3c4d5e", release.RolePreview, "2b3c4d5e")
		_, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, withTLS("preview.example.com", nil), dry)
		t.Logf("project 202, app preview, Ingress+TLS for preview.example.com: err = %v; HostAllowed = %v", err, settings.HostAllowed("preview", "202", "preview.example.com"))
		if err == nil || settings.HostAllowed("preview", "202", "preview.example.com") {
			t.Errorf("admitted: app preview routes the base domain preview.example.com, parent of every app's host under it")
		}
	})

	// A namespace made before the upgrade for an app named "<x>-<8 hex>"
	// (shipper-namespaces refuses it only at CREATE; hosts.yaml checks the
	// label is a slug, not that it is not a preview's).
	t.Run("an app named like a preview from before the upgrade routes nothing", func(t *testing.T) {
		victim := "lg" + suffix
		legacy := victim + "-1a2b3c4d"
		nsLegacy := preview(admin, c202, "202", legacy, legacy+"-production", release.RoleProduction, "")
		nsVictim := preview(c101, c101, "101", victim, victim+"-1a2b3c4d", release.RolePreview, "1a2b3c4d")
		host := legacy + ".example.com"
		_, err202 := c202.NetworkingV1().Ingresses(nsLegacy).Create(ctx, withTLS(host, nil), dry)
		_, err101 := c101.NetworkingV1().Ingresses(nsVictim).Create(ctx, withTLS(host, nil), dry)
		t.Logf("host %s: project 202 (app %s, production) err = %v; project 101 (app %s, preview 1a2b3c4d) err = %v", host, legacy, err202, victim, err101)
		if err202 == nil || err101 != nil {
			t.Errorf("%s is project 101's app %s's preview: project 202's legacy app %s err = %v (want refused), project 101 err = %v (want admitted)", host, victim, legacy, err202, err101)
		}
	})

	// cert-manager's ingress-shim copies cert-manager.io/common-name (and
	// email-sans, subject-*) into the Certificate (shimhelper
	// translateAnnotations); shipper-hosts checks TLS hosts only, and the
	// chart's schema lets the same annotations through a values file.
	t.Run("cert-manager annotations name no other host", func(t *testing.T) {
		app := "cn" + suffix
		ns := preview(c202, c202, "202", app, app+"-3c4d5e6f", release.RolePreview, "3c4d5e6f")
		ann := map[string]string{
			"cert-manager.io/cluster-issuer": "internal-ca",
			"cert-manager.io/common-name":    "shop.example.com",
			"cert-manager.io/email-sans":     "admin@shop.example.com",
		}
		_, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, withTLS(app+"-3c4d5e6f.example.com", ann), dry)
		t.Logf("project 202, own TLS host, common-name shop.example.com: err = %v", err)
		values := filepath.Join(t.TempDir(), "v.yaml")
		if err := os.WriteFile(values, []byte("ingress:\n  annotations:\n    cert-manager.io/common-name: shop.example.com\n  tls:\n    enabled: true\n    clusterIssuer: internal-ca\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runBinary(t, nil, "render", "--app", app, "--sha", "3c4d5e6f", "--domain", "example.com", "--image", "r.example.com/a:1", "--values", values)
		code := r.code
		rendered := strings.Contains(r.stdout, "cert-manager.io/common-name")
		t.Logf("shipper render --values (common-name): exit %d, annotation rendered %v, stderr %q", code, rendered, r.stderr)
		if !apierrors.IsForbidden(err) || rendered || code != 2 {
			t.Errorf("an Ingress whose certificate would be for shop.example.com (common name) is admitted (%v) / rendered from values (%v)", err == nil, rendered)
		}
	})

	// Grants: a wildcard over a base domain reaches app hosts' subdomains;
	// a form feed separates grants for the CEL and not for shipper.
	t.Run("grants: never under a base domain, split as the CEL splits them", func(t *testing.T) {
		data := map[string]string{}
		for k, v := range testSettings {
			data[k] = v
		}
		data["hosts.202"] = "*.example.com a.example.org\fb.example.org"
		if err := env.ApplySettings(ctx, data); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.ApplySettings(context.Background(), testSettings) })
		app := "gr" + suffix
		ns := preview(c202, c202, "202", app, app+"-4d5e6f70", release.RolePreview, "4d5e6f70")
		mine := release.Settings{Found: true, Data: data}
		var err error
		for i := 0; i < 100; i++ { // the policy's param informer
			if _, err = c202.NetworkingV1().Ingresses(ns).Create(ctx, probeIngress("b.example.org", nil, networkingv1.PathTypePrefix), dry); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("b.example.org (granted after a form feed): apiserver err = %v, shipper HostAllowed = %v", err, mine.HostAllowed(app, "202", "b.example.org"))
		if (err == nil) != mine.HostAllowed(app, "202", "b.example.org") {
			t.Errorf("the apiserver and shipper disagree on b.example.org")
		}
		for _, host := range []string{"*.shop.example.com", "login.shop.example.com"} {
			_, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, withTLS(host, nil), dry)
			t.Logf("%s with grant *.example.com: err = %v, HostAllowed = %v", host, err, mine.HostAllowed(app, "202", host))
			if err == nil {
				t.Errorf("admitted: project 202 routes %s, under app shop's host", host)
			}
		}
	})

	// What held: every other way the brief lists, with project 202's token.
	t.Run("held", func(t *testing.T) {
		app := "hd" + suffix
		ns := preview(c202, c202, "202", app, app+"-5e6f7081", release.RolePreview, "5e6f7081")
		own := app + "-5e6f7081.example.com"
		refused := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Errorf("%s: admitted", what)
			} else {
				t.Logf("%s: %s", what, strings.SplitN(err.Error(), ": ", 2)[0])
			}
		}
		for _, host := range []string{
			"*.preview.example.com", "*." + own, "x." + own, "other.example.com", "shop--main.example.com",
			"xn--n1ae5d4v.example.com", "example.com", "preview.example.com", app + "-5e6f708.example.com",
		} {
			_, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, withTLS(host, nil), dry)
			refused("Ingress for "+host, err)
		}
		for _, tlsHost := range []string{"Other.example.com", "other.example.com.", "other.example.com:443", "OTHER.EXAMPLE.COM"} {
			ing := probeIngress(own, nil, networkingv1.PathTypePrefix)
			ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{own, tlsHost}, SecretName: "x"}}
			_, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, ing, dry)
			refused("TLS host "+tlsHost, err)
		}
		// A real Ingress, then every way of writing it.
		ing, err := c202.NetworkingV1().Ingresses(ns).Create(ctx, probeIngress(own, nil, networkingv1.PathTypePrefix), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c202.NetworkingV1().Ingresses(ns).Patch(ctx, ing.Name, types.JSONPatchType,
			[]byte(`[{"op":"replace","path":"/spec/rules/0/host","value":"other.example.com"}]`), metav1.PatchOptions{})
		refused("JSON patch of the host", err)
		_, err = c202.NetworkingV1().Ingresses(ns).Patch(ctx, ing.Name, types.MergePatchType,
			[]byte(`{"spec":{"tls":[{"hosts":["other.example.com"],"secretName":"x"}]}}`), metav1.PatchOptions{})
		refused("merge patch adding a TLS host", err)
		force := true
		_, err = c202.NetworkingV1().Ingresses(ns).Patch(ctx, ing.Name, types.ApplyPatchType, []byte(fmt.Sprintf(
			`{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":%q},"spec":{"rules":[{"host":"other.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"x","port":{"number":80}}}}]}}]}}`, ing.Name)),
			metav1.PatchOptions{FieldManager: "probe", Force: &force})
		refused("server-side apply of another host", err)
		ing.Spec.Rules[0].Host = "other.example.com"
		_, err = c202.NetworkingV1().Ingresses(ns).Update(ctx, ing, metav1.UpdateOptions{})
		refused("update to another host", err)
		_, err = c202.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, ing, metav1.UpdateOptions{})
		refused("ingresses/status", err)
		// Route kinds and rights the project does not have.
		for _, ra := range []authorizationv1.ResourceAttributes{
			{Group: "gateway.networking.k8s.io", Resource: "grpcroutes", Verb: "create"},
			{Group: "gateway.networking.k8s.io", Resource: "tlsroutes", Verb: "create"},
			{Group: "gateway.networking.k8s.io", Resource: "tcproutes", Verb: "create"},
			{Group: "gateway.networking.k8s.io", Resource: "udproutes", Verb: "create"},
			{Group: "gateway.networking.k8s.io", Resource: "gateways", Verb: "create"},
			{Group: "gateway.networking.k8s.io", Resource: "httproutes", Subresource: "status", Verb: "update"},
			{Group: "networking.k8s.io", Resource: "ingresses", Subresource: "status", Verb: "update"},
			{Group: "", Resource: "namespaces", Verb: "update", Name: ns},
			{Group: "", Resource: "namespaces", Verb: "patch", Name: ns},
			{Group: "", Resource: "configmaps", Verb: "update", Name: "shipper-settings", Namespace: "shipper-system"},
			{Group: "cert-manager.io", Resource: "certificates", Verb: "create"},
			{Group: "", Resource: "serviceaccounts", Subresource: "token", Verb: "create", Name: "shipper", Namespace: "shipper-system"},
			{Group: "", Resource: "pods", Verb: "create"},
			{Group: "", Resource: "users", Verb: "impersonate"},
		} {
			if ra.Namespace == "" && ra.Resource != "namespaces" && ra.Resource != "users" {
				ra.Namespace = ns
			}
			r, err := c202.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed {
				t.Errorf("project 202 may %s %s/%s in %q", ra.Verb, ra.Resource, ra.Subresource, ra.Namespace)
			}
		}
		// Another commit's preview host of the same app, from this
		// commit's namespace: admitted (one app, one project): noted.
		_, err = c202.NetworkingV1().Ingresses(ns).Create(ctx, withTLS(app+"-ffffffff.example.com", nil), dry)
		t.Logf("note: commit 5e6f7081's namespace routing commit ffffffff's preview host: err = %v", err)
		// Many rules: CEL cost limits fail closed (or admit); never open.
		many := probeIngress(own, nil, networkingv1.PathTypePrefix)
		for i := 0; i < 3000; i++ {
			many.Spec.Rules = append(many.Spec.Rules, many.Spec.Rules[0])
		}
		many.Spec.Rules = append(many.Spec.Rules, probeIngress("other.example.com", nil, networkingv1.PathTypePrefix).Spec.Rules...)
		_, err = c202.NetworkingV1().Ingresses(ns).Create(ctx, many, dry)
		refused("3001 own rules and one for other.example.com", err)
		if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Logf("  (%v)", err)
		}
	})
}
