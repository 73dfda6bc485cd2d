package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// startAttempts bounds the retries of a start that lost its free port to
// another process between freePorts and the child's bind.
const startAttempts = 3

// startEtcd runs a single-member etcd with its data under dir/etcd and
// returns its client URL once it answers /health.
func startEtcd(ctx context.Context, dir string) (*process, string, error) {
	bin, err := Binary("etcd")
	if err != nil {
		return nil, "", err
	}
	var lastErr error
	for range startAttempts {
		ports, err := freePorts(2)
		if err != nil {
			return nil, "", err
		}
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		data := filepath.Join(dir, "etcd")
		_ = os.RemoveAll(data)
		p, err := startProcess(dir, "etcd", bin,
			"--name=testenv",
			"--data-dir="+data,
			"--listen-client-urls="+client,
			"--advertise-client-urls="+client,
			"--listen-peer-urls="+peer,
			"--initial-advertise-peer-urls="+peer,
			"--initial-cluster=testenv="+peer,
			// The data is thrown away with the Env: durability only costs time.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		)
		if err != nil {
			return nil, "", err
		}
		err = waitHTTP(ctx, p, http.DefaultClient, client+"/health", http.StatusOK, 30*time.Second)
		if err == nil {
			return p, client, nil
		}
		p.stop(0)
		lastErr = err
	}
	return nil, "", lastErr
}

// apiserverConfig is what startAPIServer needs from the Env.
type apiserverConfig struct {
	dir        string
	etcdURL    string
	pki        *pki
	tokenFile  string
	adminToken string
	// disableAdmission lists admission plugins to turn off.
	disableAdmission []string
	// node adds the Node authorizer and the flags a kubelet needs.
	node bool
	// port, when set, is the port to serve on (a restart keeps its port).
	port int
	// advertise, when set (a real node), is the host's address the
	// apiserver also serves on and advertises as the kubernetes Service's
	// endpoint, so pods reach it in-cluster (10.96.0.1 -> advertise:port);
	// guardAPIServer keeps other hosts out.
	advertise string
}

// guardComment marks the firewall rules that keep other hosts off the
// apiserver of a real node; a run killed before its tear-down leaves them,
// and the next one removes every rule so marked.
const guardComment = "shipper-testenv-apiserver"

// guardAPIServer keeps the apiserver, which serves on every address of the
// host (IPv4 and IPv6) so that pods reach it in-cluster, to this host and
// its pods: a connection to port from anywhere else is dropped. Installed
// before the apiserver starts; Env.Stop removes it (removeGuards) once
// the apiserver has stopped.
func guardAPIServer(port int) error {
	removeGuards()
	_, ipv6 := os.Stat("/proc/net/if_inet6")
	for _, ipt := range []string{"iptables", "ip6tables"} {
		err := sh(ipt, "-I", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(port), "!", "-i", bridgeName,
			"-m", "addrtype", "!", "--src-type", "LOCAL", "-m", "comment", "--comment", guardComment, "-j", "DROP")
		if err != nil && (ipt == "iptables" || ipv6 == nil) {
			removeGuards()
			return fmt.Errorf("guarding the apiserver's port: %w", err)
		}
	}
	return nil
}

// removeGuards deletes every rule guardAPIServer added, this run's or a
// killed one's.
func removeGuards() {
	for _, ipt := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(ipt, "-S", "INPUT").Output()
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(out), "\n") {
			if rule, ok := strings.CutPrefix(l, "-A "); ok && strings.Contains(l, guardComment) {
				_ = exec.Command("sh", "-c", ipt+" -D "+rule).Run()
			}
		}
	}
}

// startAPIServer runs kube-apiserver with token authentication, RBAC, the
// Env's serving certificate and ServiceAccount keys, and returns it with
// the admin rest.Config once /readyz answers ok.
func startAPIServer(ctx context.Context, c apiserverConfig) (*process, *rest.Config, error) {
	bin, err := Binary("kube-apiserver")
	if err != nil {
		return nil, nil, err
	}
	var lastErr error
	for range startAttempts {
		ports, err := freePorts(1)
		if err != nil {
			return nil, nil, err
		}
		if c.port != 0 {
			ports[0] = c.port
		}
		bind, advertise := "127.0.0.1", "127.0.0.1"
		if c.advertise != "" {
			bind, advertise = "0.0.0.0", c.advertise
			if err := guardAPIServer(ports[0]); err != nil {
				return nil, nil, err
			}
		}
		args := []string{
			"--bind-address=" + bind,
			"--advertise-address=" + advertise,
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--etcd-servers=" + c.etcdURL,
			"--tls-cert-file=" + c.pki.ServerCert,
			"--tls-private-key-file=" + c.pki.ServerKey,
			"--token-auth-file=" + c.tokenFile,
			"--authorization-mode=" + map[bool]string{false: "RBAC", true: "Node,RBAC"}[c.node],
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + c.pki.SAPub,
			"--service-account-signing-key-file=" + c.pki.SAKey,
			"--service-cluster-ip-range=10.96.0.0/16",
			"--allow-privileged=true",
			"--profiling=false",
			"--cert-dir=" + filepath.Join(c.dir, "apiserver-certs"),
		}
		if c.node {
			args = append(args, "--kubelet-preferred-address-types=InternalIP", "--enable-admission-plugins=NodeRestriction")
		}
		if c.advertise != "" {
			// Served beyond loopback: every request needs a token.
			args = append(args, "--anonymous-auth=false")
		}
		if len(c.disableAdmission) > 0 {
			args = append(args, "--disable-admission-plugins="+strings.Join(c.disableAdmission, ","))
		}
		p, err := startProcess(c.dir, "kube-apiserver", bin, args...)
		if err != nil {
			return nil, nil, err
		}
		cfg := &rest.Config{
			Host:            fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
			BearerToken:     c.adminToken,
			TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.CACert},
			QPS:             -1, // no client-side throttling against a private apiserver
		}
		err = waitReady(ctx, p, cfg)
		if err == nil {
			return p, cfg, nil
		}
		p.stop(0)
		lastErr = err
	}
	return nil, nil, lastErr
}

// waitReady polls /readyz with the admin identity, which also proves the
// CA, the serving certificate and the admin token fit together.
func waitReady(ctx context.Context, p *process, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, p.exitError()
		}
		var body []byte
		body, last = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return last == nil && string(body) == "ok", nil
	})
	if err != nil && !p.exited() && last != nil {
		return fmt.Errorf("kube-apiserver not ready: %w (last: %v); last log lines:\n%s", err, last, tail(p.log, 15))
	}
	return err
}

// waitHTTP polls url until it answers with status, or p exits.
func waitHTTP(ctx context.Context, p *process, client *http.Client, url string, status int, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, p.exitError()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			return false, nil
		}
		resp.Body.Close()
		last = fmt.Errorf("%s answered %s", url, resp.Status)
		return resp.StatusCode == status, nil
	})
	if err != nil && !p.exited() {
		return fmt.Errorf("%s not ready: %w (last: %v); last log lines:\n%s", p.name, err, last, tail(p.log, 15))
	}
	return err
}
