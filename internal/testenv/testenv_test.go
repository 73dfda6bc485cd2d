package testenv_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestVersionsMatchToolsModules keeps the versions the harness looks for in
// step with the modules hack/tools.sh builds.
func TestVersionsMatchToolsModules(t *testing.T) {
	for dir, want := range map[string]string{"traefik": testenv.TraefikVersion, "kube-router": testenv.KubeRouterVersion} {
		if b, err := os.ReadFile("../../tools/" + dir + "/version"); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("tools/%s/version = %q (%v), testenv looks for %s", dir, b, err, want)
		}
	}
	for _, tc := range []struct{ gomod, module, want string }{
		{"../../tools/kubernetes/go.mod", "k8s.io/kubernetes", testenv.KubernetesVersion},
		{"../../tools/etcd/go.mod", "go.etcd.io/etcd/server/v3", testenv.EtcdVersion},
		{"../../tools/helm/go.mod", "helm.sh/helm/v3", testenv.HelmVersion},
		{"../../go.mod", "helm.sh/helm/v3", testenv.HelmVersion},
		{"../../tools/crane/go.mod", "github.com/google/go-containerregistry", testenv.CraneVersion},
		{"../../go.mod", "github.com/google/go-containerregistry", testenv.CraneVersion},
		{"../../go.mod", "sigs.k8s.io/gateway-api", testenv.GatewayAPIVersion},
	} {
		b, err := os.ReadFile(tc.gomod)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(tc.module) + `\s+(v\S+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s does not require %s", tc.gomod, tc.module)
		}
		if got := string(m[1]); got != tc.want {
			t.Errorf("%s requires %s %s, testenv looks for %s", tc.gomod, tc.module, got, tc.want)
		}
	}
}

func TestAdminCreatesReadsDeletes(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cms := cs.CoreV1().ConfigMaps(ns)
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "greeting"},
		Data:       map[string]string{"hello": "world"},
	}
	if _, err := cms.Create(ctx, want, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := cms.Get(ctx, "greeting", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["hello"] != "world" {
		t.Errorf("read back data %v, want hello=world", got.Data)
	}
	if err := cms.Delete(ctx, "greeting", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cms.Get(ctx, "greeting", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: err = %v, want NotFound", err)
	}
}

// TestRBACIsEnforced shows a least-privileged identity can do what its Role
// grants and nothing more, and that unknown tokens are not authenticated.
func TestRBACIsEnforced(t *testing.T) {
	env := testenv.Get(t)
	ns, other := env.Namespace(t), env.Namespace(t)
	ctx := context.Background()
	cfg, err := env.NewIdentity(ctx, testenv.Identity{
		Namespace: ns, Name: "reader",
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)

	if _, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing configmaps in its own namespace: %v, want allowed", err)
	}
	refused := []struct {
		name string
		call func() error
	}{
		{"create configmap", func() error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"list secrets", func() error { _, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); return err }},
		{"list configmaps of another namespace", func() error {
			_, err := cs.CoreV1().ConfigMaps(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create namespace", func() error {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-allowed"}}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !apierrors.IsForbidden(err) {
				t.Errorf("err = %v, want Forbidden", err)
			}
		})
	}

	t.Run("unknown token", func(t *testing.T) {
		bad := rest.CopyConfig(cfg)
		bad.BearerToken = "not-a-token"
		_, err := kubernetes.NewForConfigOrDie(bad).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("err = %v, want Unauthorized", err)
		}
	})
}

// TestTLSIsVerified shows clients verify the apiserver against the Env's CA:
// the same request without that CA fails on the certificate.
func TestTLSIsVerified(t *testing.T) {
	env := testenv.Get(t)
	cfg := env.AdminConfig()
	if cfg.Insecure || len(cfg.CAData) == 0 {
		t.Fatalf("admin config: Insecure=%v, %d bytes of CA data; want verification against the Env CA", cfg.Insecure, len(cfg.CAData))
	}
	cfg.CAData = nil
	_, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion()
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the Env CA: err = %v, want a certificate verification error", err)
	}

	// The kubeconfig the Env writes is usable as it is, by client-go's loader.
	kc, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	v, err := kubernetes.NewForConfigOrDie(kc).Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version through the kubeconfig: %v", err)
	}
	if v.GitVersion != testenv.KubernetesVersion {
		t.Errorf("server version %s, want %s", v.GitVersion, testenv.KubernetesVersion)
	}
}

// TestNamespaceIsDeletedAfterTest shows Env.Namespace cleans up after itself.
func TestNamespaceIsDeletedAfterTest(t *testing.T) {
	env := testenv.Get(t)
	var ns string
	t.Run("inner", func(t *testing.T) { ns = env.Namespace(t) })
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Fatal(err)
	case got.DeletionTimestamp == nil:
		t.Errorf("namespace %s still live after its test ended", ns)
	}
}

func TestRegistryRoundTripWithAuth(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ref, err := name.ParseReference(reg.Repository("testenv/roundtrip:v1"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	good := remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})
	if err := remote.Write(ref, img, good); err != nil {
		t.Fatalf("push with the right password: %v", err)
	}
	got, err := remote.Image(ref, good)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	wantDigest, _ := img.Digest()
	gotDigest, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gotDigest != wantDigest {
		t.Errorf("pulled digest %s, pushed %s", gotDigest, wantDigest)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("pulled %d layers, want 2", len(layers))
	}
	// Reading a layer proves the blob itself came back, not only the manifest.
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatalf("fetching a layer blob: %v", err)
	}
	rc.Close()

	wrongRef, _ := name.ParseReference(reg.Repository("testenv/roundtrip:wrong"))
	for _, tc := range []struct {
		name string
		opt  remote.Option
	}{
		{"wrong password", remote.WithAuth(&authn.Basic{Username: reg.Username, Password: "wrong"})},
		{"anonymous", remote.WithAuth(authn.Anonymous)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := remote.Write(wrongRef, img, tc.opt)
			var terr *transport.Error
			if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
				t.Errorf("push: err = %v, want 401 Unauthorized", err)
			}
			if _, err := remote.Image(ref, tc.opt); !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
				t.Errorf("pull: err = %v, want 401 Unauthorized", err)
			}
		})
	}
	// Nothing reached the tag the refused pushes aimed at.
	_, err = remote.Head(wrongRef, good)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("head of the refused tag: err = %v, want 404", err)
	}
}

// TestStopLeavesNothingRunning starts a second Env, stops it, and checks its
// processes are gone and its directory removed.
func TestStopLeavesNothingRunning(t *testing.T) {
	testenv.Get(t) // skip under -short like every integration test
	env, err := testenv.Start(context.Background(), testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pids, dir := env.PIDs(), env.Dir
	if len(pids) != 3 {
		t.Errorf("Env runs %d processes, want 3 (etcd, kube-apiserver, registry)", len(pids))
	}
	start := time.Now()
	env.Stop()
	t.Logf("Stop took %v", time.Since(start))
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop (stat: %v)", dir, err)
	}
	env.Stop() // a second Stop is harmless
}

// TestPanickingTestLeavesNothing runs a child test binary that starts an Env
// and panics, then checks the Env's processes and directory are gone.
func TestPanickingTestLeavesNothing(t *testing.T) {
	if os.Getenv("TESTENV_PANIC_CHILD") == "1" {
		env, err := testenv.Start(context.Background(), testenv.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range env.PIDs() {
			os.Stdout.WriteString("pid " + strconv.Itoa(pid) + "\n")
		}
		os.Stdout.WriteString("dir " + env.Dir + "\n")
		panic("a test panics with a running Env")
	}
	testenv.Get(t) // skip under -short like every integration test

	cmd := exec.Command(os.Args[0], "-test.run=^TestPanickingTestLeavesNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TESTENV_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a test panics with a running Env") {
		t.Fatalf("child did not panic as planned: err=%v\n%s", err, out)
	}
	var pids []int
	var dir string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "pid "); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
		if v, ok := strings.CutPrefix(line, "dir "); ok {
			dir = v
		}
	}
	if len(pids) != 3 || dir == "" {
		t.Fatalf("child reported pids %v and dir %q, want 3 pids and a dir:\n%s", pids, dir, out)
	}
	// The reaper works asynchronously after the child's death: allow it a bound.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				left = append(left, "process "+strconv.Itoa(pid))
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			left = append(left, dir)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the child panicked, still there: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
