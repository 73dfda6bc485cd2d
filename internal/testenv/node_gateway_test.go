//go:build e2e

package testenv_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestNodeRunsTheGateway starts a real node (root; run with -tags e2e like
// make e2e) and checks Traefik programs the shared Gateway: both listeners
// answer 404 for an unknown host, HTTPS with a certificate GatewayCA
// verifies; an HTTPRoute of another namespace attaches to both listeners,
// and HTTPRoutes and Ingresses each stay on their own entrypoints.
func TestNodeRunsTheGateway(t *testing.T) {
	start := time.Now()
	env, err := testenv.Start(context.Background(), testenv.Options{Node: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	t.Logf("node up in %v", time.Since(start))
	node, ctx := env.Node, context.Background()
	if node.Gateway != testenv.GatewayNamespace+"/"+testenv.GatewayName {
		t.Errorf("Node.Gateway = %q, want %s/%s", node.Gateway, testenv.GatewayNamespace, testenv.GatewayName)
	}

	gw := gatewayclient.NewForConfigOrDie(env.AdminConfig())
	g, err := gw.GatewayV1().Gateways(testenv.GatewayNamespace).Get(ctx, testenv.GatewayName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []gatewayv1.GatewayConditionType{gatewayv1.GatewayConditionAccepted, gatewayv1.GatewayConditionProgrammed} {
		if !meta.IsStatusConditionTrue(g.Status.Conditions, string(want)) {
			t.Errorf("Gateway condition %s is not True: %+v", want, g.Status.Conditions)
		}
	}
	for _, l := range g.Status.Listeners {
		if !meta.IsStatusConditionTrue(l.Conditions, string(gatewayv1.ListenerConditionProgrammed)) {
			t.Errorf("listener %s is not Programmed: %+v", l.Name, l.Conditions)
		}
	}
	t.Logf("Gateway status: addresses %+v, conditions %+v", g.Status.Addresses, g.Status.Conditions)

	client, err := node.GatewayClient("some-host." + testenv.GatewayDomain)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unknown host", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			url    string
			client *http.Client
		}{
			{"http", "http://" + node.GatewayAddr + "/", http.DefaultClient},
			{"https", "https://" + node.GatewayTLSAddr + "/", client},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := tc.client.Get(tc.url)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s: %s, want 404", tc.url, resp.Status)
				}
				if resp.TLS != nil && !slices.Contains(resp.TLS.PeerCertificates[0].DNSNames, "*."+testenv.GatewayDomain) {
					t.Errorf("served certificate for %v, want *.%s", resp.TLS.PeerCertificates[0].DNSNames, testenv.GatewayDomain)
				}
			})
		}
	})

	t.Run("routes", func(t *testing.T) {
		ns := env.Namespace(t)
		routeHost, ingressHost := "route."+testenv.GatewayDomain, "ingress."+testenv.GatewayDomain
		createRoutes(t, env, ns, backend(t, node.IP), routeHost, ingressHost)
		waitRouteAccepted(t, gw, ns)
		for _, tc := range []struct {
			name, url, host string
			want            int
		}{
			{"HTTPRoute on http", "http://" + node.GatewayAddr + "/", routeHost, http.StatusOK},
			{"HTTPRoute on https", "https://" + node.GatewayTLSAddr + "/", routeHost, http.StatusOK},
			{"HTTPRoute not on the Ingress entrypoint", "http://" + node.IngressAddr + "/", routeHost, http.StatusNotFound},
			{"Ingress", "http://" + node.IngressAddr + "/", ingressHost, http.StatusOK},
			{"Ingress not on the Gateway", "http://" + node.GatewayAddr + "/", ingressHost, http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := node.GatewayClient(tc.host)
				if err != nil {
					t.Fatal(err)
				}
				// Traefik applies a configuration shortly after it reports
				// a status: poll, with a bound.
				deadline := time.Now().Add(10 * time.Second)
				for {
					req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
					req.Host = tc.host
					resp, err := c.Do(req)
					got := fmt.Sprint(err)
					if err == nil {
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						// A 200 must come from the test's backend.
						if resp.StatusCode == tc.want && (tc.want != http.StatusOK || string(body) == "backend\n") {
							return
						}
						got = fmt.Sprintf("%s %q", resp.Status, body)
					}
					if time.Now().After(deadline) {
						t.Fatalf("GET %s Host %s: %s, want %d", tc.url, tc.host, got, tc.want)
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
	})
}

// backend serves 200 on ip, the node's address, where Traefik on the host
// reaches it as it would a pod; it returns its port.
func backend(t *testing.T, ip string) int32 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "backend")
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// createRoutes creates, in ns, a Service "web" whose one endpoint is
// ip:port, an HTTPRoute for routeHost on the shared Gateway (both
// listeners) and an Ingress for ingressHost, both to that Service.
func createRoutes(t *testing.T, env *testenv.Env, ns string, port int32, routeHost, ingressHost string) {
	t.Helper()
	ctx := context.Background()
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	// No selector: the test writes the EndpointSlice, with the address of
	// its own server.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(port)}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{env.Node.IP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Namespace: ptr.To(gatewayv1.Namespace(testenv.GatewayNamespace)), Name: testenv.GatewayName,
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(routeHost)},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To(gatewayv1.PortNumber(80))},
			}}}}},
		},
	}
	gw := gatewayclient.NewForConfigOrDie(env.AdminConfig())
	if _, err := gw.GatewayV1().HTTPRoutes(ns).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(testenv.IngressClass),
			Rules: []networkingv1.IngressRule{{Host: ingressHost, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				}},
			}}}},
		},
	}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitRouteAccepted waits until the Gateway reports the HTTPRoute "web" of
// ns Accepted: a route of another namespace attaches (allowedRoutes All).
func waitRouteAccepted(t *testing.T, gw gatewayclient.Interface, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := gw.GatewayV1().HTTPRoutes(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Status.Parents {
			if meta.IsStatusConditionTrue(p.Conditions, string(gatewayv1.RouteConditionAccepted)) {
				t.Logf("HTTPRoute status from %s: %+v", p.ControllerName, p.Conditions)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPRoute %s/web not Accepted: %+v", ns, r.Status.Parents)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
