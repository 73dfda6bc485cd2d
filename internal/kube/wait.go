package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"
)

// RolloutError says why a Deployment's pods did not become available:
// which pod, the reason (ImagePullBackOff, CrashLoopBackOff, Unschedulable,
// ...), the message Kubernetes gave, and the container's last log lines.
// Its message says what went wrong, not with what: the caller names the
// Deployment (internal/release's RolloutError names the release).
type RolloutError struct {
	Pod     string
	Reason  string
	Message string
	Logs    []string
	// TimedOut is true when the wait ran out of time rather than meeting a
	// failure that will not heal by waiting.
	TimedOut bool
	// NeverStarted is true when the pod's container (Rollout.Container)
	// never ran, so it has no logs (Logs is then empty).
	NeverStarted bool

	// definitive marks a failure that no retry can fix (the image does not
	// exist, the container crashed again and again).
	definitive bool
	// started is true once the pod's container has run at least once:
	// before that it has no logs to show.
	started bool
}

func (e *RolloutError) Error() string {
	s := "not available"
	if e.TimedOut {
		s += " before the timeout"
	}
	if e.Pod != "" {
		s += fmt.Sprintf(": pod %s: %s", e.Pod, e.Reason)
	} else if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// pollInterval paces the rollout wait: often enough to answer within a
// second, seldom enough to cost the apiserver two GETs a round.
var pollInterval = 500 * time.Millisecond

// failureGrace is how long a failing pod may stay failing before the wait
// gives up on it, unless its failure is definitive. The kubelet's first
// pull can fail for a moment after the pod is bound: the Node authorizer
// lets it read the pull secret only once it has seen the pod, so the first
// attempt may go out without credentials and be refused; the retry after
// the back-off succeeds.
var failureGrace = 15 * time.Second

// authFailureGrace is failureGrace for a pull the registry refused as
// unauthorized: the refusal above, seen twice in a row on this machine
// once in a few dozen deploys (the kubelet retries after 10 s, then 20 s),
// so it is waited out through the third attempt. Wrong credentials are
// reported after it.
var authFailureGrace = 45 * time.Second

// graceFor is how long failure d may last before the wait reports it.
func graceFor(d *RolloutError) time.Duration {
	m := strings.ToLower(d.Message)
	if strings.Contains(m, "401 unauthorized") || strings.Contains(m, "unauthorized:") {
		return authFailureGrace
	}
	return failureGrace
}

// fatalReasons are container waiting reasons that waiting will not fix.
var fatalReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// Rollout is what Wait needs to follow a Deployment's rollout and, when it
// fails, to say why.
type Rollout struct {
	// Client reads the Deployment, its pods and their logs.
	Client kubernetes.Interface
	// Log gets a "waiting" line each time the rollout's status changes;
	// nil discards them.
	Log *slog.Logger
	// Selector is the label selector of the Deployment's pods, looked at
	// on every round.
	Selector string
	// Container names the container whose last log lines a failure
	// carries.
	Container string
}

// Wait polls the Deployment ns/name until its rollout is complete, as
// `kubectl rollout status` judges it (kubectl's own StatusViewer), and
// looks at its pods on every round so that a failure that will not heal
// is reported within seconds, not when ctx's deadline passes. A rollout
// that fails, or is not done by ctx's deadline, is a *RolloutError.
//
// Helm's own waiter (Install.Wait) is not used here: in Helm v3 it takes
// no context, reports only "timed out", and keeps running after its caller
// gives up. shipper needs the pod-level reason and a wait that stops the
// moment the job is cancelled.
func (r Rollout) Wait(ctx context.Context, ns, name string) error {
	viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: "apps", Kind: "Deployment"})
	if err != nil {
		return err
	}
	log := cmp.Or(r.Log, slog.New(slog.DiscardHandler))
	var last string
	var diag *RolloutError
	firstSeen := map[string]time.Time{} // pod/reason -> when first seen
	err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		d, err := r.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("reading deployment %s/%s: %w", ns, name, err)
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
		if err != nil {
			return false, err
		}
		msg, done, err := viewer.Status(&unstructured.Unstructured{Object: u}, 0)
		if err != nil {
			return false, &RolloutError{Reason: "ProgressDeadlineExceeded", Message: err.Error()}
		}
		if done {
			return true, nil
		}
		if msg = strings.TrimSpace(msg); msg != last {
			log.Info("waiting", "status", msg)
			last = msg
		}
		diag, err = r.diagnose(ctx, ns, name)
		if err != nil {
			return false, err
		}
		if diag != nil && fatalReasons[diag.Reason] {
			key := diag.Pod + "/" + diag.Reason
			if _, ok := firstSeen[key]; !ok {
				firstSeen[key] = time.Now()
			}
			if diag.definitive || time.Since(firstSeen[key]) >= graceFor(diag) {
				return false, diag
			}
		}
		return false, nil
	})
	var re *RolloutError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		re.Logs = r.lastLogs(context.WithoutCancel(ctx), ns, re)
		return re
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		if diag == nil {
			diag = &RolloutError{Reason: "Progressing", Message: last}
		}
		diag.TimedOut = true
		diag.Logs = r.lastLogs(context.WithoutCancel(ctx), ns, diag)
		return diag
	default:
		return err
	}
}

