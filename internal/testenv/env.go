package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Env is a running control plane and registry. Its fields are read-only.
type Env struct {
	// Dir holds every file of the Env: keys, logs, etcd data, kubeconfig.
	// Stop removes it.
	Dir string
	// Kubeconfig is a kubeconfig file for the admin identity.
	Kubeconfig string
	// CAFile is the PEM CA that signed the apiserver's serving certificate.
	CAFile string
	// Registry is the registry, nil when Options.NoRegistry was set.
	Registry *Registry

	// Node is the real node, nil unless Options.Node was set.
	Node *Node

	admin           *rest.Config
	procs           []*process // in start order; stopped in reverse
	apiserver       int        // index of kube-apiserver in procs
	apiserverConfig apiserverConfig
	reaper          *os.File // closing it makes the reaper clean up Dir
	componentTokens map[string]string
	gatewayAPI      struct {
		sync.Mutex
		installed bool // the CRDs are served (InstallGatewayAPI)
	}
}

// Options changes what Start runs. The zero value runs everything.
type Options struct {
	// NoRegistry skips the registry for tests that need only the apiserver.
	NoRegistry bool
	// Node runs a real node on top: containerd, kubelet, kube-proxy, the
	// controller manager and scheduler, and Traefik as ingress controller
	// and Gateway API implementation (see node.go). It needs root and
	// changes host networking until Stop.
	Node bool
}

// AdminUser is the name the admin token authenticates as; it is in the
// system:masters group.
const AdminUser = "shipper-admin"

// Start runs etcd, kube-apiserver and (unless opts.NoRegistry) a registry,
// each on a free 127.0.0.1 port, and returns once all of them serve. On
// error everything already started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	dir, reaper, err := newDir(dirPrefix)
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, reaper: reaper}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()

	pki, err := newPKI(dir)
	if err != nil {
		return nil, fmt.Errorf("generating keys: %w", err)
	}
	e.CAFile = pki.CAFile
	adminToken := randomToken()
	tokenFile := filepath.Join(dir, "tokens.csv")
	// token,user,uid,"group1,group2"
	lines := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", adminToken, AdminUser, AdminUser)
	if opts.Node {
		e.componentTokens = map[string]string{}
		for user, group := range nodeIdentities {
			tok := randomToken()
			e.componentTokens[user] = tok
			lines += fmt.Sprintf("%s,%s,%s,\"%s\"\n", tok, user, user, group)
		}
	}
	if err := os.WriteFile(tokenFile, []byte(lines), 0o600); err != nil {
		return nil, err
	}

	etcd, etcdURL, err := startEtcd(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	e.procs = append(e.procs, etcd)

	// Without a node or a controller manager nothing creates the "default"
	// ServiceAccount of a namespace, and the ServiceAccount admission plugin
	// would refuse every Pod the tests write as a kubelet would see it.
	acfg := apiserverConfig{
		dir: dir, etcdURL: etcdURL, pki: pki, tokenFile: tokenFile, adminToken: adminToken,
		disableAdmission: []string{"ServiceAccount"},
	}
	if opts.Node {
		acfg.disableAdmission, acfg.node = nil, true
		if acfg.advertise, err = primaryIP(); err != nil {
			return nil, err
		}
	}
	apiserver, admin, err := startAPIServer(ctx, acfg)
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver: %w", err)
	}
	e.apiserver, e.apiserverConfig = len(e.procs), acfg
	e.procs = append(e.procs, apiserver)
	e.admin = admin

	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(e.Kubeconfig, admin, AdminUser); err != nil {
		return nil, err
	}

	if !opts.NoRegistry {
		reg, err := startRegistry(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("starting registry: %w", err)
		}
		e.procs = append(e.procs, reg.proc)
		e.Registry = reg
	}
	if opts.Node {
		if e.Node, err = startNode(ctx, e, pki); err != nil {
			return nil, fmt.Errorf("starting the node: %w", err)
		}
	}
	return e, nil
}

// Stop kills every process of the Env, newest first, and removes Env.Dir.
// It is safe to call more than once.
func (e *Env) Stop() {
	if e.Node != nil {
		e.Node.stop()
		e.Node = nil
	}
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop(250 * time.Millisecond)
	}
	if e.procs != nil && e.apiserverConfig.advertise != "" {
		removeGuards() // once the apiserver is gone
	}
	e.procs = nil
	if e.Dir != "" {
		_ = os.RemoveAll(e.Dir)
	}
	if e.reaper != nil {
		e.reaper.Close()
		e.reaper = nil
	}
}

// PIDs returns the process IDs of the Env's processes, for tests that check
// that Stop leaves nothing running.
func (e *Env) PIDs() []int {
	pids := make([]int, 0, len(e.procs))
	for _, p := range e.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// AdminConfig returns a rest.Config for the admin (system:masters) identity.
// It verifies the apiserver's certificate against the Env's CA.
func (e *Env) AdminConfig() *rest.Config { return rest.CopyConfig(e.admin) }

// AdminClient returns a clientset for the admin identity.
func (e *Env) AdminClient() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(e.admin)
}

// WriteKubeconfig writes cfg as a kubeconfig with one context named user.
// Only bearer-token configs are supported: it is what the Env hands out.
func WriteKubeconfig(path string, cfg *rest.Config, user string) error {
	if cfg.BearerToken == "" {
		return errors.New("writing kubeconfig: only bearer-token configs are supported")
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testenv"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts[user] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: user}
	kc.CurrentContext = user
	return clientcmd.WriteToFile(*kc, path)
}

// RestartAPIServer kills kube-apiserver, keeps it down for down, and
// starts it again on the same port with the same etcd, as a crash or an
// upgrade of the apiserver looks to a client. It returns once /readyz
// answers again.
func (e *Env) RestartAPIServer(ctx context.Context, down time.Duration) error {
	u, err := url.Parse(e.admin.Host)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return err
	}
	e.procs[e.apiserver].stop(0)
	time.Sleep(down)
	cfg := e.apiserverConfig
	cfg.port = port
	p, _, err := startAPIServer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	e.procs[e.apiserver] = p
	return nil
}
