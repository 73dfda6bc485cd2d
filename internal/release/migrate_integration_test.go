package release_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/release"
)

// jobOutcome is how the simulated job controller ends a Job.
type jobOutcome int32

const (
	jobSucceeds jobOutcome = iota
	jobFails
	jobHangs // runs until it is deleted (a migration a killed job left)
)

// simulateJobs acts as the job controller and kubelet for the Jobs of
// ns: each new Job gets a pod, then the status *out says. It returns the
// Jobs seen, by name, as created.
func simulateJobs(t *testing.T, cs kubernetes.Interface, ns string, out *atomic.Int32) func() map[string]*batchv1.Job {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[string]*batchv1.Job{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for i := range jobs.Items {
				j := &jobs.Items[i]
				if j.Status.StartTime != nil || j.DeletionTimestamp != nil {
					continue
				}
				mu.Lock()
				seen[j.Name] = j.DeepCopy()
				mu.Unlock()
				endJob(ctx, t, cs, j, jobOutcome(out.Load()))
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return func() map[string]*batchv1.Job {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]*batchv1.Job, len(seen))
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

// endJob makes j's pod and writes the status the job controller does for
// out (Kubernetes 1.34's rules: SuccessCriteriaMet before Complete,
// FailureTarget before Failed).
func endJob(ctx context.Context, t *testing.T, cs kubernetes.Interface, j *batchv1.Job, out jobOutcome) {
	now := metav1.Now()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-" + string(j.UID)[:5],
		Labels: map[string]string{batchv1.JobNameLabel: j.Name, batchv1.ControllerUidLabel: string(j.UID)}},
		Spec: j.Spec.Template.Spec}
	if p, err := cs.CoreV1().Pods(j.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err == nil {
		exit := int32(0)
		if out == jobFails {
			exit = 3
		}
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "migrate", Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Reason: "Error"}}}}
		_, _ = cs.CoreV1().Pods(j.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	}
	j.Status.StartTime = &now
	switch out {
	case jobSucceeds:
		j.Status.Succeeded, j.Status.CompletionTime = 1, &now
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
		}
	case jobFails:
		j.Status.Failed = 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
		}
	case jobHangs:
		j.Status.Active = 1
	}
	if _, err := cs.BatchV1().Jobs(j.Namespace).UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		t.Errorf("simulating the job controller: %v", err)
	}
}

// TestDeployMigratesBeforeItsPodsRollOut: deploy --migrate runs the
// chart's hook Job with the commit's env Secret; a failed migration fails
// the deploy with a MigrationError before the Deployment changes (the
// previous revision serving); a migration left running by a killed deploy
// is stopped by the next one, which then succeeds.
func TestDeployMigratesBeforeItsPodsRollOut(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutReady)
	var out atomic.Int32
	jobs := simulateJobs(t, f.cs, ns, &out)
	ctx := context.Background()
	const apiKey = "s3cret-api-key-4711"
	migrate := func(env string) func(*release.Deploy) {
		return func(d *release.Deploy) {
			d.Migrate = "./migrate up"
			d.Secrets, d.SecretPrefix = map[string]string{"API_KEY": apiKey}, "K8S_SECRET_"
			d.Values = map[string]any{"env": map[string]any{"STAGE": env}}
		}
	}

	if _, err := f.deploy(t, testSHA, migrate("one")); err != nil {
		t.Fatalf("deploy --migrate: %v", err)
	}
	j := jobs()[ns+"-migrate"]
	if j == nil {
		t.Fatalf("no migration Job ran: %v", jobs())
	}
	c := j.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Command, " ") != "/bin/sh -c ./migrate up" || len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != ns+"-env" {
		t.Errorf("the Job runs %q with %+v, want /bin/sh -c and the command, envFrom the commit's Secret", c.Command, c.EnvFrom)
	}

	// A failing migration: the deploy fails, the Deployment keeps
	// revision 1's pods.
	before, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out.Store(int32(jobFails))
	_, err = f.deploy(t, testSHA, migrate("two"))
	var me *release.MigrationError
	if !errors.As(err, &me) || me.Where != "the commit's" || !strings.Contains(me.Reason, "BackoffLimitExceeded") || !strings.Contains(me.Reason, "exit code 3") ||
		!strings.HasPrefix(me.Pod, ns+"-migrate-") {
		t.Fatalf("deploy with a failing migration: %v (%+v), want a MigrationError naming the pod, the reason and the exit code", err, me)
	}
	if strings.Contains(err.Error(), apiKey) {
		t.Errorf("the error holds a secret: %v", err)
	}
	after, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation {
		t.Errorf("the Deployment changed (generation %d -> %d) although the migration failed", before.Generation, after.Generation)
	}
	rel, err := f.helm(t, ns).Releases.Deployed(ns)
	if err != nil || rel.Version != 1 {
		t.Errorf("deployed revision after the failed migration: %v, %v; want revision 1", rel, err)
	}

	// A migration that hangs (a deploy killed meanwhile, here its
	// timeout): the next deploy stops it, then migrates and rolls out.
	out.Store(int32(jobHangs))
	_, err = f.deploy(t, testSHA, migrate("three"), func(d *release.Deploy) { d.Timeout = 4 * time.Second })
	if !errors.As(err, &me) {
		t.Fatalf("deploy with a hanging migration: %v, want a MigrationError", err)
	}
	out.Store(int32(jobSucceeds))
	got, err := f.deploy(t, testSHA, migrate("four"))
	if err != nil {
		t.Fatalf("the deploy after: %v", err)
	}
	if got.Status != helmrelease.StatusDeployed.String() || !strings.Contains(f.logs.String(), "stopping a migration a killed job left") {
		t.Errorf("deploy after a hanging migration: %s; logs:\n%s", got.Status, f.logs.String())
	}
	d, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(envOf(d.Spec.Template.Spec.Containers[0].Env, "STAGE"), "four") {
		t.Errorf("the Deployment does not run the last deploy's values: %v", d.Spec.Template.Spec.Containers[0].Env)
	}
}

