//go:build e2e

// Package e2e runs shipper's whole pipeline on a real single-node cluster
// on this machine (internal/testenv with Options.Node): the built binary
// packages examples/hello, deploys it, promotes, rolls back and deletes,
// and every step is checked with an HTTP request through Traefik, once
// with each router: the Ingress router (Traefik's Ingress provider) and
// the Gateway API router (Traefik's Gateway provider, the node's shared
// Gateway).
// Run with `make e2e` (root; builds the node's components once).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// router is one of shipper's routers as the scenario drives it: the
// variables that choose it, the domain of its hosts and where Traefik
// serves it.
type router struct {
	name   string
	app    string
	domain string
	vars   func(n *testenv.Node) []string
	addr   func(n *testenv.Node) string
}

var routers = []router{
	{
		name: "gateway", app: "hello-gw", domain: testenv.GatewayDomain,
		vars: func(n *testenv.Node) []string {
			// Each operation returns once the host answers from its commit;
			// the hosts' DNS is not in place here: requests go to Traefik.
			return []string{"SHIPPER_ROUTER=gateway", "SHIPPER_GATEWAY=" + n.Gateway,
				"SHIPPER_VERIFY=true", "SHIPPER_VERIFY_ADDRESS=" + n.GatewayAddr}
		},
		addr: func(n *testenv.Node) string { return n.GatewayAddr },
	},
	{
		name: "ingress", app: "hello", domain: "shipper.test",
		vars: func(*testenv.Node) []string { return []string{"SHIPPER_INGRESS_CLASS=" + testenv.IngressClass} },
		addr: func(n *testenv.Node) string { return n.IngressAddr },
	},
}

type cluster struct {
	router router
	env    *testenv.Env
	// kubeconfig holds a token of deploy/rbac's ServiceAccount: the
	// scenario runs with the least-privilege access, as a GitLab job does.
	kubeconfig string
	// token is the same identity as KUBE_URL, KUBE_TOKEN and KUBE_CA_PEM
	// give it in GitLab (docs/getting-started.md).
	token   *rest.Config
	shipper string
	hello   string // context dir holding the hello binary
	app     string
	extra   []string // more variables, as a job of a branch pipeline has
	// bypass, when set, is sent as X-Shipper-Bypass with every request:
	// automation's way past a protected preview's gate.
	bypass string
}

func (c *cluster) vars(sha string) []string {
	reg := c.env.Registry
	v := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"KUBECONFIG=" + c.kubeconfig,
		"CI_PROJECT_NAME=" + c.app, "CI_PROJECT_ID=1001", "CI_PROJECT_PATH=demo/" + c.app,
		"CI_COMMIT_SHORT_SHA=" + sha[:8], "CI_COMMIT_SHA=" + sha,
		"CI_REGISTRY_IMAGE=" + reg.Repository("demo/"+c.app),
		"CI_REGISTRY_USER=" + reg.Username, "CI_REGISTRY_PASSWORD=" + reg.Password,
		"CI_DEPLOY_USER=" + reg.Username, "CI_DEPLOY_PASSWORD=" + reg.Password,
		"KUBE_INGRESS_BASE_DOMAIN=" + c.router.domain,
		"SHIPPER_URL_SCHEME=http",
		"SHIPPER_CONTEXT=" + c.hello, "SHIPPER_ENTRYPOINT=/app/hello", "SHIPPER_PORT=8080",
		"SHIPPER_TIMEOUT=2m",
		// A killed run's locks are taken over after 2 s instead of 15.
		"SHIPPER_LOCK_LEASE=2s",
		// Protection is the protection part's (protect_test.go).
		"SHIPPER_PROTECT=none",
	}
	v = append(v, c.router.vars(c.env.Node)...)
	return append(v, c.extra...)
}

// demo is true under `make demo`: the scenario prints each command and
// its output as a user would see them, and may keep the cluster up.
var demo = os.Getenv("SHIPPER_DEMO") != ""

// say prints a demo line, or logs it in a test.
func say(t *testing.T, format string, args ...any) {
	t.Helper()
	if demo {
		fmt.Printf(format+"\n", args...)
		return
	}
	t.Logf(format, args...)
}

