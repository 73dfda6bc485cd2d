package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// The node's fixed facts. The pod and service ranges never leave this
// machine: the service range is routed to cni0 and forwarded pod traffic
// may only go back to cni0 (see setupNetwork).
const (
	NodeName     = "shipper-node"
	podCIDR      = "10.244.0.0/24"
	clusterCIDR  = "10.244.0.0/16"
	serviceCIDR  = "10.96.0.0/16"
	bridgeName   = "cni0"
	bridgeAddr   = "10.244.0.1/24"
	cniConfPath  = "/etc/cni/net.d/10-shipper.conflist"
	certsDDir    = "/etc/containerd/certs.d"
	pauseImage   = "shipper.local/pause:1"
	IngressClass = "traefik"
)

// nodeIdentities are the users the node's components authenticate as
// (token file user -> group). The Node authorizer only accepts a kubelet
// named system:node:<name> in system:nodes; kube-proxy's bootstrap role
// is bound to system:kube-proxy. The controller manager, scheduler and
// Traefik use the admin token.
var nodeIdentities = map[string]string{
	"system:node:" + NodeName: "system:nodes",
	"system:kube-proxy":       "system:authenticated",
}

// Node is a real single-node cluster's node side: containerd, kubelet,
// kube-proxy, controller manager, scheduler, Traefik and a NetworkPolicy
// enforcer (kube-router's firewall, node_firewall.go) on the host.
type Node struct {
	// IngressAddr is Traefik's HTTP entrypoint for Ingresses,
	// "127.0.0.1:<port>".
	IngressAddr string
	// GatewayAddr is the entrypoint of the Gateway's plain HTTP listener
	// (GatewayHTTPListener), "127.0.0.1:<port>". Ingresses are not served
	// there, nor HTTPRoutes on IngressAddr.
	GatewayAddr string
	// GatewayTLSAddr is the entrypoint of the Gateway's HTTPS listener
	// (GatewayHTTPSListener), "127.0.0.1:<port>"; GatewayClient talks to it.
	GatewayTLSAddr string
	// Gateway is "<namespace>/<name>" of the Gateway Traefik runs,
	// "shipper-gateway/shared": the parentRef of HTTPRoutes.
	Gateway string
	// GatewayCA is the PEM CA that signed the HTTPS listener's certificate
	// (the Env's CA, CAFile).
	GatewayCA []byte
	// IP is the node's address (the host's primary IPv4).
	IP string

	dir      string
	admin    *rest.Config
	procs    []*process
	undo     []func() // host changes to revert, newest last
	oldFwd   string
	kubelet  string // root dir
	ctrdSock string
}

// startNode brings the node up on e's control plane and returns once
// Traefik serves and the node is Ready.
func startNode(ctx context.Context, e *Env, p *pki) (_ *Node, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a real node needs root (containerd, kubelet, iptables)")
	}
	n := &Node{dir: filepath.Join(e.Dir, "node")}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return nil, err
	}
	if n.IP, err = primaryIP(); err != nil {
		return nil, err
	}
	if err := n.setupNetwork(); err != nil {
		return nil, fmt.Errorf("host network: %w", err)
	}
	if err := n.startContainerd(ctx, e.Registry); err != nil {
		return nil, err
	}
	if err := n.importPause(ctx); err != nil {
		return nil, err
	}
	admin := e.AdminConfig()
	n.admin = admin
	if err := n.startControllers(e, p, admin); err != nil {
		return nil, err
	}
	if err := n.startKubelet(e, p); err != nil {
		return nil, err
	}
	if err := n.startKubeProxy(e); err != nil {
		return nil, err
	}
	if err := n.startTraefik(ctx, e, p, admin); err != nil {
		return nil, err
	}
	if err := n.waitReady(ctx, e); err != nil {
		return nil, err
	}
	// kube-router reads its Node object at start: after the kubelet made it.
	if err := n.startFirewall(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// sh runs a host command and returns its error with its output.
func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func primaryIP() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || ifc.Name == bridgeName || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address for the kubelet (it refuses loopback)")
}

