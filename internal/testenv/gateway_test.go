package testenv_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestInstallGatewayAPI installs the Gateway API from concurrent callers,
// then writes and reads back an HTTPRoute and a ReferenceGrant with the
// typed clients, as tests of the release code do.
func TestInstallGatewayAPI(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = env.InstallGatewayAPI(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("InstallGatewayAPI, caller %d: %v", i, err)
		}
	}
	t.Logf("InstallGatewayAPI took %v", time.Since(start))
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatalf("InstallGatewayAPI again: %v", err)
	}

	ext := apiextensions.NewForConfigOrDie(env.AdminConfig())
	crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "httproutes.gateway.networking.k8s.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := crd.Annotations["gateway.networking.k8s.io/bundle-version"], testenv.GatewayAPIVersion; got != want {
		t.Errorf("HTTPRoute CRD bundle-version %q, want %q", got, want)
	}
	var managers []string
	for _, f := range crd.ManagedFields {
		managers = append(managers, f.Manager+"/"+string(f.Operation))
	}
	if !strings.Contains(strings.Join(managers, " "), "shipper-testenv/Apply") {
		t.Errorf("HTTPRoute CRD managed by %v, want shipper-testenv/Apply among them", managers)
	}

	ns, other := env.Namespace(t), env.Namespace(t)
	gw := gatewayclient.NewForConfigOrDie(env.AdminConfig())
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "preview"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Namespace: ptr.To(gatewayv1.Namespace(testenv.GatewayNamespace)), Name: testenv.GatewayName,
			}}},
			Hostnames: []gatewayv1.Hostname{"app." + testenv.GatewayDomain},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{
				{BackendRef: backendRef(other, "app-a", 90)},
				{BackendRef: backendRef(other, "app-b", 10)},
			}}},
		},
	}
	if _, err := gw.GatewayV1().HTTPRoutes(ns).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating an HTTPRoute: %v", err)
	}
	gotRoute, err := gw.GatewayV1().HTTPRoutes(ns).Get(ctx, "preview", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the HTTPRoute back: %v", err)
	}
	var got []string
	for _, b := range gotRoute.Spec.Rules[0].BackendRefs {
		got = append(got, fmt.Sprintf("%s/%s:%d", *b.Namespace, b.Name, *b.Weight))
	}
	if want := other + "/app-a:90 " + other + "/app-b:10"; strings.Join(got, " ") != want {
		t.Errorf("HTTPRoute backends read back %v, want %s", got, want)
	}
	// The CRD's defaults apply: a rule without matches matches every path.
	if m := gotRoute.Spec.Rules[0].Matches; len(m) != 1 || m[0].Path == nil || *m[0].Path.Value != "/" {
		t.Errorf("HTTPRoute matches %+v, want the CRD's default PathPrefix /", m)
	}

	grant := &gatewayv1beta1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "from-" + ns},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: "HTTPRoute", Namespace: gatewayv1.Namespace(ns)}},
			To:   []gatewayv1beta1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		},
	}
	if _, err := gw.GatewayV1beta1().ReferenceGrants(other).Create(ctx, grant, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a ReferenceGrant: %v", err)
	}
	gotGrant, err := gw.GatewayV1beta1().ReferenceGrants(other).Get(ctx, grant.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the ReferenceGrant back: %v", err)
	}
	if f := gotGrant.Spec.From; len(f) != 1 || string(f[0].Namespace) != ns || f[0].Kind != "HTTPRoute" {
		t.Errorf("ReferenceGrant from %+v, want HTTPRoutes of %s", f, ns)
	}
}

func backendRef(namespace, service string, weight int32) gatewayv1.BackendRef {
	return gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Namespace: ptr.To(gatewayv1.Namespace(namespace)), Name: gatewayv1.ObjectName(service), Port: ptr.To(gatewayv1.PortNumber(80)),
		},
		Weight: ptr.To(weight),
	}
}

// TestGatewayAPIVersionMatchesTraefik keeps the CRDs the harness installs
// at the version the node's Traefik is built against, when Traefik's
// go.mod is in the module cache (it is once hack/tools.sh built Traefik).
func TestGatewayAPIVersionMatchesTraefik(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	gomod := filepath.Join(strings.TrimSpace(string(out)), "cache", "download", "github.com", "traefik", "traefik", "v3", "@v", testenv.TraefikVersion+".mod")
	b, err := os.ReadFile(gomod)
	if os.IsNotExist(err) {
		t.Skipf("Traefik %s's go.mod is not in the module cache (%s): Traefik was not built here", testenv.TraefikVersion, gomod)
	}
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*sigs\.k8s\.io/gateway-api\s+(v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s does not require sigs.k8s.io/gateway-api", gomod)
	}
	if got := string(m[1]); got != testenv.GatewayAPIVersion {
		t.Errorf("Traefik %s is built against Gateway API %s, testenv installs %s", testenv.TraefikVersion, got, testenv.GatewayAPIVersion)
	}
}