// run runs the binary and returns stdout, failing the test on a non-zero
// exit.
func (c *cluster) run(t *testing.T, sha string, args ...string) string {
	t.Helper()
	out, errOut, code := c.try(sha, args...)
	say(t, "\n$ CI_COMMIT_SHA=%s shipper %s\n%s%s", sha[:8], strings.Join(args, " "), errOut, out)
	if code != 0 {
		t.Fatalf("shipper %s: exit %d", strings.Join(args, " "), code)
	}
	return strings.TrimSpace(out)
}

// curl fetches and prints a URL the way the demo shows it.
func (c *cluster) curl(t *testing.T, host, path string) {
	t.Helper()
	code, body := c.get(host, path)
	say(t, "\n$ curl -H 'Host: %s' http://%s%s\n%d %s", host, c.addr(), path, code, body)
}

func (c *cluster) try(sha string, args ...string) (string, string, int) {
	cmd := exec.Command(c.shipper, args...)
	cmd.Env = c.vars(sha)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return o.String(), e.String(), code
}

// poll requests host's /version every 20 ms until the returned function
// is called, which returns every answer that was not a 200 from one of
// commits (any body when none are given).
func (c *cluster) poll(host string, commits ...string) func() []string {
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		bad  []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			code, body := c.get(host, "/version")
			if code != 200 || len(commits) > 0 && !slices.Contains(commits, body) {
				bad = append(bad, fmt.Sprintf("%d %q", code, body))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() []string {
		stop.Store(true)
		wg.Wait()
		return bad
	}
}

// productionCert is the certificate the Gateway's HTTPS listener presents
// for host, after checking it against the harness's CA and that host
// answers over HTTPS.
func (c *cluster) productionCert(t *testing.T, host string) []byte {
	t.Helper()
	client, err := c.env.Node.GatewayClient(host)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+c.env.Node.GatewayTLSAddr+"/version", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("https://%s/version: %v", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("https://%s/version answered %d", host, resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].Raw
}

// requireIsolated fails the test unless namespace ns holds shipper's
// NetworkPolicy.
func (c *cluster) requireIsolated(t *testing.T, ns string) {
	t.Helper()
	cs, err := c.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), release.IsolationPolicy, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace %s has no NetworkPolicy %s: %v", ns, release.IsolationPolicy, err)
	}
}

// addr is where Traefik serves the scenario's router.
func (c *cluster) addr() string { return c.router.addr(c.env.Node) }

// get fetches path from host through Traefik.
func (c *cluster) get(host, path string) (int, string) {
	code, body, _ := c.getHeader(host, path, "")
	return code, body
}

// getHeader fetches path from host and returns the response header name
// too.
func (c *cluster) getHeader(host, path, name string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.addr()+path, nil)
	req.Host = host
	if c.bypass != "" {
		req.Header.Set("X-Shipper-Bypass", c.bypass)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get(name)
}

