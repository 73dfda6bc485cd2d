package release_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/release"
)

// deployQuick deploys sha from ref (none: "") committed at when, without
// waiting for pods (so no alias moves).
func (f *deployFixture) deployQuick(t *testing.T, sha, ref string, when time.Time) {
	t.Helper()
	n := names(t, f.app, sha)
	if ref != "" {
		var err error
		if n, err = n.WithRef(ref); err != nil {
			t.Fatal(err)
		}
	}
	d := release.NewDeploy(f.cfg)
	d.Hosts, d.Wait, d.CommitTime = release.Hosts{Domain: "preview.example.com"}, false, when
	if _, err := d.Run(context.Background(), n, f.image); err != nil {
		t.Fatalf("deploy %s: %v", sha[:8], err)
	}
}

func sha(prefix string) string { return prefix + strings.Repeat("0", 40-len(prefix)) }

func (f *deployFixture) prune(t *testing.T, mutate func(*release.Prune)) (*release.Pruned, error) {
	t.Helper()
	p := release.NewPrune(f.cfg)
	mutate(p)
	return p.Run(context.Background(), names(t, f.app, ""))
}

// plan maps each commit of a prune's result to its action.
func plan(res *release.Pruned) map[string]string {
	out := map[string]string{}
	for _, it := range res.Items {
		if it.Kind == "alias" {
			out["alias "+it.Ref] = it.Action
			continue
		}
		out[it.Short] = it.Action
	}
	return out
}

func (f *deployFixture) namespacesLeft(t *testing.T) map[string]bool {
	t.Helper()
	list, err := f.cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: "shipper.dev/role=preview,shipper.dev/app=" + f.app})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil {
			out[strings.TrimPrefix(ns.Name, f.app+"-")] = true
		}
	}
	return out
}

