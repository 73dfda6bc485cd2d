package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// The Gateway of the real node, shared by every test: Traefik programs it
// through its Gateway API provider. Routes of any namespace may attach.
const (
	// GatewayClass is the GatewayClass Traefik controls.
	GatewayClass = "traefik"
	// GatewayNamespace and GatewayName name the shared Gateway
	// (Node.Gateway is "<namespace>/<name>").
	GatewayNamespace = "shipper-gateway"
	GatewayName      = "shared"
	// GatewayHTTPListener and GatewayHTTPSListener are the Gateway's
	// listeners, for an HTTPRoute parentRef's sectionName. The HTTPS one
	// terminates TLS with a certificate for GatewayDomain and its
	// subdomains.
	GatewayHTTPListener  = "http"
	GatewayHTTPSListener = "https"
	// GatewayDomain is the domain the HTTPS listener holds a certificate
	// for, "*.example.com" and "example.com": preview hosts go below it.
	GatewayDomain = "example.com"

	gatewayController = "traefik.io/gateway-controller"
	gatewaySecret     = "shared-tls"
)

// startTraefik runs one Traefik with both Kubernetes providers: Ingress
// on IngressAddr, and the Gateway API on GatewayAddr and GatewayTLSAddr,
// whose Gateway it creates first.
func (n *Node) startTraefik(ctx context.Context, e *Env, p *pki, admin *rest.Config) error {
	cs, err := e.AdminClient()
	if err != nil {
		return err
	}
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: IngressClass, Annotations: map[string]string{"ingressclass.kubernetes.io/is-default-class": "true"}},
		Spec:       networkingv1.IngressClassSpec{Controller: "traefik.io/ingress-controller"},
	}
	if _, err := cs.NetworkingV1().IngressClasses().Create(ctx, ic, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Ports are picked free, then bound by Traefik: another process may
	// take one in between (tests run beside each other). Traefik then
	// exits at once; pick again.
	for attempt := 1; ; attempt++ {
		err := n.startTraefikOn(ctx, e, p, admin)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
}

// startTraefikOn starts Traefik on three free ports.
func (n *Node) startTraefikOn(ctx context.Context, e *Env, p *pki, admin *rest.Config) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	n.IngressAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	n.GatewayAddr = "127.0.0.1:" + strconv.Itoa(ports[1])
	n.GatewayTLSAddr = "127.0.0.1:" + strconv.Itoa(ports[2])
	if err := n.createGateway(ctx, e, p, ports[1], ports[2]); err != nil {
		return fmt.Errorf("creating the Gateway: %w", err)
	}
	args := []string{
		"--entryPoints.web.address=" + n.IngressAddr,
		// Routers that name no entryPoint, every Ingress's, go to the
		// default ones only; the Gateway's routers name theirs.
		"--entryPoints.web.asDefault=true",
		// The HTTPS entryPoint needs no TLS option: Traefik terminates TLS
		// on any entryPoint whose routers (an HTTPS listener's) ask for it.
		"--entryPoints.gateway-http.address=" + n.GatewayAddr,
		"--entryPoints.gateway-https.address=" + n.GatewayTLSAddr,
		"--providers.kubernetesgateway.statusAddress.ip=127.0.0.1",
		"--log.level=INFO",
	}
	for _, provider := range []string{"kubernetesingress", "kubernetesgateway"} {
		args = append(args, "--providers."+provider+"=true",
			"--providers."+provider+".endpoint="+admin.Host,
			"--providers."+provider+".token="+admin.BearerToken,
			"--providers."+provider+".certAuthFilePath="+e.CAFile)
	}
	if err := n.start("traefik", args...); err != nil {
		return err
	}
	traefik := n.procs[len(n.procs)-1]
	// Traefik answers 404 for hosts it has no route for once it serves.
	if err := waitHTTP(ctx, traefik, http.DefaultClient, "http://"+n.IngressAddr+"/", http.StatusNotFound, 60*time.Second); err != nil {
		return err
	}
	return n.waitGateway(ctx, traefik)
}

