package kube

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestGraceForAnUnauthorizedPull: a pull refused as unauthorized (the
// kubelet's race with the Node authorizer, seen twice in a row on the real
// node) is waited out longer than other non-definitive failures.
func TestGraceForAnUnauthorizedPull(t *testing.T) {
	for msg, want := range map[string]time.Duration{
		`failed to resolve reference "r/x@sha256:ab": pulling from host r failed with status code [manifests sha256:ab]: 401 Unauthorized`: authFailureGrace,
		`failed to pull: unauthorized: authentication required`:                                                                            authFailureGrace,
		`Back-off pulling image "r/x:1"`: failureGrace,
	} {
		if got := graceFor(&RolloutError{Reason: "ErrImagePull", Message: msg}); got != want {
			t.Errorf("graceFor(%q) = %v, want %v", msg, got, want)
		}
	}
}

// TestPodProblem: a pod's status is read as `kubectl describe pod` shows
// it, and what no waiting will heal is told from what may pass.
func TestPodProblem(t *testing.T) {
	waiting := func(reason, msg string, restarts int32, last *corev1.ContainerStateTerminated) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "app", RestartCount: restarts,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
			LastTerminationState: corev1.ContainerState{Terminated: last}}
	}
	crashed := &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}
	for _, tc := range []struct {
		name                   string
		status                 corev1.PodStatus
		wantReason, wantMsg    string
		wantDefinitive, wantUp bool
	}{
		{"healthy", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}, "", "", false, false},
		{"still creating", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating", "", 0, nil)}}, "", "", false, false},
		{"image that does not exist", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ErrImagePull", "manifest unknown", 0, nil)}}, "ErrImagePull", "manifest unknown", true, false},
		{"pull refused, may pass", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ErrImagePull", "401 Unauthorized", 0, nil)}}, "ErrImagePull", "401 Unauthorized", false, false},
		{"init container first", corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{waiting("InvalidImageName", "bad", 0, nil)},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("PodInitializing", "", 0, nil)}}, "InvalidImageName", "bad", true, false},
		{"crashed once", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("CrashLoopBackOff", "back-off", 1, crashed)}}, "CrashLoopBackOff", "back-off (last exit code 2, Error; 1 restarts)", false, true},
		{"crashed again", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("CrashLoopBackOff", "back-off", 2, crashed)}}, "CrashLoopBackOff", "back-off (last exit code 2, Error; 2 restarts)", true, true},
		{"unschedulable", corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/1 nodes: Insufficient cpu"}}}, "Unschedulable", "0/1 nodes: Insufficient cpu", false, false},
		{"not ready", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}, "NotReady", "container app runs but its readiness probe has not passed", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := podProblem(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: tc.status}, "app")
			if tc.wantReason == "" {
				if got != nil {
					t.Fatalf("podProblem = %+v, want none", got)
				}
				return
			}
			if got == nil || got.Pod != "p" || got.Reason != tc.wantReason || got.Message != tc.wantMsg || got.definitive != tc.wantDefinitive || got.started != tc.wantUp {
				t.Errorf("podProblem = %+v, want reason %q, message %q, definitive %t, started %t", got, tc.wantReason, tc.wantMsg, tc.wantDefinitive, tc.wantUp)
			}
		})
	}
}