// setupNetwork enables forwarding, creates the bridge before any pod, and
// keeps every private address on this machine.
func (n *Node) setupNetwork() error {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return err
	}
	n.oldFwd = strings.TrimSpace(string(b))
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return err
	}
	n.undo = append(n.undo, func() { _ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(n.oldFwd), 0o644) })
	_ = sh("modprobe", "br_netfilter")
	_ = os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1"), 0o644)

	// Leftovers of a run that was killed before its tear-down: the bridge,
	// and the KUBE-* and CNI-* chains. The harness owns them on this host,
	// which is why it must only run on a machine that is no other cluster's node.
	n.killShims()
	_ = sh("ip", "link", "del", bridgeName)
	n.cleanIptables()
	destroyIPSets()
	steps := [][]string{
		{"ip", "link", "add", bridgeName, "type", "bridge"},
		{"ip", "addr", "add", bridgeAddr, "dev", bridgeName},
		{"ip", "link", "set", bridgeName, "up"},
		{"ip", "route", "replace", serviceCIDR, "dev", bridgeName},
	}
	for _, s := range steps {
		if err := sh(s[0], s[1:]...); err != nil {
			return err
		}
	}
	n.undo = append(n.undo, func() { _ = sh("ip", "link", "del", bridgeName) })
	n.undo = append(n.undo, func() { _ = sh("ip", "route", "del", serviceCIDR, "dev", bridgeName) })
	drop := []string{"FORWARD", "-s", clusterCIDR, "!", "-o", bridgeName, "-j", "DROP"}
	_ = sh("iptables", append([]string{"-D"}, drop...)...)
	if err := sh("iptables", append([]string{"-I"}, drop...)...); err != nil {
		return err
	}
	n.undo = append(n.undo, func() { _ = sh("iptables", append([]string{"-D"}, drop...)...) })

	conf := `{"cniVersion":"0.4.0","name":"shipper","plugins":[
 {"type":"bridge","bridge":"` + bridgeName + `","isGateway":true,"ipMasq":true,"hairpinMode":true,
  "ipam":{"type":"host-local","ranges":[[{"subnet":"` + podCIDR + `"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"` + filepath.Join(n.dir, "cni-ipam") + `"}},
 {"type":"portmap","capabilities":{"portMappings":true}},
 {"type":"loopback"}]}`
	if err := os.MkdirAll(filepath.Dir(cniConfPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(cniConfPath, []byte(conf), 0o644); err != nil {
		return err
	}
	n.undo = append(n.undo, func() { _ = os.Remove(cniConfPath) })
	return nil
}

func (n *Node) startContainerd(ctx context.Context, reg *Registry) error {
	d := filepath.Join(n.dir, "containerd")
	n.ctrdSock = filepath.Join(d, "containerd.sock")
	hosts := filepath.Join(certsDDir, reg.Host)
	if err := os.MkdirAll(hosts, 0o755); err != nil {
		return err
	}
	toml := fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", reg.Host, reg.Host)
	if err := os.WriteFile(filepath.Join(hosts, "hosts.toml"), []byte(toml), 0o644); err != nil {
		return err
	}
	n.undo = append(n.undo, func() { _ = os.RemoveAll(hosts) })
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, filepath.Join(d, "root"), filepath.Join(d, "state"), n.ctrdSock, pauseImage, filepath.Dir(cniConfPath), certsDDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(d, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	p, err := startProcess(n.dir, "containerd", "containerd", "--config", cfgPath)
	if err != nil {
		return err
	}
	n.procs = append(n.procs, p)
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		if p.exited() {
			return false, p.exitError()
		}
		_, err := os.Stat(n.ctrdSock)
		return err == nil, nil
	})
}

// componentConfig is a rest.Config for a node component's token.
func componentConfig(admin *rest.Config, token string) *rest.Config {
	c := rest.AnonymousClientConfig(admin)
	c.BearerToken = token
	return c
}

func (n *Node) kubeconfig(name string, cfg *rest.Config) (string, error) {
	path := filepath.Join(n.dir, name+".kubeconfig")
	return path, WriteKubeconfig(path, cfg, name)
}

func (n *Node) start(name string, args ...string) error {
	bin, err := Binary(name)
	if err != nil {
		return err
	}
	p, err := startProcess(n.dir, name, bin, args...)
	if err != nil {
		return err
	}
	n.procs = append(n.procs, p)
	return nil
}

func (n *Node) startControllers(e *Env, p *pki, admin *rest.Config) error {
	kc, err := n.kubeconfig("admin", admin)
	if err != nil {
		return err
	}
	if err := n.start("kube-controller-manager", "--kubeconfig="+kc, "--leader-elect=false",
		"--service-account-private-key-file="+p.SAKey, "--root-ca-file="+p.CAFile,
		"--cluster-cidr="+clusterCIDR, "--allocate-node-cidrs=false", "--secure-port=0", "--controllers=*",
		"--use-service-account-credentials=false"); err != nil {
		return err
	}
	return n.start("kube-scheduler", "--kubeconfig="+kc, "--leader-elect=false", "--secure-port=0")
}

func (n *Node) startKubelet(e *Env, p *pki) error {
	kc, err := n.kubeconfig("kubelet", componentConfig(e.admin, e.componentTokens["system:node:"+NodeName]))
	if err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	n.kubelet = filepath.Join(n.dir, "kubelet")
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
podCIDR: %s
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
clusterDomain: cluster.local
`, n.ctrdSock, podCIDR, n.IP, ports[0], ports[1])
	cfgPath := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	return n.start("kubelet", "--config="+cfgPath, "--kubeconfig="+kc, "--node-ip="+n.IP,
		"--hostname-override="+NodeName, "--root-dir="+n.kubelet, "--cert-dir="+filepath.Join(n.dir, "kubelet-pki"))
}

func (n *Node) startKubeProxy(e *Env) error {
	kc, err := n.kubeconfig("kube-proxy", componentConfig(e.admin, e.componentTokens["system:kube-proxy"]))
	if err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	return n.start("kube-proxy", "--kubeconfig="+kc, "--proxy-mode=iptables", "--conntrack-max-per-core=0",
		"--oom-score-adj=0", "--hostname-override="+NodeName, "--cluster-cidr="+clusterCIDR,
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(ports[0]), "--healthz-bind-address=127.0.0.1:"+strconv.Itoa(ports[1]))
}

// waitReady waits for the node to be Ready and the default namespace's
// ServiceAccount, which pods need, to exist.
func (n *Node) waitReady(ctx context.Context, e *Env) error {
	cs, err := e.AdminClient()
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range n.procs {
			if p.exited() {
				return false, p.exitError()
			}
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
				last = c.Reason + ": " + c.Message
			}
		}
		if !ready {
			return false, nil
		}
		_, err = cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			last = "default ServiceAccount: " + err.Error()
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("node not ready: %w (last: %s)", err, last)
	}
	return nil
}