// TestPrunePolicies: every policy, alone and combined, and every "never
// removes" rule: the live commit, a commit an alias serves, one whose lock
// a running job holds; a namespace a killed deploy left without a release
// or a RoleBinding goes; --dry-run changes nothing; one removal that fails
// does not stop the others and is reported (ErrPruneFailed).
func TestPrunePolicies(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	// main: c0 (oldest) .. c4; feature-x: d1, d2; e1, served by the alias
	// of its branch; g1, served by the alias of a branch gone since; no
	// branch: a1.
	for i := 0; i <= 4; i++ {
		f.deployQuick(t, sha(fmt.Sprintf("c%d", i)), "main", commitTime(i))
	}
	f.deployQuick(t, sha("d1"), "feature/x", commitTime(5))
	f.deployQuick(t, sha("d2"), "feature/x", commitTime(6))
	if _, err := f.deployBranch(t, sha("e1"), "aliased", commitTime(7)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.deployBranch(t, sha("e0"), "aliased", commitTime(3)); err != nil {
		t.Fatal(err) // older: deployed, the alias stays on e1
	}
	if _, err := f.deployBranch(t, sha("91"), "gone", commitTime(8)); err != nil {
		t.Fatal(err)
	}
	f.deployQuick(t, sha("a1"), "", time.Time{})
	if _, err := f.promote(t, sha("c2")); err != nil {
		t.Fatal(err)
	}
	// A deploy killed right after it made its namespace: no release, no
	// RoleBinding, no Lease.
	leftover := f.app + "-f1000000"
	_, err := f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leftover, Labels: map[string]string{
		"app.kubernetes.io/managed-by": "shipper", "shipper.dev/app": f.app, "shipper.dev/role": "preview",
		"shipper.dev/sha": "f1000000", "shipper.dev/ref": "dead",
	}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A job holds c0's lock (the Lease its deploy released).
	now := metav1.NewMicroTime(time.Now())
	leases := f.cs.CoordinationV1().Leases(f.app + "-c0000000")
	lease, err := leases.Get(ctx, "shipper-"+f.app+"-c0000000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lease.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To("runner-7-job-42"), LeaseDurationSeconds: ptr.To[int32](300), RenewTime: &now, AcquireTime: &now}
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.namespacesLeft(t)

	policy := func(p *release.Prune) { p.Keep, p.Branches = 2, []string{"main", "feature/x", "aliased"} }
	res, err := f.prune(t, func(p *release.Prune) { policy(p); p.DryRun = true })
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	want := map[string]string{
		"c4000000": "keep", "c3000000": "keep", // the 2 newest of main
		"c2000000": "keep", // live
		"c1000000": "delete",
		"c0000000": "keep", // locked
		"d2000000": "keep", "d1000000": "keep",
		"e1000000": "keep", "e0000000": "keep",
		"91000000": "delete", "alias gone": "delete", // its branch is gone: the alias too
		"a1000000": "keep", // no branch: only --max-age judges it
		"f1000000": "delete",
	}
	if got := plan(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dry-run plan:\n got %v\nwant %v", got, want)
	}
	for _, it := range res.Items {
		if it.Short == "c0000000" && !strings.Contains(it.Reason, "runner-7-job-42") {
			t.Errorf("locked commit's reason %q does not name the holder", it.Reason)
		}
	}
	if after := f.namespacesLeft(t); len(after) != len(before) {
		t.Fatalf("dry run removed namespaces: %v -> %v", before, after)
	}

	// For real; c1's removal fails (its Ingress cannot be deleted).
	restore := refuseIngressDeletes(t, f.env, f.app+"-c1000000")
	var mu sync.Mutex
	var progress []string
	res, err = f.prune(t, func(p *release.Prune) {
		policy(p)
		p.Progress = func(done, total int, it release.PruneItem) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, fmt.Sprintf("%d/%d %s %s", done, total, it.Short, it.Action))
		}
	})
	restore()
	if !errors.Is(err, release.ErrPruneFailed) || res == nil || res.Failed != 1 || res.Deleted != 3 {
		t.Fatalf("prune with one failing removal = %+v, %v; want 3 deleted (an alias, two commits), 1 failed, ErrPruneFailed", res, err)
	}
	if got := plan(res); got["c1000000"] != "failed" || got["f1000000"] != "deleted" || got["91000000"] != "deleted" || got["alias gone"] != "deleted" {
		t.Errorf("outcomes %v: want c1 failed, the leftover, g1 and its alias deleted", got)
	}
	if len(progress) != 3 || !strings.HasPrefix(progress[2], "3/3 ") {
		t.Errorf("progress %v, want one line per commit removal, 1/3 to 3/3", progress)
	}
	left := f.namespacesLeft(t)
	if left["f1000000"] || left["91000000"] || !left["c1000000"] {
		t.Errorf("left %v: want the leftover and g1 gone, the failed c1 still there", left)
	}
	if got := f.aliasIngresses(t, "gone"); len(got) != 0 {
		t.Errorf("the gone branch's alias is left in %v", got)
	}

	// Again: c1 goes now. Then --max-age removes everything unprotected.
	if res, err = f.prune(t, policy); err != nil || plan(res)["c1000000"] != "deleted" {
		t.Fatalf("second prune = %v, %v: want c1 deleted", plan(res), err)
	}
	time.Sleep(1100 * time.Millisecond)
	if res, err = f.prune(t, func(p *release.Prune) { p.MaxAge = time.Second }); err != nil {
		t.Fatalf("prune --max-age: %v", err)
	}
	for _, it := range res.Items {
		want := map[string]string{"c0000000": "holds its lock", "c2000000": "live in production", "e1000000": "alias of aliased"}[it.Short]
		if want != "" && (it.Action != "keep" || !strings.Contains(it.Reason, want)) {
			t.Errorf("--max-age: %s %s (%s), want kept: %s", it.Short, it.Action, it.Reason, want)
		}
	}
	left = f.namespacesLeft(t)
	if fmt.Sprint(left) != fmt.Sprint(map[string]bool{"c0000000": true, "c2000000": true, "e1000000": true}) {
		t.Errorf("after --max-age 1s: left %v, want only the locked, live and aliased commits", left)
	}
	f.noViolations(t, "after pruning")
}

// TestPruneRefusesBadPolicies: no policy, a negative one, or an empty
// branch list (a failed `git ls-remote`) are refused before anything.
func TestPruneRefusesBadPolicies(t *testing.T) {
	f := newDeployFixture(t)
	f.deployQuick(t, shaA, "main", commitTime(1))
	for name, m := range map[string]func(*release.Prune){
		"none":         func(*release.Prune) {},
		"negative":     func(p *release.Prune) { p.Keep = -1 },
		"empty branch": func(p *release.Prune) { p.Branches = []string{} },
	} {
		_, err := f.prune(t, m)
		var ue *release.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if left := f.namespacesLeft(t); !left["aaaaaaaa"] {
		t.Errorf("a refused prune removed a commit: %v", left)
	}
}

// TestPruneKeepsTheCanary: during a canary step (the gateway router) both
// the live commit and the canary survive a prune that removes every other
// commit.
func TestPruneKeepsTheCanary(t *testing.T) {
	f := newGatewayFixture(t)
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	f.deployQuick(t, sha("c1"), "", time.Time{})
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.promoteWeight(t, shaB, 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	res, err := f.prune(t, func(p *release.Prune) { p.MaxAge = time.Second })
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, it := range res.Items {
		reasons[it.Short] = it.Action + ": " + it.Reason
	}
	if reasons["aaaaaaaa"] != "keep: live in production" || reasons["bbbbbbbb"] != "keep: canary in production" || !strings.HasPrefix(reasons["c1000000"], "deleted") {
		t.Errorf("prune during a canary: %v", reasons)
	}
	f.noViolations(t, "after pruning during a canary")
}