// eventually polls until host answers path with want (Traefik reloads a
// moment after a change), within a bound.
func (c *cluster) eventually(t *testing.T, host, path string, wantCode int, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := c.get(host, path)
		if code == wantCode && (want == "" || body == want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("http://%s%s answered %d %q, want %d %q", host, path, code, body, wantCode, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startNode starts the real node, applies deploy/rbac-shared and the
// base domains, writes a kubeconfig of shipper's ServiceAccount and builds
// shipper and examples/hello; it returns the cluster, no router chosen.
// say reports the steps.
func startNode(tb testing.TB, say func(format string, args ...any)) cluster {
	ctx := context.Background()
	start := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{Node: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(env.Stop)
	say("cold start of etcd, apiserver, registry, containerd, kubelet, kube-proxy, controllers and Traefik: %v", time.Since(start))
	work := tb.TempDir()
	c := cluster{env: env, shipper: filepath.Join(work, "shipper"), hello: filepath.Join(work, "hello"),
		kubeconfig: filepath.Join(work, "shipper.kubeconfig")}
	if err := env.Apply(ctx, "../deploy/rbac-shared"); err != nil {
		tb.Fatalf("applying deploy/rbac-shared: %v", err)
	}
	// The cluster's base domains (deploy/rbac/hosts.yaml), as an admin
	// writes them once.
	domains := map[string]string{"domains": routers[0].domain + " " + routers[1].domain}
	if err := env.ApplySettings(ctx, domains); err != nil {
		tb.Fatal(err)
	}
	token, err := env.Token(ctx, "shipper-system", "shipper")
	if err != nil {
		tb.Fatal(err)
	}
	if err := testenv.WriteKubeconfig(c.kubeconfig, token, "shipper"); err != nil {
		tb.Fatal(err)
	}
	c.token = token
	say("kubectl apply -k deploy/rbac-shared: shipper runs as ServiceAccount shipper-system/shipper; base domains %s", domains["domains"])
	for _, args := range [][]string{
		{"-o", c.shipper, "../cmd/shipper"},
		{"-o", filepath.Join(c.hello, "hello"), "../examples/hello"},
	} {
		cmd := exec.Command("go", append([]string{"build", "-trimpath"}, args...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	return c
}

func TestPipelineOnARealNode(t *testing.T) {
	base := startNode(t, func(format string, args ...any) { say(t, format, args...) })
	c := &base
	// SHIPPER_E2E_RUN narrows the run to one part while working on it
	// (gateway, ingress, apps, network, protect, database, in-cluster or gitlab-ci-local); make e2e runs
	// them all.
	only := os.Getenv("SHIPPER_E2E_RUN")
	for _, r := range routers {
		if only != "" && only != r.name {
			continue
		}
		c := base
		c.router, c.app = r, r.app
		t.Run(r.name, func(t *testing.T) {
			say(t, "\n## the %s router: app %s, served on %s", r.name, r.app, c.addr())
			pipeline(t, &c)
		})
	}
	if only == "" || only == "apps" {
		g := base
		g.router = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })]
		t.Run("apps", func(t *testing.T) {
			say(t, "\n## the Node.js, PHP, Python and Ruby sample apps, packaged with zero configuration (ingress router)")
			apps(t, &g)
		})
	}
	if only == "" || only == "network" {
		g := base
		g.router = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })]
		t.Run("network", func(t *testing.T) {
			say(t, "\n## NetworkPolicies enforced (kube-router's firewall): project B's pods cannot reach project A's preview, the router's can (ingress router)")
			network(t, &g)
		})
	}
	if only == "" || only == "protect" {
		g := base
		g.router = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })]
		t.Run("protect", func(t *testing.T) {
			say(t, "\n## a protected preview: shipper-gate in front of the app (ingress router)")
			protect(t, &g)
		})
	}
	if only == "" || only == "database" {
		g := base
		g.router = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })]
		t.Run("database", func(t *testing.T) {
			say(t, "\n## a database per commit: the Node.js app's /visits on PostgreSQL, --migrate, production's own database (ingress router)")
			database(t, &g)
		})
	}
	if only == "" || only == "in-cluster" {
		g := base
		g.router, g.app = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })], "hello-pod"
		t.Run("in-cluster", func(t *testing.T) {
			say(t, "\n## shipper as a pod: its job image, in-cluster configuration (ingress router)")
			inCluster(t, &g)
		})
	}
	if only == "" || only == "gitlab-ci-local" {
		g := base
		g.router = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })]
		t.Run("gitlab-ci-local", func(t *testing.T) {
			say(t, "\n## the example GitLab pipeline, run by gitlab-ci-local (ingress router)")
			gitlabCILocal(t, &g)
		})
	}
	if demo && os.Getenv("SHIPPER_DEMO_KEEP") != "" {
		keep(t, c)
	}
}