// envOf is variable name's value in env.
func envOf(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestPromoteMigratesProductionBeforeTheSwitch: promote --migrate runs a
// Job of the commit's image with production's secret variables, never the
// preview's Secret; a failure switches nothing; success promotes, and
// the Secret the Job read is gone.
func TestPromoteMigratesProductionBeforeTheSwitch(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	f.deployReady(t, testSHA)
	simulate(t, f.cs, ns, ns, rolloutReady)
	var out atomic.Int32
	jobs := simulateJobs(t, f.cs, ns, &out)
	ctx := context.Background()
	const prodURL = "postgres://prod:prod-password-0815@db.internal/prod"
	migrate := func(p *release.Promote) {
		p.Migrate = `["/app/migrate", "up"]`
		p.Secrets, p.SecretPrefix = map[string]string{"DATABASE_URL": prodURL}, "K8S_SECRET_"
		p.DrainDelay = 0
	}

	out.Store(int32(jobFails))
	_, err := f.promote(t, testSHA, migrate)
	var me *release.MigrationError
	if !errors.As(err, &me) || me.Where != "production's" || me.Job != "migrate-production" {
		t.Fatalf("promote with a failing migration: %v, want production's MigrationError", err)
	}
	if strings.Contains(err.Error(), "prod-password-0815") {
		t.Errorf("the error holds production's password: %v", err)
	}
	if got := f.productionIngresses(t); len(got) != 0 {
		t.Errorf("a failed migration switched production: its Ingress is in %v", got)
	}
	if d, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{}); err != nil || d.Generation != 1 {
		t.Errorf("the commit was sized up although the migration failed: generation %d, %v", d.Generation, err)
	}

	out.Store(int32(jobSucceeds))
	if _, err := f.promote(t, testSHA, migrate); err != nil {
		t.Fatalf("promote --migrate: %v", err)
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != ns {
		t.Errorf("production's Ingress is in %v, want %s", got, ns)
	}
	j := jobs()["migrate-production"]
	c := j.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Command, " ") != "/app/migrate up" || len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != ns+"-env-production-migrate" ||
		c.Image != f.image && !strings.HasPrefix(c.Image, strings.Split(f.image, ":")[0]) || j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("production's Job runs %q with %+v (image %s), want the argv and production's Secret", c.Command, c.EnvFrom, c.Image)
	}
	if _, err := f.cs.CoreV1().Secrets(ns).Get(ctx, ns+"-env-production-migrate", metav1.GetOptions{}); err == nil {
		t.Errorf("the Secret of production's migration is left after it")
	}
}
