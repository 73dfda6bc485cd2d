package release_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	coordinationv1 "k8s.io/api/coordination/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

const shaC = "cccccccc33333333333333333333333333333333"

// TestInterruptedPromoteIsRepaired plants what `promote B` killed after
// Helm created B's production Ingress and deleted A's, but before it
// recorded the outcome, leaves: B's Ingress alone routes production, B's
// revision is pending and the records still name A. Delete must not take
// B (production would go dark), and the next promote must not leave B's
// Ingress routing beside the new one.
func TestInterruptedPromoteIsRepaired(t *testing.T) {
	f := threeCommitsALive(t)
	if _, err := f.promote(t, shaB); err != nil {
		t.Fatal(err)
	}
	prodNS := f.app + "-production"
	hc := f.helm(t, prodNS)
	hist, err := hc.Releases.History(prodNS)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %d revisions, %v", len(hist), err)
	}
	for _, r := range hist {
		switch r.Version {
		case 1: // Helm marks the old revision superseded only at the end.
			r.SetStatus(helmrelease.StatusDeployed, "Install complete")
		case 2:
			r.SetStatus(helmrelease.StatusPendingUpgrade, "Preparing upgrade")
		}
		if err := hc.Releases.Update(r); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != f.app+"-bbbbbbbb" {
		t.Fatalf("planted state: production Ingresses in %v, want B's only", got)
	}
	problems, err := release.NewStatus(f.cfg).Check(context.Background(), names(t, f.app, ""))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, p := range problems {
		seen = append(seen, p.Invariant)
	}
	for _, want := range []string{"no release left mid-operation", "production is routed by exactly one object", "production is routed to the live commit"} {
		if !strings.Contains(strings.Join(seen, "|"), want) {
			t.Errorf("status check of the planted state: %v, want %q reported", problems, want)
		}
	}

	_, err = release.NewDelete(f.cfg).Run(context.Background(), names(t, f.app, shaB))
	if !release.IsUsage(err) || !strings.Contains(err.Error(), "production routes to it") {
		t.Errorf("delete of the commit production routes to: err = %v, want a refusal", err)
	}
	if got := f.productionIngresses(t); len(got) != 1 {
		t.Fatalf("after the refused delete, production Ingresses in %v", got)
	}

	if _, err := f.promote(t, shaC); err != nil {
		t.Fatalf("promote C over the interrupted promote: %v", err)
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != f.app+"-cccccccc" {
		t.Errorf("after promote C, production Ingresses in %v, want C's only", got)
	}
	if !strings.Contains(f.logs.String(), "removed a stray production route") {
		t.Errorf("the repair was not logged:\n%s", f.logs)
	}
	assertInvariants(t, f)
	if _, err := release.NewDelete(f.cfg).Run(context.Background(), names(t, f.app, shaB)); err != nil {
		t.Errorf("delete of B once nothing routes to it: %v", err)
	}
}

// TestPromoteRemovesARouteHelmFailedToDelete: Helm's upgrade ignores
// errors deleting the old Ingress. An admission policy refuses that delete
// once; the promote reports it, and the next one removes the stray.
func TestPromoteRemovesARouteHelmFailedToDelete(t *testing.T) {
	f := threeCommitsALive(t)
	nsA := f.app + "-aaaaaaaa"
	unblock := refuseIngressDeletes(t, f.env, nsA)
	_, err := f.promote(t, shaB)
	if err == nil || !strings.Contains(err.Error(), "stray production Ingress") {
		t.Errorf("promote B while A's Ingress cannot be deleted: err = %v, want it reported", err)
	}
	if live := f.live(t); live.SHA != "bbbbbbbb" {
		t.Errorf("live = %s, want bbbbbbbb", live.SHA)
	}
	unblock()
	if _, err := f.promote(t, shaC); err != nil {
		t.Fatal(err)
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != f.app+"-cccccccc" {
		t.Errorf("production Ingresses in %v, want C's only", got)
	}
	assertInvariants(t, f)
}

// refuseIngressDeletes installs a ValidatingAdmissionPolicy that refuses
// every Ingress delete in ns, for every user, until the returned function
// is called.
func refuseIngressDeletes(t *testing.T, env *testenv.Env, ns string) func() {
	t.Helper()
	dir := t.TempDir()
	name := "refuse-ingress-deletes-" + ns
	policy := `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: ` + name + `
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [networking.k8s.io]
        apiVersions: [v1]
        operations: [DELETE]
        resources: [ingresses]
  validations:
    - expression: request.namespace != "` + ns + `"
      message: refused by the test
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: ` + name + `
spec:
  policyName: ` + name + `
  validationActions: [Deny]
`
	if err := writeFile(dir+"/policy.yaml", policy); err != nil {
		t.Fatal(err)
	}
	if err := env.Apply(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	// The policy takes effect once the apiserver has loaded it: probed
	// with dry-run deletes of an Ingress of the test's own (a delete of a
	// missing object never reaches admission).
	probe := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec:       networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(context.Background(), probe, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool {
		err := cs.NetworkingV1().Ingresses(ns).Delete(context.Background(), "probe", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "refused by the test")
	})
	return func() {
		ctx := context.Background()
		_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		waitFor(t, 20*time.Second, func() bool {
			err := cs.NetworkingV1().Ingresses(ns).Delete(ctx, "probe", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
			return err == nil || !strings.Contains(err.Error(), "refused by the test")
		})
	}
}

// TestDeployRepairsUninstalling: a delete killed mid-uninstall leaves the
// release "uninstalling", which Helm's upgrade refuses; the next deploy
// resolves it, and so does the next delete.
func TestDeployRepairsUninstalling(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-aaaaaaaa"
	f.deployReady(t, shaA)
	hc := f.helm(t, ns)
	last, err := hc.Releases.Last(ns)
	if err != nil {
		t.Fatal(err)
	}
	last.SetStatus(helmrelease.StatusUninstalling, "Deletion in progress")
	if err := hc.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	got := f.deployReady(t, shaA)
	if got.Status != "deployed" {
		t.Errorf("deploy over an interrupted uninstall = %s", got.Status)
	}
	assertInvariants(t, f)
	last, _ = hc.Releases.Last(ns)
	last.SetStatus(helmrelease.StatusUninstalling, "Deletion in progress")
	if err := hc.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	if _, err := release.NewDelete(f.cfg).Run(context.Background(), names(t, f.app, shaA)); err != nil {
		t.Errorf("delete over an interrupted uninstall: %v", err)
	}
}

// TestDeleteWaitsForADeployOfTheSameCommit: delete takes the commit's lock,
// so a deploy waiting for its pods finishes (here: times out, as no pod
// comes up) before the commit is deleted, instead of failing with "reading
// deployment ...: not found".
func TestDeleteWaitsForADeployOfTheSameCommit(t *testing.T) {
	f := newDeployFixture(t)
	var wg sync.WaitGroup
	var deployErr error
	var deployEnd time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, deployErr = f.deploy(t, shaA, func(d *release.Deploy) { d.Timeout = 6 * time.Second })
		deployEnd = time.Now()
	}()
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(f.logs.String(), "msg=waiting") })
	d, err := release.NewDelete(f.cfg).Run(context.Background(), names(t, f.app, shaA))
	deleteEnd := time.Now()
	wg.Wait()
	if err != nil || d.Gone {
		t.Fatalf("delete = %+v, %v", d, err)
	}
	var re *release.RolloutError
	if !errors.As(deployErr, &re) || !re.TimedOut {
		t.Errorf("deploy err = %v, want its own timeout, not the delete pulling the commit away", deployErr)
	}
	if deleteEnd.Before(deployEnd) {
		t.Errorf("delete finished %v before the deploy it should have waited for", deployEnd.Sub(deleteEnd))
	}
}

// TestPromoteChecksTheCommitUnderItsLock: promote passes its early check
// while commit A is deployed, then waits for production's lock (held
// here by a planted Lease of "another operation"); meanwhile a re-deploy
// of A fails. The decisive check, under both locks, must see it.
func TestPromoteChecksTheCommitUnderItsLock(t *testing.T) {
	f := newDeployFixture(t)
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	if _, err := f.promote(t, shaB); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prodNS := f.app + "-production"
	leases := f.cs.CoordinationV1().Leases(prodNS)
	holder, dur, now := "another-operation", int32(60), metav1.NewMicroTime(time.Now())
	_, err := leases.Update(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper-" + prodNS, Namespace: prodNS, ResourceVersion: mustLeaseVersion(t, f, prodNS)},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, AcquireTime: &now, RenewTime: &now},
	}, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var promoteErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, promoteErr = f.promote(t, shaA)
	}()
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(f.logs.String(), "holder=another-operation") })
	// No simulated controller now: the re-deploy never becomes available
	// and fails at its timeout.
	changed := func(d *release.Deploy) {
		d.Timeout, d.Values = 3*time.Second, map[string]any{"env": map[string]any{"CHANGED": "1"}}
	}
	if _, err := f.deploy(t, shaA, changed); err == nil {
		t.Fatal("the re-deploy succeeded; the test needs it to fail")
	}
	if err := leases.Delete(ctx, "shipper-"+prodNS, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !release.IsUsage(promoteErr) || !strings.Contains(promoteErr.Error(), "is failed, not deployed") {
		t.Errorf("promote of a commit whose re-deploy failed meanwhile: err = %v, want a refusal", promoteErr)
	}
	if live := f.live(t); live.SHA != "bbbbbbbb" {
		t.Errorf("live = %s, want bbbbbbbb still", live.SHA)
	}
	assertInvariants(t, f)
}