// pipeline is the scenario, on c's router.
func pipeline(t *testing.T, c *cluster) {
	domain := c.router.domain
	shaA := "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	shaB := "b2c3d4e5f60718293a4b5c6d7e8f901234567890"
	prodHost := c.app + "." + domain

	c.run(t, shaA, "package")
	deployStart := time.Now()
	urlA := c.run(t, shaA, "deploy")
	if urlA != "http://"+c.app+"-a1b2c3d4."+domain {
		t.Errorf("deploy printed %q", urlA)
	}
	hostA := strings.TrimPrefix(urlA, "http://")
	c.eventually(t, hostA, "/version", 200, "a1b2c3d4")
	// Everything below, the promotes polled every 20 ms included, runs
	// with the NetworkPolicies in place and enforced.
	c.requireIsolated(t, c.app+"-a1b2c3d4")
	say(t, "deploy to serving: %v", time.Since(deployStart))
	c.curl(t, hostA, "/version")
	if code, body := c.get(hostA, "/"); code != 200 || !strings.Contains(body, "_") {
		t.Errorf("/ answered %d %q, want a docker-style name", code, body)
	}

	if got := c.run(t, shaA, "promote"); got != "http://"+prodHost {
		t.Errorf("promote printed %q", got)
	}
	c.eventually(t, prodHost, "/version", 200, "a1b2c3d4")
	c.curl(t, prodHost, "/version")

	c.run(t, shaB, "package")
	hostB := strings.TrimPrefix(c.run(t, shaB, "deploy"), "http://")
	if c.router.name == "gateway" {
		// deploy --verify returned: what a pipeline's next job sees right
		// away is the app, not the Gateway's 503 (its filter sets the
		// commit header on that too).
		code, body, commit := c.getHeader(hostB, "/version", "Shipper-Commit")
		if code != 200 || body != "b2c3d4e5" || commit != shaB {
			t.Errorf("right after deploy --verify the preview answered %d %q (Shipper-Commit %q), want 200 b2c3d4e5", code, body, commit)
		}
	}
	c.eventually(t, hostB, "/version", 200, "b2c3d4e5")

	if c.router.name == "gateway" {
		canary(t, c, prodHost)
	}

	// Promote B while polling production: it must never answer 404.
	stopPolling := c.poll(prodHost)
	gateway := c.router.name == "gateway"
	var certBefore []byte
	if gateway {
		certBefore = c.productionCert(t, prodHost)
	}
	promoteStart := time.Now()
	c.run(t, shaB, "promote")
	promoted := time.Since(promoteStart)
	// What a job that curls production right after promote sees.
	_, first, commit := c.getHeader(prodHost, "/version", "Shipper-Commit")
	serving := time.Now()
	c.eventually(t, prodHost, "/version", 200, "b2c3d4e5")
	say(t, "promote took %v; the first request after it answered %q, the new commit served %v after the job ended",
		promoted.Round(time.Millisecond), first, time.Since(serving).Round(time.Millisecond))
	c.curl(t, prodHost, "/version")
	bad := stopPolling()
	for _, b := range bad {
		if strings.HasPrefix(b, "404") || gateway {
			t.Errorf("production answered %s while switching", b)
		}
	}
	if len(bad) > 0 {
		say(t, "non-200 answers while switching: %v", bad)
	}
	if gateway {
		// The route names the commit that answered; the job returned once
		// the Gateway served the new route; TLS terminates at the Gateway
		// with the one certificate, which the promote did not touch.
		if first != "b2c3d4e5" || commit != shaB {
			t.Errorf("right after promote production answered %q with Shipper-Commit %q, want b2c3d4e5 and %s", first, commit, shaB)
		}
		if certAfter := c.productionCert(t, prodHost); !bytes.Equal(certBefore, certAfter) {
			t.Errorf("production's certificate changed with the promote")
		}
	}

	if got := c.run(t, shaB, "rollback"); got != "a1b2c3d4" {
		t.Errorf("rollback printed %q", got)
	}
	c.eventually(t, prodHost, "/version", 200, "a1b2c3d4")
	c.curl(t, prodHost, "/version")

	// Promotes killed with SIGKILL at random points, then run again, while
	// production is polled every 20 ms: every answer is 200 from one of
	// the two commits, never a 404 or another commit.
	stopPolling = c.poll(prodHost, "a1b2c3d4", "b2c3d4e5")
	for i, sha := range []string{shaB, shaA, shaB} {
		cmd := exec.Command(c.shipper, "promote")
		cmd.Env = c.vars(sha)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		after := time.Duration(30+rand.IntN(221)) * time.Millisecond
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		say(t, "\n$ shipper promote %s   # killed with SIGKILL after %v (%d of 3)", sha[:8], after, i+1)
		c.run(t, sha, "promote")
		c.eventually(t, prodHost, "/version", 200, sha[:8])
	}
	c.run(t, shaA, "rollback", "--to", shaA[:8])
	c.eventually(t, prodHost, "/version", 200, "a1b2c3d4")
	for _, b := range stopPolling() {
		t.Errorf("production answered %s around killed promotes", b)
	}
	if st := c.run(t, shaA, "status"); strings.Contains(st, "problem:") {
		t.Errorf("status after killed promotes reports problems:\n%s", st)
	}

	if gateway {
		sizing(t, c, prodHost)
	}

	c.run(t, shaB, "delete")
	c.eventually(t, hostB, "/version", 404, "")
	c.curl(t, hostB, "/version")
	c.run(t, shaA, "list")

	branch(t, c)

	// A commit whose image does not exist is reported as such within seconds.
	shaC := "c3d4e5f60718293a4b5c6d7e8f90123456789012"
	begin := time.Now()
	_, errOut, code := c.try(shaC, "deploy", "--resolve=false")
	if code == 0 || !(strings.Contains(errOut, "ImagePullBackOff") || strings.Contains(errOut, "ErrImagePull")) {
		t.Errorf("deploy of a missing image: exit %d\n%s", code, errOut)
	}
	if took := time.Since(begin); took > 60*time.Second {
		t.Errorf("missing image reported after %v", took)
	}
	say(t, "\nmissing image reported in %v:\n%s", time.Since(begin), errOut)
}

