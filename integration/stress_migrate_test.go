package integration

// Migrations (--migrate) under kill -9 and races. The harness runs no job
// controller, kubelet or garbage collector: jobSim plays them for the
// app's Jobs, records every run, and reports two runs of one migration at
// once, or two of production's, as problems the invariants show.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// migrate is the --migrate command of the cases: jobSim runs it.
var migrate = []string{"--migrate", "./migrate up"}

// productionDatabase is production's DATABASE_URL in the promote jobs:
// jobSim runs their migration, nothing connects to it.
const productionDatabase = "postgres://production:prod-pw-0815@127.0.0.1:1/production"

// newDatabaseStressApp is a stress app whose commits get databases (a
// template of its own on the test binary's PostgreSQL) and whose
// invariants include the databases'.
func newDatabaseStressApp(t *testing.T, prefix string) (*stressApp, database.Engine) {
	pg := testenv.GetPostgres(t)
	admin := cliDatabase(t, pg, prefix+"_admin", prefix+"-admin-pw", prefix+"_tpl")
	a := newStressApp(t, prefix)
	a.vars = with(a.vars, "SHIPPER_DATABASE_URL", admin, "SHIPPER_DATABASE_TEMPLATE", prefix+"_tpl")
	engine, err := database.Open(database.Config{URL: admin, Template: prefix + "_tpl"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := release.NewConfiguration(a.env.AdminConfig(), release.WithProject(release.Project{ID: a.vars["CI_PROJECT_ID"]}), release.WithDatabase(engine))
	if err != nil {
		t.Fatal(err)
	}
	a.check = release.NewStatus(cfg)
	return a, engine
}

// promoting gives the app's jobs production's DATABASE_URL (a promote
// needs it with the database settings; a deploy refuses it beside them)
// until the function it returns is called.
func (a *stressApp) promoting() func() {
	before := a.vars
	a.vars = with(a.vars, "K8S_SECRET_DATABASE_URL", productionDatabase, "SHIPPER_DRAIN_DELAY", "0s")
	return func() { a.vars = before }
}

// jobSim acts as the job controller, kubelet and garbage collector for
// the app's Jobs: each new Job gets a running pod and completes after
// runFor; the pod of a deleted Job ends a second later, as a pod's
// termination takes a while.
type jobSim struct {
	a      *stressApp
	cs     kubernetes.Interface
	runFor atomic.Int64 // nanoseconds

	mu       sync.Mutex
	started  map[types.UID]time.Time
	pods     map[types.UID]*corev1.Pod
	orphaned map[types.UID]time.Time // a running pod's Job gone since
	runs     map[string]int          // namespace/name: runs started
	// production's migrations in the order they started, each with the
	// commit production served at that moment.
	production []prodRun
	problems   []string
}

type prodRun struct{ sha, live string }

func simulateJobs(t *testing.T, a *stressApp) *jobSim {
	t.Helper()
	cs, err := a.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	s := &jobSim{a: a, cs: cs, started: map[types.UID]time.Time{}, pods: map[types.UID]*corev1.Pod{},
		orphaned: map[types.UID]time.Time{}, runs: map[string]int{}}
	s.runFor.Store(int64(300 * time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			s.pass(ctx)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	a.more = s.invariants
	return s
}

// selector selects the app's Jobs and their pods.
func (s *jobSim) selector() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: release.LabelApp + "=" + s.a.names.AppPart}
}

// pass starts new Jobs, ends those that ran runFor, and ends the pods of
// deleted Jobs. A Job is started before orphaned pods are collected, so a
// run made while an earlier one's pod still runs is seen.
func (s *jobSim) pass(ctx context.Context) {
	jobs, err := s.cs.BatchV1().Jobs("").List(ctx, s.selector())
	if err != nil {
		return
	}
	pods, err := s.cs.CoreV1().Pods("").List(ctx, s.selector())
	if err != nil {
		return
	}
	live := map[types.UID]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range jobs.Items {
		j := &jobs.Items[i]
		live[j.UID] = true
		switch {
		case j.DeletionTimestamp != nil:
		case j.Status.StartTime == nil:
			s.start(ctx, j, pods.Items)
		case finished(j) == "" && s.pods[j.UID] != nil && time.Since(s.started[j.UID]) >= time.Duration(s.runFor.Load()):
			_ = testenv.EndJob(ctx, s.cs, j, s.pods[j.UID], 0) // a conflict: the next pass retries
		}
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		uid := types.UID(p.Labels[batchv1.ControllerUidLabel])
		if live[uid] || !running(p) {
			continue
		}
		if since, ok := s.orphaned[uid]; !ok {
			s.orphaned[uid] = time.Now()
		} else if time.Since(since) > time.Second {
			_ = s.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	}
}

// start runs Job j, after checking that no earlier run of the same
// migration still runs (pods: the app's), nor, for production's, any
// other production migration.
func (s *jobSim) start(ctx context.Context, j *batchv1.Job, pods []corev1.Pod) {
	for _, p := range pods {
		if !running(&p) || p.Labels[batchv1.ControllerUidLabel] == string(j.UID) {
			continue
		}
		switch other := p.Labels[batchv1.JobNameLabel]; {
		case p.Namespace == j.Namespace && other == j.Name:
			s.problems = append(s.problems, fmt.Sprintf("migration job %s/%s started while an earlier run of it (pod %s) still ran", j.Namespace, j.Name, p.Name))
		case j.Name == "migrate-production" && other == j.Name:
			s.problems = append(s.problems, fmt.Sprintf("production's migration from %s started while that from %s still ran", j.Namespace, p.Namespace))
		}
	}
	pod, err := testenv.StartJob(ctx, s.cs, j)
	if err != nil {
		return // the next pass retries
	}
	s.started[j.UID], s.pods[j.UID] = time.Now(), pod
	s.runs[j.Namespace+"/"+j.Name]++
	if j.Name == "migrate-production" {
		live := ""
		if p, err := s.a.check.Production(ctx, s.a.names); err == nil {
			live = p.SHA
		}
		s.production = append(s.production, prodRun{sha: j.Labels[release.LabelSHA], live: live})
	}
}

// finished is the reason of Job j's Complete or Failed condition.
func finished(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return string(c.Type)
		}
	}
	return ""
}

func running(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && (p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending)
}

// runsOf is how many runs of Job name in namespace started.
func (s *jobSim) runsOf(namespace, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[namespace+"/"+name]
}

// invariants are what must hold of migrations once an operation has
// ended: no two runs of one migration overlapped (nor two of
// production's); every migration Job of the app has finished (no hook
// Job still runs after a finished deploy, no migration runs on in a
// deleted commit's namespace); no Secret of production's variables is
// left in a commit's namespace after a finished promote.
func (s *jobSim) invariants() []string {
	s.mu.Lock()
	out := s.problems
	s.problems = nil
	s.mu.Unlock()
	ctx := context.Background()
	jobs, err := s.cs.BatchV1().Jobs("").List(ctx, s.selector())
	if err != nil {
		return append(out, err.Error())
	}
	for _, j := range jobs.Items {
		if finished(&j) == "" && j.DeletionTimestamp == nil {
			out = append(out, fmt.Sprintf("migration job %s/%s still runs after its operation ended", j.Namespace, j.Name))
		}
	}
	secrets, err := s.cs.CoreV1().Secrets("").List(ctx, s.selector())
	if err != nil {
		return append(out, err.Error())
	}
	for _, sec := range secrets.Items {
		if strings.HasSuffix(sec.Name, "-env-production-migrate") {
			out = append(out, fmt.Sprintf("secret %s/%s of production's migration is left after the promote", sec.Namespace, sec.Name))
		}
	}
	return out
}

// jobAt is the moment Job name in namespace is created (watch.Added), or
// has completed (done).
func jobAt(namespace, name string, done bool) fixedPoint {
	what := "added"
	if done {
		what = "complete"
	}
	return fixedPoint{
		name: fmt.Sprintf("Job %s/%s %s", namespace, name, what),
		watch: func(ctx context.Context, c kubernetes.Interface) (watch.Interface, error) {
			// From now: a watch without a resourceVersion begins with an
			// Added event of the Job an earlier run left.
			opts := metav1.ListOptions{FieldSelector: "metadata.name=" + name}
			l, err := c.BatchV1().Jobs(namespace).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			opts.ResourceVersion = l.ResourceVersion
			return c.BatchV1().Jobs(namespace).Watch(ctx, opts)
		},
		hit: func(e watch.Event) bool {
			j, ok := e.Object.(*batchv1.Job)
			if !ok || e.Type == watch.Deleted || j.DeletionTimestamp != nil {
				return false
			}
			return done && finished(j) == string(batchv1.JobComplete) || !done && e.Type == watch.Added
		},
	}
}

// secretAdded is the moment Secret name in namespace is created.
func secretAdded(namespace, name string) fixedPoint {
	return fixedPoint{
		name: fmt.Sprintf("Secret %s/%s added", namespace, name),
		watch: func(ctx context.Context, c kubernetes.Interface) (watch.Interface, error) {
			opts := metav1.ListOptions{FieldSelector: "metadata.name=" + name}
			l, err := c.CoreV1().Secrets(namespace).List(ctx, opts)
			if err != nil {
				return nil, err
			}
			opts.ResourceVersion = l.ResourceVersion
			return c.CoreV1().Secrets(namespace).Watch(ctx, opts)
		},
		hit: func(e watch.Event) bool { return e.Type == watch.Added },
	}
}

// stopsTheLeftJob: the run after a kill during a migration stopped the Job
// the killed one left, and ran its own.
const stopsTheLeftJob = "stopping a migration a killed job left"

// TestStressKill9Migrate kills deploy --migrate and promote --migrate
// with SIGKILL at points spread over their run: before the hook Job,
// while it runs, after it, during the rollout; a promote before its Job,
// while it runs, after it (before the switch), during the switch. The
// next run of the same command succeeds and the invariants hold: a
// migration the killed run left running is stopped before the next one
// starts, a delete stops it before it drops the database, and a promote
// killed after its migration migrates again (the command is idempotent;
// shipper does not record what ran).
func TestStressKill9Migrate(t *testing.T) {
	trials := pointTrials(t)
	a, _ := newDatabaseStressApp(t, "mkill")
	simulateAvailable(t, a)
	sim := simulateJobs(t, a)
	one, two := stressSHA(1), stressSHA(2)
	a.mustRun(one, append([]string{"deploy"}, migrate...)...)
	a.mustRun(two, append([]string{"deploy"}, migrate...)...)
	restore := a.promoting()
	a.mustRun(one, append([]string{"promote"}, migrate...)...)
	restore()
	long := func() func() {
		sim.runFor.Store(int64(6 * time.Second))
		return func() { sim.runFor.Store(int64(300 * time.Millisecond)) }
	}
	next := 3
	for i := range trials {
		x, y := stressSHA(next), stressSHA(next+1)
		next += 2
		nx, ny := a.commit(x), a.commit(y)
		// killAt kills the command at p and runs it again; stops says
		// the next run found the killed one's migration running.
		killAt := func(p fixedPoint, stops bool, sha string, args ...string) {
			t.Helper()
			args = append(args, migrate...)
			a.signalAt(syscall.SIGKILL, p, sha, args...)
			r := a.run(sha, args...)
			if r.code != 0 {
				t.Fatalf("trial %d: shipper %s (%s) after one killed at %s: exit %d\n%s", i, args[0], sha[:8], p.name, r.code, r.stderr)
			}
			if got := strings.Contains(r.stderr, stopsTheLeftJob); got != stops {
				t.Errorf("trial %d: %s after one killed at %s stopped a migration left running: %t, want %t", i, args[0], p.name, got, stops)
			}
			a.invariants(fmt.Sprintf("trial %d, %s --migrate killed at %s", i, args[0], p.name))
		}
		killAt(recordAt(nx.Namespace, nx.Release, "pending-install"), false, x, "deploy")
		killAt(deploymentAdded(ny.Namespace), false, y, "deploy")
		restore := long()
		killAt(jobAt(nx.Namespace, nx.Release+"-migrate", false), true, x, "deploy")
		restore()
		killAt(jobAt(ny.Namespace, ny.Release+"-migrate", true), false, y, "deploy")

		// A deploy killed while its migration runs, then the commit's
		// delete: the migration is stopped, the database dropped.
		restore = long()
		a.signalAt(syscall.SIGKILL, jobAt(nx.Namespace, nx.Release+"-migrate", false), x, append([]string{"deploy"}, migrate...)...)
		r := a.run(x, "delete")
		restore()
		if r.code != 0 || !strings.Contains(r.stderr, stopsTheLeftJob) {
			t.Errorf("trial %d: delete of %s while a killed deploy's migration ran: exit %d, stopped it: %t\n%s", i, x[:8], r.code, strings.Contains(r.stderr, stopsTheLeftJob), r.stderr)
		}
		a.invariants(fmt.Sprintf("trial %d, delete while a killed deploy's migration ran", i))

		restore = a.promoting()
		other := func() (string, release.Names) {
			for _, c := range []string{one, two, y} {
				if live := a.status(t).SHA; c[:8] != live {
					return c, a.commit(c)
				}
			}
			panic("unreachable")
		}
		to, nto := other()
		killAt(secretAdded(nto.Namespace, nto.Release+"-env-production-migrate"), false, to, "promote")
		to, nto = other()
		restoreRun := long()
		killAt(jobAt(nto.Namespace, "migrate-production", false), true, to, "promote")
		restoreRun()
		to, nto = other()
		before := sim.runsOf(nto.Namespace, "migrate-production")
		killAt(jobAt(nto.Namespace, "migrate-production", true), false, to, "promote")
		if got := sim.runsOf(nto.Namespace, "migrate-production") - before; got != 2 {
			t.Errorf("trial %d: a promote killed after its migration, then run again, migrated %d times, want 2 (again)", i, got)
		}
		to, _ = other()
		killAt(recordAt(a.names.ProductionNamespace, a.names.ProductionRelease, "pending-upgrade"), false, to, "promote")
		if live := a.status(t).SHA; live != to[:8] {
			t.Errorf("trial %d: production serves %s after the promote of %s", i, live, to[:8])
		}
		restore()
	}
}

// TestStressRacesMigrate runs promote --migrate of two commits at once,
// again and again: both succeed, one after the other under production's
// lock. Production's migrations never overlap, and each starts only once
// the one before it has switched production to its commit: migrate,
// switch, then the next.
func TestStressRacesMigrate(t *testing.T) {
	trials := raceTrials(t)
	a, _ := newDatabaseStressApp(t, "mrace")
	simulateAvailable(t, a)
	sim := simulateJobs(t, a)
	commits := []string{stressSHA(1), stressSHA(2), stressSHA(3)}
	var wg sync.WaitGroup
	for _, c := range commits {
		wg.Go(func() { a.mustRun(c, append([]string{"deploy"}, migrate...)...) })
	}
	wg.Wait()
	defer a.promoting()()
	a.mustRun(commits[0], append([]string{"promote"}, migrate...)...)
	for i := range trials {
		live := a.status(t).SHA
		var racers []string
		for _, c := range commits {
			if c[:8] != live {
				racers = append(racers, c)
			}
		}
		sim.mu.Lock()
		first := len(sim.production)
		sim.mu.Unlock()
		results := make([]result, len(racers))
		for k, c := range racers {
			wg.Go(func() { results[k] = a.run(c, append([]string{"promote"}, migrate...)...) })
		}
		wg.Wait()
		for k, r := range results {
			if r.code != 0 {
				t.Errorf("trial %d: promote --migrate of %s: exit %d\n%s", i, racers[k][:8], r.code, r.stderr)
			}
		}
		sim.mu.Lock()
		runs := sim.production[first:]
		sim.mu.Unlock()
		if len(runs) != 2 || runs[0].live != live || runs[1].live != runs[0].sha || a.status(t).SHA != runs[1].sha {
			t.Errorf("trial %d: production's migrations (commit, production then) %+v from %s, production now %s; want each after the switch of the one before",
				i, runs, live, a.status(t).SHA)
		}
		a.invariants(fmt.Sprintf("trial %d, two promote --migrate at once", i))
	}
}