// diagnose returns the most telling problem among the pods of Deployment
// name, or nil.
func (r Rollout) diagnose(ctx context.Context, ns, name string) (*RolloutError, error) {
	pods, err := r.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.Selector})
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s: %w", name, err)
	}
	// Newest first: the pods of the rollout under way.
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[j].CreationTimestamp.Before(&pods.Items[i].CreationTimestamp)
	})
	var found *RolloutError
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		d := podProblem(p, r.Container)
		if d == nil {
			continue
		}
		if fatalReasons[d.Reason] {
			return d, nil
		}
		if found == nil {
			found = d
		}
	}
	return found, nil
}

// podProblem reads one pod's status the way a person would in
// `kubectl describe pod`.
func podProblem(p *corev1.Pod, container string) *RolloutError {
	d := podStatusProblem(p)
	if d != nil {
		d.started = started(p, container)
	}
	return d
}

// started reports whether the pod's container has run at least once (it
// may have crashed since): only then does it have logs.
func started(p *corev1.Pod, container string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Running != nil || cs.State.Terminated != nil ||
				cs.LastTerminationState.Terminated != nil || cs.RestartCount > 0
		}
	}
	return false
}

func podStatusProblem(p *corev1.Pod) *RolloutError {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			msg := w.Message
			if t := cs.LastTerminationState.Terminated; t != nil {
				msg = strings.TrimSpace(fmt.Sprintf("%s (last exit code %d, %s; %d restarts)", msg, t.ExitCode, t.Reason, cs.RestartCount))
			}
			return &RolloutError{Pod: p.Name, Reason: w.Reason, Message: msg, definitive: definitive(w.Reason, msg, cs.RestartCount)}
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return &RolloutError{Pod: p.Name, Reason: cmp.Or(cond.Reason, "Unschedulable"), Message: cond.Message}
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running != nil && !cs.Ready {
			return &RolloutError{Pod: p.Name, Reason: "NotReady", Message: fmt.Sprintf("container %s runs but its readiness probe has not passed", cs.Name)}
		}
	}
	return nil
}

// lastLogs returns up to 10 last log lines of the failing pod's container,
// or one line saying why there are none.
func (r Rollout) lastLogs(ctx context.Context, ns string, re *RolloutError) []string {
	if re.Pod == "" {
		return nil
	}
	if !re.started {
		// Asking would only get the kubelet's 400 "waiting to start",
		// which reaches the client as "the server rejected our request
		// for an unknown reason".
		re.NeverStarted = true
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := r.Client.CoreV1().Pods(ns).GetLogs(re.Pod, &corev1.PodLogOptions{
		Container: r.Container, TailLines: ptr.To[int64](10), Previous: re.Reason == "CrashLoopBackOff",
	}).DoRaw(ctx)
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		return []string{"(logs unavailable: " + first + ")"}
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return []string{"(no log output)"}
	}
	return strings.Split(s, "\n")
}

// definitive tells a failure no retry will fix from one that may pass.
func definitive(reason, msg string, restarts int32) bool {
	switch reason {
	case "InvalidImageName", "ErrImageNeverPull":
		return true
	case "ErrImagePull", "ImagePullBackOff":
		m := strings.ToLower(msg)
		return strings.Contains(m, "not found") || strings.Contains(m, "manifest unknown")
	case "CrashLoopBackOff":
		return restarts >= 2
	}
	return false
}