func mustLeaseVersion(t *testing.T, f *deployFixture, ns string) string {
	t.Helper()
	l, err := f.cs.CoordinationV1().Leases(ns).Get(context.Background(), "shipper-"+ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.ResourceVersion
}

// TestLockFailsFastWithoutLeaseRights: a token that may not write Leases
// is reported within seconds, not after --timeout.
func TestLockFailsFastWithoutLeaseRights(t *testing.T) {
	f := newDeployFixture(t)
	rc, err := f.env.NewIdentity(context.Background(), testenv.Identity{
		Namespace: f.env.Namespace(t), Name: "no-leases",
		ClusterRules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "secrets", "services", "pods"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps", "networking.k8s.io", "rbac.authorization.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := release.NewConfiguration(rc)
	if err != nil {
		t.Fatal(err)
	}
	d := release.NewDeploy(cfg)
	d.Hosts, d.Wait, d.Timeout = release.Hosts{Domain: "example.com"}, false, 60*time.Second
	start := time.Now()
	_, err = d.Run(context.Background(), names(t, f.app, shaA), f.image)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "taking the lock") || !strings.Contains(err.Error(), "forbidden") || took > 10*time.Second {
		t.Errorf("deploy without Lease rights: err = %v after %v; want the refusal named within seconds", err, took)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// TestFailedRedeployOfTheLiveCommitIsUndone: re-deploying the commit
// production serves with a crashing change rolls the commit's release
// back, so production keeps serving what it served.
func TestFailedRedeployOfTheLiveCommitIsUndone(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-aaaaaaaa"
	f.deployReady(t, shaA)
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	_ = f.cs.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
	simulate(t, f.cs, ns, ns, rolloutCrashLoop)
	_, err := f.deploy(t, shaA, func(d *release.Deploy) {
		d.Values = map[string]any{"env": map[string]any{"BROKEN": "1"}}
	})
	var re *release.RolloutError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "rolled back to revision 1") {
		t.Fatalf("err = %v, want the rollout error and the undo", err)
	}
	last, err := f.helm(t, ns).Releases.Last(ns)
	if err != nil {
		t.Fatal(err)
	}
	if last.Version != 3 || last.Info.Status != helmrelease.StatusDeployed {
		t.Errorf("last revision %d %s, want 3 deployed (the rollback to 1)", last.Version, last.Info.Status)
	}
	dep, err := f.cs.AppsV1().Deployments(ns).Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "BROKEN" {
			t.Errorf("the Deployment still runs the failed change")
		}
	}
	if live := f.live(t); live.SHA != "aaaaaaaa" {
		t.Errorf("live = %s", live.SHA)
	}
	assertInvariants(t, f)
}

// assertInvariants fails the test when Check finds a broken invariant.
func assertInvariants(t *testing.T, f *deployFixture) {
	t.Helper()
	problems, err := release.NewStatus(f.cfg).Check(context.Background(), names(t, f.app, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("invariant broken: %s", p)
	}
}

// threeCommitsALive deploys commits A, B and C of a fresh app and promotes A.
func threeCommitsALive(t *testing.T) *deployFixture {
	t.Helper()
	f := newDeployFixture(t)
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	f.deployReady(t, shaC)
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	return f
}