// branch is a branch's review app: two pushes to feature/x, whose alias
// follows them while it is polled every 20 ms (only 200 from one of the two
// commits; on the ingress router Traefik may answer otherwise than 404 for
// a reload, as for production), a prune that keeps the branch's newest
// commit, and the stop job that takes the commit and its alias.
func branch(t *testing.T, c *cluster) {
	shaD := "d4e5f60718293a4b5c6d7e8f90123456789012ab"
	shaE := "e5f60718293a4b5c6d7e8f90123456789012abcd"
	aliasHost := c.app + "--feature-x." + c.router.domain
	push := func(sha, when string) *cluster {
		b := *c
		b.extra = []string{"CI_COMMIT_REF_SLUG=feature-x", "CI_COMMIT_TIMESTAMP=" + when}
		return &b
	}
	d, e := push(shaD, "2026-12-01T10:00:00Z"), push(shaE, "2026-12-01T11:00:00Z")
	d.run(t, shaD, "package")
	d.run(t, shaD, "deploy")
	c.eventually(t, aliasHost, "/version", 200, "d4e5f607")
	c.curl(t, aliasHost, "/version")

	stopPolling := c.poll(aliasHost, "d4e5f607", "e5f60718")
	e.run(t, shaE, "package")
	e.run(t, shaE, "deploy")
	c.eventually(t, aliasHost, "/version", 200, "e5f60718")
	c.curl(t, aliasHost, "/version")
	// The older push's pipeline re-run: the alias stays on the newer.
	d.run(t, shaD, "deploy")
	if code, body := c.get(aliasHost, "/version"); code != 200 || body != "e5f60718" {
		t.Errorf("after re-deploying the older commit the alias answered %d %q, want e5f60718", code, body)
	}
	bad := stopPolling()
	for _, b := range bad {
		if strings.HasPrefix(b, "404") || c.router.name == "gateway" {
			t.Errorf("the branch alias answered %s while it moved", b)
		}
	}
	if len(bad) > 0 {
		say(t, "non-200 answers while the alias moved: %v", bad)
	}
	out := e.run(t, shaE, "list")
	if !strings.Contains(out, "feature-x") {
		t.Errorf("list does not show the alias:\n%s", out)
	}

	// Retention: the newest commit of each branch; the live one stays.
	e.run(t, shaE, "prune", "--keep", "1", "--dry-run")
	e.run(t, shaE, "prune", "--keep", "1")
	c.eventually(t, c.app+"-d4e5f607."+c.router.domain, "/version", 404, "")
	if code, body := c.get(aliasHost, "/version"); code != 200 || body != "e5f60718" {
		t.Errorf("after prune the alias answered %d %q", code, body)
	}
	// The branch is merged: its stop job.
	e.run(t, shaE, "delete", "--with-alias")
	c.eventually(t, aliasHost, "/version", 404, "")
	c.curl(t, aliasHost, "/version")
}