// createGateway installs the Gateway API and creates the GatewayClass, the
// Gateway with its TLS Secret, and their namespace. The listeners' ports
// are those of n.GatewayAddr and n.GatewayTLSAddr: Traefik binds a listener
// to the entryPoint whose address ends in the listener's port.
func (n *Node) createGateway(ctx context.Context, e *Env, p *pki, httpPort, httpsPort int) error {
	if err := e.InstallGatewayAPI(ctx); err != nil {
		return err
	}
	cert, key, err := p.issue("shipper-gateway", "*."+GatewayDomain, GatewayDomain)
	if err != nil {
		return fmt.Errorf("issuing the Gateway's certificate: %w", err)
	}
	n.GatewayCA = p.CACert
	n.Gateway = GatewayNamespace + "/" + GatewayName

	cs, err := e.AdminClient()
	if err != nil {
		return err
	}
	gw, err := gatewayclient.NewForConfig(e.admin)
	if err != nil {
		return err
	}
	creates := []struct {
		what   string
		create func() error
	}{
		{"GatewayClass " + GatewayClass, func() error {
			_, err := gw.GatewayV1().GatewayClasses().Create(ctx, &gatewayv1.GatewayClass{
				ObjectMeta: metav1.ObjectMeta{Name: GatewayClass},
				Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayController},
			}, metav1.CreateOptions{})
			return err
		}},
		{"namespace " + GatewayNamespace, func() error {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: GatewayNamespace}}, metav1.CreateOptions{})
			return err
		}},
		{"Secret " + GatewayNamespace + "/" + gatewaySecret, func() error {
			_, err := cs.CoreV1().Secrets(GatewayNamespace).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: gatewaySecret},
				Type:       corev1.SecretTypeTLS,
				Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key},
			}, metav1.CreateOptions{})
			return err
		}},
		{"Gateway " + n.Gateway, func() error {
			want := sharedGateway(httpPort, httpsPort)
			_, err := gw.GatewayV1().Gateways(GatewayNamespace).Create(ctx, want, metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) {
				return err
			}
			// Made by an attempt whose ports were taken: this one's ports.
			return retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := gw.GatewayV1().Gateways(GatewayNamespace).Get(ctx, GatewayName, metav1.GetOptions{})
				if err != nil {
					return err
				}
				cur.Spec = want.Spec
				_, err = gw.GatewayV1().Gateways(GatewayNamespace).Update(ctx, cur, metav1.UpdateOptions{})
				return err
			})
		}},
	}
	for _, c := range creates {
		if err := c.create(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s: %w", c.what, err)
		}
	}
	return nil
}

// sharedGateway is the Gateway: plain HTTP on one port, HTTPS terminated
// with gatewaySecret on the other, routes from every namespace.
func sharedGateway(httpPort, httpsPort int) *gatewayv1.Gateway {
	all := &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}}
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayName, Namespace: GatewayNamespace},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: GatewayClass,
			Listeners: []gatewayv1.Listener{
				{
					Name: GatewayHTTPListener, Protocol: gatewayv1.HTTPProtocolType,
					Port: gatewayv1.PortNumber(httpPort), AllowedRoutes: all,
				},
				{
					Name: GatewayHTTPSListener, Protocol: gatewayv1.HTTPSProtocolType,
					Port: gatewayv1.PortNumber(httpsPort), AllowedRoutes: all,
					TLS: &gatewayv1.ListenerTLSConfig{
						Mode:            ptr.To(gatewayv1.TLSModeTerminate),
						CertificateRefs: []gatewayv1.SecretObjectReference{{Name: gatewaySecret}},
					},
				},
			},
		},
	}
}

// waitGateway waits until Traefik reports the Gateway Programmed for its
// current generation, then until both listeners answer: 404 for a host no
// route claims, over HTTPS with the certificate verified against
// GatewayCA. Programmed comes from Traefik's provider before the new
// configuration is live in its routers; the requests close that gap.
func (n *Node) waitGateway(ctx context.Context, traefik *process) error {
	gw, err := gatewayclient.NewForConfig(n.admin)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if traefik.exited() {
			return false, traefik.exitError()
		}
		g, err := gw.GatewayV1().Gateways(GatewayNamespace).Get(ctx, GatewayName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = gatewayConditions(g)
		c := meta.FindStatusCondition(g.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == g.Generation, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for Gateway %s to be Programmed: %w (last: %s); Traefik's last log lines:\n%s", n.Gateway, err, last, tail(traefik.log, 15))
	}
	if err := waitHTTP(ctx, traefik, http.DefaultClient, "http://"+n.GatewayAddr+"/", http.StatusNotFound, 30*time.Second); err != nil {
		return err
	}
	client, err := n.GatewayClient("probe." + GatewayDomain)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	return waitHTTP(ctx, traefik, client, "https://"+n.GatewayTLSAddr+"/", http.StatusNotFound, 30*time.Second)
}

// GatewayClient returns an HTTP client for GatewayTLSAddr that trusts
// GatewayCA and sends serverName as SNI and expects it in the certificate:
// a request to https://<GatewayTLSAddr>/ with Host serverName is what a
// browser sends to https://<serverName>/.
func (n *Node) GatewayClient(serverName string) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(n.GatewayCA) {
		return nil, errors.New("no certificate in the Gateway's CA")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}

// gatewayConditions sums up a Gateway's status for an error message:
// "Accepted=True/Accepted Programmed=False/Invalid; https: ...".
func gatewayConditions(g *gatewayv1.Gateway) string {
	list := func(cs []metav1.Condition) string {
		var parts []string
		for _, c := range cs {
			s := c.Type + "=" + string(c.Status) + "/" + c.Reason
			if c.Status != metav1.ConditionTrue && c.Message != "" {
				s += " (" + c.Message + ")"
			}
			if c.ObservedGeneration != g.Generation {
				s += fmt.Sprintf(" [generation %d of %d]", c.ObservedGeneration, g.Generation)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " ")
	}
	out := "gateway: " + list(g.Status.Conditions)
	if len(g.Status.Conditions) == 0 {
		out = "gateway: no conditions yet"
	}
	for _, l := range g.Status.Listeners {
		out += "; " + string(l.Name) + ": " + list(l.Conditions)
	}
	return out
}
