package release_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// The apiserver-only harness runs no controllers and no kubelet. These
// helpers write what they would: Deployment status as the deployment
// controller does, Pod status as the kubelet does.

// outcome is how the simulated cluster answers a rollout.
type outcome int

const (
	rolloutReady outcome = iota
	rolloutImagePullBackOff
	rolloutCrashLoop
	rolloutUnschedulable
	rolloutPullUnauthorized
)

// simulate acts as controller manager and kubelet for release in ns until
// the test ends or stop is called.
func simulate(t *testing.T, cs kubernetes.Interface, ns, rel string, out outcome) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		podMade := false
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, rel, metav1.GetOptions{})
			if err != nil {
				continue
			}
			switch out {
			case rolloutReady:
				if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < ptr.Deref(d.Spec.Replicas, 1) {
					markAvailable(ctx, t, cs, d)
				}
			default:
				if d.Status.ObservedGeneration < d.Generation {
					markProgressing(ctx, cs, d)
				}
				if !podMade {
					podMade = makeFailingPod(ctx, t, cs, d, out)
				}
			}
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func markAvailable(ctx context.Context, t *testing.T, cs kubernetes.Interface, d *appsv1.Deployment) {
	if err := testenv.MarkAvailable(ctx, cs, d); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
		t.Errorf("simulating the deployment controller: %v", err)
	}
}

func markProgressing(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) {
	r := ptr.Deref(d.Spec.Replicas, 1)
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, UnavailableReplicas: r,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"},
		},
	}
	_, _ = cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
}

// makeFailingPod creates the Deployment's pod and gives it the status the
// kubelet reports for out.
func makeFailingPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, d *appsv1.Deployment, out outcome) bool {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   d.Name + "-7d4b9c8f6-x2x9q",
			Labels: d.Spec.Template.Labels,
		},
		Spec: d.Spec.Template.Spec,
	}
	pod, err := cs.CoreV1().Pods(d.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("creating the pod as the ReplicaSet controller would: %v", err)
		}
		return false
	}
	st := corev1.ContainerStatus{Name: "app", Image: d.Spec.Template.Spec.Containers[0].Image}
	switch out {
	case rolloutImagePullBackOff:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "` + st.Image +
			`": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "` + st.Image + `": not found`}
	case rolloutPullUnauthorized:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: `failed to pull and unpack image "` + st.Image +
			`": failed to resolve reference: pulling from host failed with status code: 401 Unauthorized`}
	case rolloutCrashLoop:
		st.RestartCount = 3
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container=app"}
		st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}
	}
	pod.Status = corev1.PodStatus{
		Phase:             corev1.PodPending,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{st},
	}
	if out == rolloutUnschedulable { // the scheduler's verdict; no kubelet ever sees the pod
		pod.Status = corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient cpu."}},
		}
	}
	if _, err := cs.CoreV1().Pods(d.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		t.Errorf("writing pod status as the kubelet would: %v", err)
	}
	return true
}

// uniqueApp returns an app name no other test uses: preview namespaces are
// named after app and commit, not after the test.
func uniqueApp(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newConfig returns a Configuration on the admin identity whose log lines
// the test can read.
func newConfig(t *testing.T, env *testenv.Env) (*release.Configuration, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg, err := release.NewConfiguration(env.AdminConfig(), release.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, logs
}

// logBuffer is a goroutine-safe log sink.
type logBuffer = testenv.LockedBuffer

// cleanupApp removes every namespace of app when the test ends.
func cleanupApp(t *testing.T, cs kubernetes.Interface, app string) {
	t.Cleanup(func() {
		ctx := context.Background()
		nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: release.LabelApp + "=" + app})
		if err != nil {
			t.Errorf("listing namespaces of %s: %v", app, err)
			return
		}
		for _, ns := range nss.Items {
			_ = cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	})
}

// restGetterFor gives Helm's own action configuration the Env's kubeconfig,
// as the helm CLI would get it: tests read release records through it.
func restGetterFor(env *testenv.Env) genericclioptions.RESTClientGetter {
	kc := env.Kubeconfig
	return &genericclioptions.ConfigFlags{KubeConfig: &kc}
}
