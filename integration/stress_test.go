package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// The stress suite drives the built binary against the real apiserver the
// way cancelled jobs and racing pipelines do, and checks the invariants
// (release.Status.Check) after every case. `make test` runs 3 trials per
// case; `make stress` runs SHIPPER_STRESS_TRIALS (30).

func stressTrials(t *testing.T) int { return trialsFrom(t, "SHIPPER_STRESS_TRIALS") }

// raceTrials is the count of each race case: SHIPPER_STRESS_RACE_TRIALS
// (make stress: 50), else SHIPPER_STRESS_TRIALS.
func raceTrials(t *testing.T) int {
	if os.Getenv("SHIPPER_STRESS_RACE_TRIALS") != "" {
		return trialsFrom(t, "SHIPPER_STRESS_RACE_TRIALS")
	}
	return stressTrials(t)
}

// pointTrials is the count of each fixed-point case: a third of
// SHIPPER_STRESS_TRIALS (one in make test, 10 in make stress), since each
// reaches its point on every trial rather than by chance.
func pointTrials(t *testing.T) int { return max(1, stressTrials(t)/3) }

func trialsFrom(t *testing.T, variable string) int {
	if s := os.Getenv(variable); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", variable, s)
		}
		return n
	}
	return 3
}

// stressApp is one app of the suite: its GitLab variables, with a 2 s
// lock lease so a killed run's lock is taken over quickly.
type stressApp struct {
	t     *testing.T
	env   *testenv.Env
	vars  map[string]string
	check *release.Status
	names release.Names
	// more, when set, are a case's own invariants, checked with the
	// app's (stress_migrate_test.go: migration Jobs).
	more func() []string
}