// keep leaves the cluster up until Ctrl-C, saying how to reach it.
func keep(t *testing.T, c *cluster) {
	helm, _ := testenv.Binary("helm")
	kubectl, _ := testenv.Binary("kubectl")
	say(t, `
The cluster stays up until Ctrl-C. From another terminal:
  export KUBECONFIG=%s
  %s get pods -A
  %s list -A
  curl -H 'Host: %s' http://%s/version     # the ingress router
  curl -H 'Host: %s' http://%s/version     # the gateway router
  bin/shipper list --app %s`, c.env.Kubeconfig, kubectl, helm,
		routers[1].app+"."+routers[1].domain, c.env.Node.IngressAddr,
		routers[0].app+"."+routers[0].domain, c.env.Node.GatewayAddr, routers[1].app)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}

// canary runs the canary flow on the gateway router with A live and B
// deployed: 10 % to B, then 50 %, then an abort (rollback) back to A alone,
// production polled every 20 ms throughout (only 200 from A or B), and the
// share of B counted over 1,000 requests at each step.
func canary(t *testing.T, c *cluster, prodHost string) {
	t.Helper()
	stopPolling := c.poll(prodHost, "a1b2c3d4", "b2c3d4e5")
	const requests = 1000
	share := func() int {
		// The Gateway takes a step a moment after the route's conditions
		// (Traefik applies a provider's change after its throttle, 2 s by
		// default), and no answer tells 10 % from 50 % (Traefik ignores a
		// backend's header filter): count once B answers and the throttle
		// has passed.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, body := c.get(prodHost, "/version"); body == "b2c3d4e5" || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(3 * time.Second)
		b := 0
		for range requests {
			if _, body := c.get(prodHost, "/version"); body == "b2c3d4e5" {
				b++
			}
		}
		return b
	}
	shaB := "b2c3d4e5f60718293a4b5c6d7e8f901234567890"
	for _, step := range []struct{ weight, low, high int }{{10, 50, 150}, {50, 420, 580}} {
		c.run(t, shaB, "promote", "--weight", fmt.Sprint(step.weight))
		got := share()
		say(t, "canary at %d%%: %d of %d requests answered by b2c3d4e5", step.weight, got, requests)
		if got < step.low || got > step.high {
			t.Errorf("canary at %d%%: %d of %d requests went to B, want %d to %d", step.weight, got, requests, step.low, step.high)
		}
		if st := c.run(t, shaB, "status"); !strings.Contains(st, fmt.Sprintf("canary:   b2c3d4e5 (release %s-b2c3d4e5), %d%%", c.app, step.weight)) || strings.Contains(st, "problem:") {
			t.Errorf("status during the canary:\n%s", st)
		}
	}
	if got := c.run(t, shaB, "rollback"); got != "a1b2c3d4" {
		t.Errorf("rollback during the canary printed %q", got)
	}
	c.eventually(t, prodHost, "/version", 200, "a1b2c3d4")
	b := 0
	for range 200 {
		if _, body := c.get(prodHost, "/version"); body == "b2c3d4e5" {
			b++
		}
	}
	if b != 0 {
		t.Errorf("after the abort %d of 200 requests still went to B", b)
	}
	for _, x := range stopPolling() {
		t.Errorf("production answered %s during the canary", x)
	}
}

