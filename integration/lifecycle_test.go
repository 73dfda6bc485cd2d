package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// leastPrivilege applies deploy/rbac-shared (deploy/rbac with the shared
// ServiceAccount bound), the access README.md tells users to grant, once
// per test binary; the CLI tests run with a token of its
// ServiceAccount, so the manifests are proven sufficient.
var leastPrivilege struct {
	once sync.Once
	err  error
}

// testSettings are the cluster settings the admin of the tests' cluster
// writes once (deploy/rbac/hosts.yaml): the base domains the tests use, and
// hosts granted to project 4711 (TestAHostBelongsToOneApp).
var testSettings = map[string]string{
	"domains":    "example.com, preview.example.com new.example.com",
	"hosts.4711": "shop.example.org *.previews.example.org",
}

// shipperToken is a token of deploy/rbac-shared's ServiceAccount.
func shipperToken(t *testing.T, env *testenv.Env) *rest.Config {
	t.Helper()
	leastPrivilege.once.Do(func() {
		if leastPrivilege.err = env.Apply(context.Background(), "../deploy/rbac-shared"); leastPrivilege.err == nil {
			leastPrivilege.err = env.ApplySettings(context.Background(), testSettings)
		}
	})
	if leastPrivilege.err != nil {
		t.Fatalf("applying deploy/rbac-shared: %v", leastPrivilege.err)
	}
	cfg, err := env.Token(context.Background(), "shipper-system", "shipper")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// gitlabEnv is what a GitLab job of this project would have, pointing at
// the test control plane and registry with a token of deploy/rbac's
// ServiceAccount: no flags are needed.
func gitlabEnv(t *testing.T, env *testenv.Env, appName, sha string) map[string]string {
	t.Helper()
	ca, err := os.ReadFile(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	admin := shipperToken(t, env)
	reg := env.Registry
	return map[string]string{
		"CI_PROJECT_NAME": appName,
		"CI_PROJECT_ID":   "4242",
		// Protection has tests of its own (protect_test.go); here the
		// other features, without the gate's image and Secret.
		"SHIPPER_PROTECT":          "none",
		"CI_PROJECT_PATH":          "group/" + appName,
		"CI_COMMIT_SHORT_SHA":      sha[:8],
		"CI_COMMIT_SHA":            sha,
		"CI_COMMIT_TIMESTAMP":      "2026-11-25T19:44:38+00:00",
		"CI_PROJECT_URL":           "https://gitlab.example.com/group/" + appName,
		"CI_REGISTRY_IMAGE":        reg.Repository("group/" + appName),
		"CI_REGISTRY_USER":         reg.Username,
		"CI_REGISTRY_PASSWORD":     reg.Password,
		"CI_DEPLOY_USER":           reg.Username,
		"CI_DEPLOY_PASSWORD":       reg.Password,
		"KUBE_URL":                 admin.Host,
		"KUBE_TOKEN":               admin.BearerToken,
		"KUBE_CA_PEM":              string(ca),
		"KUBE_INGRESS_BASE_DOMAIN": "example.com",
		"SHIPPER_CONTEXT":          t.TempDir(),
		"SHIPPER_ENTRYPOINT":       "/app/server", // the app is a binary: nothing to detect
		"SHIPPER_WAIT":             "false",       // no pods run in this harness
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TestLifecycleWithGitLabVariables runs every command of the pipeline as
// the binary, configured only by GitLab-style environment variables.
func TestLifecycleWithGitLabVariables(t *testing.T) {
	env := testenv.Get(t)
	appName := uniqueName("cli")
	shaA := "aaaaaaaa11111111111111111111111111111111"
	shaB := "bbbbbbbb22222222222222222222222222222222"
	envA, envB := gitlabEnv(t, env, appName, shaA), gitlabEnv(t, env, appName, shaB)
	var outputs []result
	step := func(e map[string]string, wantCode int, args ...string) result {
		t.Helper()
		r := runBinary(t, e, args...)
		outputs = append(outputs, r)
		if r.code != wantCode {
			t.Fatalf("shipper %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, wantCode, r.stdout, r.stderr)
		}
		return r
	}

	for _, e := range []map[string]string{envA, envB} {
		step(e, 0, "package")
	}
	dotenv := filepath.Join(t.TempDir(), "deploy.env")
	r := step(with(envA, "SHIPPER_DOTENV", dotenv), 0, "deploy")
	urlA := "https://" + appName + "-aaaaaaaa.example.com"
	if r.stdout != urlA+"\n" {
		t.Errorf("deploy stdout %q, want %q", r.stdout, urlA+"\n")
	}
	if b, _ := os.ReadFile(dotenv); string(b) != "SHIPPER_URL="+urlA+"\n" {
		t.Errorf("dotenv %q", b)
	}
	if !strings.Contains(r.stderr, "resolved image") || !strings.Contains(r.stderr, "@sha256:") {
		t.Errorf("deploy did not report the resolved digest:\n%s", r.stderr)
	}
	step(envB, 0, "deploy")
	// Another project with the same app name is refused, naming the owner.
	r = step(with(envB, "CI_PROJECT_ID", "9999", "CI_PROJECT_PATH", "intruder/"+appName), 2, "deploy")
	if !strings.Contains(r.stderr, "belongs to project group/"+appName+" (id 4242)") || !strings.Contains(r.stderr, "--app") {
		t.Errorf("deploy by another project: stderr %q", r.stderr)
	}

	r = step(envA, 0, "promote")
	if r.stdout != "https://"+appName+".example.com\n" {
		t.Errorf("promote stdout %q", r.stdout)
	}
	step(envB, 0, "promote")
	r = step(envA, 0, "rollback")
	if r.stdout != "aaaaaaaa\n" {
		t.Errorf("rollback stdout %q, want aaaaaaaa", r.stdout)
	}
	r = step(envA, 0, "status")
	if !strings.Contains(r.stdout, "live:     aaaaaaaa") || !strings.Contains(r.stdout, "revision: 3") {
		t.Errorf("status:\n%s", r.stdout)
	}
	r = step(envA, 0, "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SHA") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		live := slices.Contains(f, "*")
		if live != strings.HasPrefix(l, "aaaaaaaa") || f[1] != "deployed" {
			t.Errorf("list row %q: want aaaaaaaa live, both deployed", l)
		}
	}
	// --all-apps with the least-privilege token, which cannot list
	// Secrets cluster-wide: the records namespace by namespace.
	r = step(envA, 0, "list", "--all-apps")
	var ours []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.HasPrefix(l, appName+" ") {
			ours = append(ours, l)
		}
	}
	if !strings.HasPrefix(r.stdout, "APP ") || len(ours) != 2 {
		t.Fatalf("list --all-apps: want an APP column and %s's two commits:\n%s", appName, r.stdout)
	}
	for _, l := range ours {
		f := strings.Fields(l)
		if live := slices.Contains(f, "*"); live != (f[1] == "aaaaaaaa") || f[2] != "deployed" {
			t.Errorf("list --all-apps row %q: want aaaaaaaa live, both deployed", l)
		}
	}
	r = step(envA, 0, "list", "-o", "json")
	if !strings.Contains(r.stdout, `"live": true`) {
		t.Errorf("list -o json:\n%s", r.stdout)
	}

	// An operator at a terminal: an admin kubeconfig and no project. Any
	// app can be read; a change is refused naming the flag that acts for
	// the owning project, and nothing changes.
	operator := with(envA, "KUBE_URL", "", "KUBE_TOKEN", "", "KUBE_CA_PEM", "",
		"KUBECONFIG", env.Kubeconfig, "CI_PROJECT_ID", "", "CI_PROJECT_PATH", "", "SHIPPER_APP", appName)
	r = step(operator, 0, "status")
	if !strings.Contains(r.stdout, "live:     aaaaaaaa") {
		t.Errorf("status by an operator with no project:\n%s", r.stdout)
	}
	r = step(operator, 0, "list")
	if !strings.Contains(r.stdout, "aaaaaaaa") || !strings.Contains(r.stdout, "bbbbbbbb") {
		t.Errorf("list by an operator with no project:\n%s", r.stdout)
	}
	r = step(operator, 0, "status", "--sha", "bbbbbbbb")
	if !strings.Contains(r.stdout, "bbbbbbbb") {
		t.Errorf("status --sha by an operator with no project:\n%s", r.stdout)
	}
	r = step(operator, 2, "promote", "--sha", "bbbbbbbb")
	if !strings.Contains(r.stderr, "belongs to project group/"+appName+" (id 4242)") || !strings.Contains(r.stderr, "--project-id 4242") {
		t.Errorf("promote by an operator with no project: stderr %q, want the owner and --project-id 4242", r.stderr)
	}
	r = step(with(operator, "CI_PROJECT_ID", "4242"), 0, "status")
	if !strings.Contains(r.stdout, "live:     aaaaaaaa") {
		t.Errorf("status after the refused promote: want aaaaaaaa still live:\n%s", r.stdout)
	}

	r = step(envA, 2, "delete")
	if !strings.Contains(r.stderr, "is live in production") || !strings.Contains(r.stderr, "shipper promote") {
		t.Errorf("delete of the live commit: stderr %q", r.stderr)
	}
	// The refusal releases the Lease; client-go's complaint about that
	// ("Error retrieving lease lock ... context canceled") stays in klog.
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || strings.Contains(r.stderr, "leaderelection") {
		t.Errorf("delete of the live commit: want one error line on stderr, got:\n%s", r.stderr)
	}
	step(envB, 0, "delete")
	r = step(envB, 0, "delete")
	if !strings.Contains(r.stderr, "already gone") && !strings.Contains(r.stderr, "deleted") {
		t.Errorf("second delete: stderr %q", r.stderr)
	}

	// render needs no cluster at all.
	noCluster := with(envA, "KUBE_URL", "", "KUBE_TOKEN", "", "KUBE_CA_PEM", "")
	r = step(noCluster, 0, "render")
	if !strings.Contains(r.stdout, "kind: Deployment") || !strings.Contains(r.stdout, appName+"-aaaaaaaa.example.com") {
		t.Errorf("render:\n%s", r.stdout)
	}

	// Bad input: exit 2, nothing changed.
	r = step(with(envA, "CI_COMMIT_SHORT_SHA", "zzzzzzzz", "CI_COMMIT_SHA", ""), 2, "deploy")
	if !strings.Contains(r.stderr, `invalid commit SHA "zzzzzzzz"`) {
		t.Errorf("bad sha: stderr %q", r.stderr)
	}
	// A token the cluster refuses: exit 3.
	r = step(with(envA, "KUBE_TOKEN", "not-a-valid-token-31337"), 3, "status")
	r = step(with(envA, "KUBE_URL", "https://127.0.0.1:1"), 3, "list")

	secrets := []string{envA["KUBE_TOKEN"], envB["KUBE_TOKEN"], env.Registry.Password, "not-a-valid-token-31337"}
	for _, o := range outputs {
		for _, s := range secrets {
			if strings.Contains(o.stdout+o.stderr, s) {
				t.Errorf("a secret reached the output:\nstdout: %s\nstderr: %s", o.stdout, o.stderr)
			}
		}
	}
}

// TestSIGTERMDuringDeployLeavesNoPendingRelease cancels a deploy that
// waits for pods (none ever run here) as GitLab cancels a job.
func TestSIGTERMDuringDeployLeavesNoPendingRelease(t *testing.T) {
	env := testenv.Get(t)
	appName := uniqueName("sigterm")
	sha := "cccccccc33333333333333333333333333333333"
	e := gitlabEnv(t, env, appName, sha)
	if r := runBinary(t, e, "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	cmd := exec.Command(binary(t), "deploy")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range with(e, "SHIPPER_WAIT", "true") {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "waiting") {
		if time.Now().After(deadline) {
			t.Fatalf("deploy never started waiting:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := cmd.Wait()
	if err == nil {
		t.Errorf("deploy cancelled by SIGTERM exited 0:\n%s", stderr.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("deploy took %v to stop after SIGTERM", took)
	}

	cfg, err := release.NewConfiguration(env.AdminConfig(), release.WithProject(release.Project{ID: e["CI_PROJECT_ID"]}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := release.NewNames(appName, sha)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := release.NewStatus(cfg).Commit(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cm.Status, "pending") || cm.Status != "failed" {
		t.Errorf("release after SIGTERM is %q, want failed (never pending)\nstderr:\n%s", cm.Status, stderr.String())
	}
}

// TestLifecycleOnTheGatewayRouter runs the pipeline on the gateway router
// with deploy/rbac's least-privilege token: its role covers HTTPRoutes and
// ReferenceGrants, production is one HTTPRoute switched in place, and bad
// router input is exit 2 before anything changes. (No Gateway controller
// runs on this harness: SHIPPER_WAIT=false skips the wait for the route's
// status, which internal/release and make e2e cover.)
func TestLifecycleOnTheGatewayRouter(t *testing.T) {
	env := testenv.Get(t)
	if err := env.InstallGatewayAPI(context.Background()); err != nil {
		t.Fatal(err)
	}
	gwc, err := gwclient.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gateway-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = gwc.GatewayV1().Gateways("gateway-system").Create(context.Background(), &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "simulated", Listeners: []gwv1.Listener{
			{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 80},
		}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	appName := uniqueName("gw")
	shaA, shaB := "aaaaaaaa11111111111111111111111111111111", "bbbbbbbb22222222222222222222222222222222"
	gw := func(sha string) map[string]string {
		return with(gitlabEnv(t, env, appName, sha), "SHIPPER_ROUTER", "gateway", "SHIPPER_GATEWAY", "gateway-system/shared")
	}
	envA, envB := gw(shaA), gw(shaB)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{with(envA, "SHIPPER_GATEWAY", ""), "--gateway NAMESPACE/NAME"},
		{with(envA, "SHIPPER_GATEWAY", "shared"), "must be NAMESPACE/NAME"},
		{with(envA, "SHIPPER_ROUTER", "nginx"), "must be ingress or gateway"},
		{with(envA, "SHIPPER_ROUTER", "ingress"), "needs --router gateway"},
	} {
		if r := runBinary(t, tc.env, "deploy"); r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("deploy with router %q gateway %q: exit %d, stderr %q; want exit 2, one line naming %q",
				tc.env["SHIPPER_ROUTER"], tc.env["SHIPPER_GATEWAY"], r.code, r.stderr, tc.want)
		}
	}
	if nss := appNamespaces(t, env, appName); len(nss) > 0 {
		t.Fatalf("refused deploys left namespaces %v", nss)
	}
	for _, e := range []map[string]string{envA, envB} {
		for _, verb := range []string{"package", "deploy"} {
			if r := runBinary(t, e, verb); r.code != 0 {
				t.Fatalf("%s %s: exit %d\n%s", verb, e["CI_COMMIT_SHORT_SHA"], r.code, r.stderr)
			}
		}
	}
	for _, step := range []struct {
		env  map[string]string
		args []string
		code int
	}{
		{envA, []string{"promote"}, 0},
		{envB, []string{"promote"}, 0},
		{envB, []string{"delete"}, exitUsage}, // live
		{envB, []string{"rollback"}, 0},
		{envB, []string{"delete"}, 0},
		{envA, []string{"status"}, 0},
	} {
		if r := runBinary(t, step.env, step.args...); r.code != step.code || strings.Contains(r.stdout, "problem:") {
			t.Errorf("shipper %s (%s): exit %d, want %d\n%s%s", step.args[0], step.env["CI_COMMIT_SHORT_SHA"], r.code, step.code, r.stdout, r.stderr)
		}
	}
}

// appNamespaces lists the namespaces shipper labelled for app.
func appNamespaces(t *testing.T, env *testenv.Env, app string) []string {
	t.Helper()
	var out []string
	for _, ns := range namespacesOf(t, env, app) {
		out = append(out, ns.Name)
	}
	return out
}

// namespacesOf lists the namespaces labelled for app.
func namespacesOf(t testing.TB, env *testenv.Env, app string) []corev1.Namespace {
	t.Helper()
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	nss, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: release.LabelApp + "=" + app})
	if err != nil {
		t.Fatal(err)
	}
	return nss.Items
}

// TestSecretVariablesStayOutOfHelm: K8S_SECRET_* variables become the
// commit's Secret, taken by the pods with envFrom; the values are in no
// Helm record, no `helm get values --all`, no output; a changed value alone
// rolls the pods, an unchanged one does not; a bad name is exit 2 naming the
// variable, not its value, with nothing changed.
func TestSecretVariablesStayOutOfHelm(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	appName := uniqueName("secret")
	sha := "5ec5ec5e11111111111111111111111111111111"
	secret := "s3cr3t-" + uniqueName("value")
	e := with(gitlabEnv(t, env, appName, sha), "K8S_SECRET_DB_PASSWORD", secret)
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ns := appName + "-5ec5ec5e"
	noSecret := func(what, s string) {
		t.Helper()
		if strings.Contains(s, secret) {
			t.Errorf("%s holds the secret value", what)
		}
	}

	if r := runBinary(t, with(e, "K8S_SECRET_1BAD", secret), "deploy"); r.code != exitUsage || !strings.Contains(r.stderr, "K8S_SECRET_1BAD") {
		t.Errorf("bad secret variable name: exit %d, stderr %q; want exit 2 naming it", r.code, r.stderr)
	} else {
		noSecret("the refusal", r.stdout+r.stderr)
	}
	if nss := appNamespaces(t, env, appName); len(nss) > 0 {
		t.Fatalf("refused deploy left namespaces %v", nss)
	}

	deploy := func(e map[string]string) string {
		t.Helper()
		for _, verb := range []string{"package", "deploy"} {
			r := runBinary(t, e, verb)
			if r.code != 0 {
				t.Fatalf("%s: exit %d\n%s", verb, r.code, r.stderr)
			}
			noSecret(verb+"'s output", r.stdout+r.stderr)
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != ns+"-env" {
			t.Errorf("container envFrom %+v, want the Secret %s-env", c.EnvFrom, ns)
		}
		for _, v := range c.Env {
			noSecret("env "+v.Name, v.Value)
		}
		return d.Spec.Template.Annotations["shipper.dev/env-secret-version"]
	}
	first := deploy(e)
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, ns+"-env", metav1.GetOptions{})
	if err != nil || string(s.Data["DB_PASSWORD"]) != secret {
		t.Fatalf("secret %s-env: %v (has DB_PASSWORD: %t)", ns, err, err == nil && s.Data["DB_PASSWORD"] != nil)
	}
	if first == "" || first != s.ResourceVersion {
		t.Errorf("pod template annotation %q, want the Secret's resourceVersion %s", first, s.ResourceVersion)
	}
	// Helm's records (base64 of gzip of JSON) and helm get values --all.
	recs, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil || len(recs.Items) == 0 {
		t.Fatalf("release records: %v", err)
	}
	for _, r := range recs.Items {
		raw, err := base64.StdEncoding.DecodeString(string(r.Data["release"]))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "DB_PASSWORD") && !strings.Contains(string(body), "env-secret") {
			t.Logf("record %s read (%d bytes)", r.Name, len(body))
		}
		noSecret("release record "+r.Name, string(body))
	}
	helm, err := testenv.Binary("helm")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(helm, "--kubeconfig", env.Kubeconfig, "get", "values", "--all", "-n", ns, ns).CombinedOutput()
	if err != nil {
		t.Fatalf("helm get values: %v\n%s", err, out)
	}
	noSecret("helm get values --all", string(out))

	if again := deploy(e); again != first {
		t.Errorf("a re-deploy with the same secret changed the pod template (%s -> %s): pods would roll for nothing", first, again)
	}
	if changed := deploy(with(e, "K8S_SECRET_DB_PASSWORD", secret+"-2")); changed == first {
		t.Errorf("a changed secret value left the pod template as it was: pods would keep the old value")
	}
	// No secret variables any more: the Secret and envFrom go.
	plain := with(e, "K8S_SECRET_DB_PASSWORD", "")
	delete(plain, "K8S_SECRET_DB_PASSWORD")
	for _, verb := range []string{"deploy"} {
		if r := runBinary(t, plain, verb); r.code != 0 {
			t.Fatalf("%s without secrets: exit %d\n%s", verb, r.code, r.stderr)
		}
	}
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, ns+"-env", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret left after the variables went: %v", err)
	}
}