func newStressApp(t *testing.T, prefix string) *stressApp {
	env := testenv.Get(t)
	name := uniqueName(prefix)
	vars := with(gitlabEnv(t, env, name, strings.Repeat("0", 40)), "SHIPPER_LOCK_LEASE", "2s", "SHIPPER_TIMEOUT", "60s")
	cfg, err := release.NewConfiguration(env.AdminConfig(), release.WithProject(release.Project{ID: vars["CI_PROJECT_ID"]}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := release.NewNames(name, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &stressApp{t: t, env: env, vars: vars, check: release.NewStatus(cfg), names: n}
	// One image serves every commit: deploy resolves it by its tag.
	if r := runBinary(t, a.at(stressSHA(0)), "package"); r.code != 0 {
		t.Fatalf("package: %s", r.stderr)
	}
	return a
}

// newLiveStressApp is an app with commits 1 and 2 deployed and 1 live.
func newLiveStressApp(t *testing.T, prefix string) (a *stressApp, one, two string) {
	a = newStressApp(t, prefix)
	one, two = stressSHA(1), stressSHA(2)
	a.mustRun(one, "deploy")
	a.mustRun(two, "deploy")
	a.mustRun(one, "promote")
	return a, one, two
}

// commit is the names of the app's commit sha.
func (a *stressApp) commit(sha string) release.Names {
	a.t.Helper()
	n, err := a.names.WithSHA(sha)
	if err != nil {
		a.t.Fatal(err)
	}
	return n
}

// stressSHA is commit i's SHA.
func stressSHA(i int) string { return fmt.Sprintf("%08x", 0xa0000000+i) + strings.Repeat("1", 32) }

// at is the app's variables for commit sha, the image always commit 0's.
func (a *stressApp) at(sha string) map[string]string {
	return with(a.vars, "CI_COMMIT_SHA", sha, "CI_COMMIT_SHORT_SHA", sha[:8],
		"SHIPPER_IMAGE_REF", a.vars["CI_REGISTRY_IMAGE"]+":"+stressSHA(0)[:8])
}

func (a *stressApp) run(sha string, args ...string) result {
	return runBinary(a.t, a.at(sha), args...)
}

func (a *stressApp) mustRun(sha string, args ...string) {
	a.t.Helper()
	if r := a.run(sha, args...); r.code != 0 {
		a.t.Fatalf("shipper %s (%s): exit %d\n%s", strings.Join(args, " "), sha[:8], r.code, r.stderr)
	}
}

// invariants fails the test on any broken invariant.
func (a *stressApp) invariants(when string) {
	a.t.Helper()
	problems, err := a.check.Check(context.Background(), a.names)
	if err != nil {
		a.t.Fatalf("%s: checking invariants: %v", when, err)
	}
	for _, p := range problems {
		a.t.Errorf("%s: %s", when, p)
	}
	if a.more != nil {
		for _, p := range a.more() {
			a.t.Errorf("%s: %s", when, p)
		}
	}
}

// killed starts shipper, kills it with SIGKILL after a random 30-250 ms,
// and reports how long it ran.
func (a *stressApp) killed(sha string, args ...string) time.Duration {
	return a.killedAfter(time.Duration(30+rand.IntN(221))*time.Millisecond, sha, args...)
}

// killedAfter starts shipper and kills it with SIGKILL after after.
func (a *stressApp) killedAfter(after time.Duration, sha string, args ...string) time.Duration {
	cmd := exec.Command(binary(a.t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + a.t.TempDir()}
	for k, v := range a.at(sha) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	time.Sleep(after)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	return after
}

// TestStressKill9 kills deploy, promote, rollback and delete at random
// points; the next normal run of the same command succeeds and the
// invariants hold.
func TestStressKill9(t *testing.T) {
	trials := stressTrials(t)
	a, _, _ := newLiveStressApp(t, "kill")
	next := 3
	for i := 0; i < trials; i++ {
		// deploy of a new commit
		sha := stressSHA(next)
		next++
		a.killed(sha, "deploy")
		a.mustRun(sha, "deploy")
		a.invariants(fmt.Sprintf("trial %d, after a killed deploy", i))

		// promote, alternately of the two commits
		target := stressSHA(1 + (i+1)%2)
		a.killed(target, "promote")
		a.mustRun(target, "promote")
		a.invariants(fmt.Sprintf("trial %d, after a killed promote", i))

		// rollback
		a.killed(target, "rollback")
		a.mustRun(target, "rollback")
		a.invariants(fmt.Sprintf("trial %d, after a killed rollback", i))

		// delete of the commit deployed above (never live)
		a.killed(sha, "delete")
		if r := a.run(sha, "delete"); r.code != 0 {
			t.Errorf("trial %d: delete after a killed delete: exit %d\n%s", i, r.code, r.stderr)
		}
		a.invariants(fmt.Sprintf("trial %d, after a killed delete", i))
	}
}

// TestStressRaces runs what racing pipelines do at once.
func TestStressRaces(t *testing.T) {
	trials := raceTrials(t)
	a := newStressApp(t, "race")
	const deploys, commits = 20, 10
	var wg sync.WaitGroup
	parallel := func(n int, fn func(i int)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); fn(i) }()
		}
		wg.Wait()
	}

	// Concurrent deploys of different commits all succeed.
	parallel(deploys, func(i int) {
		if r := a.run(stressSHA(i+1), "deploy"); r.code != 0 {
			t.Errorf("concurrent deploy %d: exit %d\n%s", i, r.code, r.stderr)
		}
	})
	a.invariants("after concurrent deploys")

	// Concurrent promotes of different commits all succeed, one after the
	// other: one revision each.
	a.mustRun(stressSHA(1), "promote")
	before := a.status(t)
	parallel(commits, func(i int) {
		if r := a.run(stressSHA(i+1), "promote"); r.code != 0 {
			t.Errorf("concurrent promote %d: exit %d\n%s", i, r.code, r.stderr)
		}
	})
	if after := a.status(t); after.Revision != before.Revision+commits {
		t.Errorf("after %d concurrent promotes production is at revision %d, want %d", commits, after.Revision, before.Revision+commits)
	}
	a.invariants("after concurrent promotes")

	for i := 0; i < trials; i++ {
		// Deploy and delete of one new commit at once: whichever wins, the
		// other either succeeds or is refused, never a half state.
		sha := stressSHA(100 + i)
		var deploy, del result
		wg.Add(2)
		go func() { defer wg.Done(); deploy = a.run(sha, "deploy") }()
		go func() { defer wg.Done(); del = a.run(sha, "delete") }()
		wg.Wait()
		if del.code != 0 || deploy.code != 0 && !strings.Contains(deploy.stderr, "is being deleted") {
			t.Errorf("trial %d: deploy vs delete: deploy exit %d (%s), delete exit %d (%s)", i, deploy.code, lastLine(deploy.stderr), del.code, lastLine(del.stderr))
		}
		a.invariants(fmt.Sprintf("trial %d, deploy vs delete", i))

		// Promote and delete of the same commit at once: one of them is
		// refused; production never routes to a deleted commit.
		cand := stressSHA(1 + i%commits)
		if a.status(t).SHA == cand[:8] {
			cand = stressSHA(1 + (i+1)%commits)
		}
		var promote result
		wg.Add(2)
		go func() { defer wg.Done(); promote = a.run(cand, "promote") }()
		go func() { defer wg.Done(); del = a.run(cand, "delete") }()
		wg.Wait()
		if (promote.code == 0) == (del.code == 0) {
			t.Errorf("trial %d: promote vs delete of %s: promote exit %d (%s), delete exit %d (%s); want exactly one to win",
				i, cand[:8], promote.code, lastLine(promote.stderr), del.code, lastLine(del.stderr))
		}
		a.invariants(fmt.Sprintf("trial %d, promote vs delete of a candidate", i))

		// Delete of the live commit while it is promoted again: refused.
		live := a.status(t).SHA
		liveSHA := ""
		for j := 1; j <= commits; j++ {
			if stressSHA(j)[:8] == live {
				liveSHA = stressSHA(j)
			}
		}
		wg.Add(2)
		go func() { defer wg.Done(); promote = a.run(liveSHA, "promote") }()
		go func() { defer wg.Done(); del = a.run(liveSHA, "delete") }()
		wg.Wait()
		if del.code != exitUsage || promote.code != 0 {
			t.Errorf("trial %d: promote vs delete of the live commit: promote exit %d (%s), delete exit %d (%s); want the delete refused",
				i, promote.code, lastLine(promote.stderr), del.code, lastLine(del.stderr))
		}
		a.invariants(fmt.Sprintf("trial %d, promote vs delete of the live commit", i))
	}
}

func (a *stressApp) status(t *testing.T) *release.Production {
	t.Helper()
	p, err := a.check.Production(context.Background(), a.names)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestStressAPIServerRestart restarts kube-apiserver (same etcd, down for
// 2 s) in the middle of a deploy and of a promote. The command either
// finishes, riding out the restart, or fails leaving what its next run
// repairs; the invariants hold after that next run.
func TestStressAPIServerRestart(t *testing.T) {
	trials := stressTrials(t)
	a, _, _ := newLiveStressApp(t, "restart")
	restart := func(after time.Duration) chan error {
		done := make(chan error, 1)
		go func() {
			time.Sleep(after)
			done <- a.env.RestartAPIServer(context.Background(), 2*time.Second)
		}()
		return done
	}
	survived := 0
	for i := 0; i < trials; i++ {
		for _, step := range []struct {
			sha  string
			args []string
		}{
			{stressSHA(10 + i), []string{"deploy"}},
			{stressSHA(1 + (i+1)%2), []string{"promote"}},
		} {
			done := restart(time.Duration(20+rand.IntN(150)) * time.Millisecond)
			r := a.run(step.sha, step.args...)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if r.code == 0 {
				survived++
			} else {
				t.Logf("trial %d: %s through a restart: exit %d: %s", i, step.args[0], r.code, lastLine(r.stderr))
				a.mustRun(step.sha, step.args...)
			}
			a.invariants(fmt.Sprintf("trial %d, %s through an apiserver restart", i, step.args[0]))
		}
	}
	t.Logf("%d of %d commands rode out the apiserver restart", survived, 2*trials)
}

// A fixed point is a moment inside an operation that a watch held by the
// test sees: an object shipper (or Helm for it) writes appears, changes or
// goes. The test signals the running binary the instant its watch delivers
// that event, so the windows random kills rarely hit (between Helm's
// create of the new route and its delete of the old one, between the
// uninstall and the namespace delete) are hit on every trial, without a
// hook in the binary. The process may run a few milliseconds past the
// point before the signal lands; the point is where it was at least.
type fixedPoint struct {
	name  string
	watch func(ctx context.Context, c kubernetes.Interface) (watch.Interface, error)
	hit   func(watch.Event) bool
}

// recordAt is the moment release's Helm record in namespace reaches status.
func recordAt(namespace, release, status string) fixedPoint {
	return fixedPoint{
		name: fmt.Sprintf("record %s/%s %s", namespace, release, status),
		watch: func(ctx context.Context, c kubernetes.Interface) (watch.Interface, error) {
			return c.CoreV1().Secrets(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + release})
		},
		hit: func(e watch.Event) bool {
			s, ok := e.Object.(*corev1.Secret)
			return ok && (e.Type == watch.Added || e.Type == watch.Modified) && s.Labels["status"] == status
		},
	}
}

// recordGone is the moment release's Helm records are deleted.
func recordGone(namespace, release string) fixedPoint {
	p := recordAt(namespace, release, "")
	p.name = fmt.Sprintf("record %s/%s deleted", namespace, release)
	p.hit = func(e watch.Event) bool { return e.Type == watch.Deleted }
	return p
}

// ingressAt is the moment production's Ingress in namespace is created
// (watch.Added) or deleted (watch.Deleted).
func ingressAt(namespace, name string, what watch.EventType) fixedPoint {
	return fixedPoint{
		name: fmt.Sprintf("Ingress %s/%s %s", namespace, name, strings.ToLower(string(what))),
		watch: func(ctx context.Context, c kubernetes.Interface) (watch.Interface, error) {
			return c.NetworkingV1().Ingresses(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		},
		hit: func(e watch.Event) bool { return e.Type == what },
	}
}

// deploymentAdded is the moment the commit's Deployment is created.
func deploymentAdded(namespace string) fixedPoint {
	return fixedPoint{
		name: fmt.Sprintf("Deployment in %s added", namespace),
		watch: func(ctx context.Context, c kubernetes.Interface) (watch.Interface, error) {
			return c.AppsV1().Deployments(namespace).Watch(ctx, metav1.ListOptions{})
		},
		hit: func(e watch.Event) bool { return e.Type == watch.Added },
	}
}

// signalAt runs shipper and sends it sig as soon as p is seen. It fails
// the test when the command finished without reaching p.
func (a *stressApp) signalAt(sig syscall.Signal, p fixedPoint, sha string, args ...string) result {
	a.t.Helper()
	client, err := a.env.AdminClient()
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := p.watch(ctx, client)
	if err != nil {
		a.t.Fatalf("watching for %s: %v", p.name, err)
	}
	defer w.Stop()
	cmd := exec.Command(binary(a.t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + a.t.TempDir()}
	for k, v := range a.at(sha) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	hit := false
	for !hit {
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				a.t.Fatalf("watch for %s closed", p.name)
			}
			if p.hit(e) {
				hit = true
				_ = cmd.Process.Signal(sig)
			}
		case <-exited:
			a.t.Fatalf("shipper %s (%s) finished (%s) before %s", strings.Join(args, " "), sha[:8], lastLine(stderr.String()), p.name)
		}
	}
	<-exited
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// TestStressKillAtFixedPoints kills each operation with SIGKILL at the
// points where an interrupted one used to leave harm: the next normal run
// repairs it and the invariants hold; in between, a delete of a commit
// that still serves production is refused.
func TestStressKillAtFixedPoints(t *testing.T) {
	trials := pointTrials(t)
	a, one, two := newLiveStressApp(t, "fixed")
	prod := a.names
	next := 3
	for i := 0; i < trials; i++ {
		x, y := stressSHA(next), stressSHA(next+1)
		next += 2
		nx, ny := a.commit(x), a.commit(y)
		killAt := func(p fixedPoint, sha string, args ...string) {
			t.Helper()
			start := time.Now()
			a.signalAt(syscall.SIGKILL, p, sha, args...)
			killed := time.Since(start)
			a.mustRun(sha, args...)
			t.Logf("%s killed at %s after %s; next run %s", args[0], p.name, killed.Round(time.Millisecond), (time.Since(start) - killed).Round(time.Millisecond))
			a.invariants(fmt.Sprintf("trial %d, %s killed at %s", i, args[0], p.name))
		}
		killAt(recordAt(nx.Namespace, nx.Release, "pending-install"), x, "deploy")
		killAt(deploymentAdded(ny.Namespace), y, "deploy")
		killAt(recordAt(nx.Namespace, nx.Release, "uninstalling"), x, "delete")
		killAt(recordGone(ny.Namespace, ny.Release), y, "delete")

		live := a.status(t).SHA
		from, to := one, two
		if live == two[:8] {
			from, to = two, one
		}
		nfrom, nto := a.commit(from), a.commit(to)
		killAt(recordAt(prod.ProductionNamespace, prod.ProductionRelease, "pending-upgrade"), to, "promote")
		killAt(ingressAt(nfrom.Namespace, prod.ProductionRelease, watch.Added), from, "promote")

		// The window: the new route made, the old one deleted, the
		// records still naming the old commit. The commit that serves
		// cannot be deleted; the next promote of the other one leaves one
		// route.
		a.signalAt(syscall.SIGKILL, ingressAt(nfrom.Namespace, prod.ProductionRelease, watch.Deleted), to, "promote")
		if r := a.run(to, "delete"); r.code != exitUsage {
			t.Errorf("trial %d: delete of %s, which serves production after a killed promote: exit %d (%s), want %d",
				i, to[:8], r.code, lastLine(r.stderr), exitUsage)
		}
		a.mustRun(from, "promote")
		a.invariants(fmt.Sprintf("trial %d, promote after a promote killed between its route's create and the old one's delete", i))

		killAt(ingressAt(nto.Namespace, prod.ProductionRelease, watch.Added), to, "rollback")
	}
}

// TestStressCancelAtFixedPoints cancels promote and rollback the way
// GitLab cancels a job (SIGTERM) at the moment the new route exists: the
// switch it began runs to its end (exit 0, production on the new commit,
// one route), with no next run needed.
func TestStressCancelAtFixedPoints(t *testing.T) {
	trials := pointTrials(t)
	a, one, two := newLiveStressApp(t, "cancel")
	for i := 0; i < trials; i++ {
		for _, verb := range []string{"promote", "rollback"} {
			to := one
			if a.status(t).SHA == one[:8] {
				to = two
			}
			r := a.signalAt(syscall.SIGTERM, ingressAt(a.commit(to).Namespace, a.names.ProductionRelease, watch.Added), to, verb)
			if live := a.status(t).SHA; r.code != 0 || live != to[:8] {
				t.Errorf("trial %d: %s to %s cancelled once its route existed: exit %d (%s), production serves %s; want exit 0 and %s",
					i, verb, to[:8], r.code, lastLine(r.stderr), live, to[:8])
			}
			a.invariants(fmt.Sprintf("trial %d, %s cancelled once its route existed", i, verb))
		}
	}
}