// sizing is production at production size (gateway router): promotes with
// 2 replicas and a production-only secret variable, polled every 20 ms
// (only 200s from the two commits, through size-up, switch and
// size-down); the live commit's processes have the secret and no other
// preview's do; a size-up whose pods exit (a production-only GOMEMLIMIT the
// Go runtime refuses) leaves production where it was, exit 1 with the
// diagnosis. Production is A, at preview size, when it starts and ends on
// A at production size.
func sizing(t *testing.T, c *cluster, prodHost string) {
	t.Helper()
	shaA := "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	shaB := "b2c3d4e5f60718293a4b5c6d7e8f901234567890"
	cs, err := c.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	deployment := func(sha string) (spec, ready int32) {
		rel := c.app + "-" + sha[:8]
		d, err := cs.AppsV1().Deployments(rel).Get(context.Background(), rel, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ptr.Deref(d.Spec.Replicas, 1), d.Status.ReadyReplicas
	}
	prodEnv := []string{"SHIPPER_DRAIN_DELAY=3s", "K8S_SECRET_PROD_TOKEN=prod-only-e2e-value"}
	saved := c.extra
	c.extra = append(slices.Clone(saved), prodEnv...)
	defer func() { c.extra = saved }()
	stopPolling := c.poll(prodHost, "a1b2c3d4", "b2c3d4e5")

	// promoteSized promotes to at 2 replicas with production's secret, from
	// the live commit from: to 2 of 2 ready with the secret, from back at
	// 1 replica without it once the drain delay has passed.
	promoteSized := func(to, from, what string) {
		t.Helper()
		start := time.Now()
		c.run(t, to, "promote", "--set", "production.replicaCount=2")
		say(t, "promote with %s took %v", what, time.Since(start).Round(time.Millisecond))
		if spec, ready := deployment(to); spec != 2 || ready != 2 {
			t.Errorf("the live commit has %d of %d pods ready, want 2 of 2", ready, spec)
		}
		if spec, _ := deployment(from); spec != 1 {
			t.Errorf("the previous commit runs %d replicas after the drain delay, want its preview's 1", spec)
		}
		c.eventually(t, prodHost, "/version", 200, to[:8])
		c.requireSecretIn(t, to, 2, true)
		c.requireSecretIn(t, from, 1, false)
	}
	promoteSized(shaB, shaA, "size-up (2 ready pods) and switch (the previous commit ran at its preview size: nothing to size down)")
	if st := c.run(t, shaB, "status"); !strings.Contains(st, "sized:    b2c3d4e5 at production size (serves production)") {
		t.Errorf("status does not say the live commit runs at production size:\n%s", st)
	}

	// Back to A the same way: B's pods lose production's secret.
	promoteSized(shaA, shaB, "size-up, switch, 3 s drain and size-down of the previous commit")

	// A size-up that cannot become ready switches nothing.
	begin := time.Now()
	out, errOut, code := c.try(shaB, "promote", "--set", "production.replicaCount=2", "--set", "production.env.GOMEMLIMIT=not-a-size")
	say(t, "\n$ shipper promote --set production.env.GOMEMLIMIT=not-a-size   # exit %d after %v\n%s%s", code, time.Since(begin).Round(time.Millisecond), errOut, out)
	if code != 1 || !strings.Contains(errOut, "nothing was switched") || !strings.Contains(errOut, "GOMEMLIMIT") {
		t.Errorf("a size-up whose pods exit: exit %d, want 1 with the diagnosis (the pod's log names GOMEMLIMIT)\n%s", code, errOut)
	}
	if _, body := c.get(prodHost, "/version"); body != "a1b2c3d4" {
		t.Errorf("production answers %q after a failed size-up, want a1b2c3d4", body)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		spec, ready := deployment(shaB)
		if spec == 1 && ready == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("b after its failed size-up: %d of %d pods ready, want its preview's 1 of 1", ready, spec)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, b := range stopPolling() {
		t.Errorf("production answered %s while sizing", b)
	}
}

// requireSecretIn waits until commit sha's app processes on the node are
// want of them, then checks each has (or has not) the production secret
// in its environment, read from /proc as the kernel gave it to the
// process: what the app sees, not what the manifests say.
func (c *cluster) requireSecretIn(t *testing.T, sha string, want int, has bool) {
	t.Helper()
	pod := "HOSTNAME=" + c.app + "-" + sha[:8] + "-"
	deadline := time.Now().Add(time.Minute)
	for {
		var envs [][]string
		procs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			env := strings.Split(string(b), "\x00")
			if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, pod) }) &&
				slices.Contains(env, "APP_VERSION="+sha[:8]) {
				envs = append(envs, env)
			}
		}
		right := 0
		for _, env := range envs {
			if slices.Contains(env, "PROD_TOKEN=prod-only-e2e-value") == has {
				right++
			}
		}
		if len(envs) == want && right == want {
			say(t, "%d processes of %s on the node, production's secret in their environment: %v", want, sha[:8], has)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("commit %s: %d processes on the node, %d with the production secret %v; want %d", sha[:8], len(envs), right, has, want)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
