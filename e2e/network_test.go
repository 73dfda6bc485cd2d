//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// network proves the NetworkPolicy shipper puts in each namespace on a
// node that enforces NetworkPolicies (kube-router's firewall,
// internal/testenv/node_firewall.go), with two projects' own accounts:
// a pod of project B cannot connect to project A's preview, neither
// through its Service nor to its pod, while a pod of the router's
// namespace (labelled shipper.dev/router=true, the default of the setting
// router-namespaces) and a pod of A's own namespace can. Every request is
// a new connection. Traefik runs on the host, whose traffic the enforcer
// admits as every CNI's does (the node's own): that A's preview still
// answers through it shows the router is not cut off, and the pods show
// what the policy admits.
func network(t *testing.T, base *cluster) {
	ctx := context.Background()
	cs, err := base.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	a, b := projectCluster(t, base, "2001", "net-a"), projectCluster(t, base, "2002", "net-b")
	shaA, shaB := "a0a0a0a0b1b1b1b1c2c2c2c2d3d3d3d3e4e4e4e4", "b0b0b0b0c1c1c1c1d2d2d2d2e3e3e3e3f4f4f4f4"
	a.run(t, shaA, "package")
	hostA := strings.TrimPrefix(a.run(t, shaA, "deploy"), "http://")
	a.eventually(t, hostA, "/version", 200, shaA[:8])
	a.curl(t, hostA, "/version")
	b.run(t, shaB, "package")
	b.run(t, shaB, "deploy")
	nsA, nsB := a.app+"-"+shaA[:8], b.app+"-"+shaB[:8]
	a.requireIsolated(t, nsA)

	// The probe's image, packaged by shipper as any app is.
	probeDir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(probeDir, "probe"), "./probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./probe: %v\n%s", err, out)
	}
	p := *b
	p.hello = probeDir
	p.extra = append(append([]string{}, b.extra...), "SHIPPER_ENTRYPOINT=/app/probe",
		"CI_REGISTRY_IMAGE="+base.env.Registry.Repository("demo/net-probe"))
	image := p.run(t, shaB, "package")

	svc, err := cs.CoreV1().Services(nsA).Get(ctx, nsA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods(nsA).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("project A's running pods: %v (%d)", err, len(pods.Items))
	}
	targets := []string{svc.Spec.ClusterIP + ":80", pods.Items[0].Status.PodIP + ":8080"}

	router := "net-router"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: router, Labels: map[string]string{release.LabelRouter: "true"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := createPullSecret(ctx, cs, base.env.Registry, router, release.PullSecretName); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		who, ns string
		admit   bool
	}{
		{"a pod of the router's namespace", router, true},
		{"a pod of project B", nsB, false},
		{"a pod of project A's own namespace", nsA, true},
	} {
		lines := probe(t, cs, tc.ns, image, targets)
		say(t, "\n$ kubectl run -n %s probe -- %s   # %s, a new connection a second\n%s", tc.ns, strings.Join(targets, " "), tc.who, strings.Join(lines, "\n"))
		for _, target := range targets {
			var got []string
			for _, l := range lines {
				if rest, ok := strings.CutPrefix(l, target+" "); ok {
					got = append(got, rest)
				}
			}
			switch {
			case len(got) == 0:
				t.Errorf("%s: no request to %s ran", tc.who, target)
			case tc.admit && got[len(got)-1] != "200":
				// The enforcer adds a new pod to the sets it admits within
				// moments: the last answers count.
				t.Errorf("%s connects to project A at %s: got %v, want 200 in the end", tc.who, target, got)
			case !tc.admit && strings.Contains(strings.Join(got, "|"), "200"):
				t.Errorf("%s connects to project A at %s: got %v, want every connection refused", tc.who, target, got)
			}
		}
	}
}

// projectCluster is base acting as GitLab project id with its own
// ServiceAccount, shipper-system/project-<id>, bound as README.md tells an
// admin to.
func projectCluster(t *testing.T, base *cluster, id, app string) *cluster {
	t.Helper()
	ctx := context.Background()
	cs, err := base.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	name := "project-" + id
	if _, err := cs.CoreV1().ServiceAccounts("shipper-system").Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "shipper"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "shipper-system"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := base.env.Token(ctx, "shipper-system", name)
	if err != nil {
		t.Fatal(err)
	}
	c := *base
	c.app, c.token = app, token
	c.kubeconfig = filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := testenv.WriteKubeconfig(c.kubeconfig, token, name); err != nil {
		t.Fatal(err)
	}
	c.extra = []string{"CI_PROJECT_ID=" + id, "CI_PROJECT_PATH=group-" + id + "/" + app}
	return &c
}

// createPullSecret lets namespace ns's pods pull from the harness's
// registry.
func createPullSecret(ctx context.Context, cs kubernetes.Interface, reg *testenv.Registry, ns, name string) error {
	auth := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
	dockercfg, err := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": auth}}})
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockercfg},
	}, metav1.CreateOptions{})
	return err
}

// probe runs the probe in namespace ns against targets and returns its
// output lines. The pod is what Pod Security "restricted" admits; its
// resources are the namespace's LimitRange defaults.
func probe(t *testing.T, cs kubernetes.Interface, ns, image string, targets []string) []string {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:    corev1.RestartPolicyNever,
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: release.PullSecretName}},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "probe", Image: image, Args: append([]string{"-rounds", "8"}, targets...),
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the probe pod in %s: %v", ns, err)
	}
	var phase corev1.PodPhase
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = got.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	logs, lerr := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || lerr != nil || phase != corev1.PodSucceeded {
		t.Fatalf("the probe in %s: %v, phase %s, logs %v:\n%s", ns, err, phase, lerr, logs)
	}
	grace := int64(0)
	_ = cs.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	return strings.Split(strings.TrimSpace(string(logs)), "\n")
}
