package release_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
)

// commitTime is a fixed commit time, i hours after a base.
func commitTime(i int) time.Time {
	return time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
}

// deployBranch deploys sha from branch ref, committed at when (zero: none
// given), the simulated cluster making it available.
func (f *deployFixture) deployBranch(t *testing.T, sha, ref string, when time.Time) (*release.Commit, error) {
	t.Helper()
	rel := f.app + "-" + sha[:8]
	stop := simulate(t, f.cs, rel, rel, rolloutReady)
	defer stop()
	n, err := release.NewNames(f.app, sha)
	if err != nil {
		return nil, err
	}
	if n, err = n.WithRef(ref); err != nil {
		return nil, err
	}
	d := release.NewDeploy(f.cfg)
	d.Hosts = release.Hosts{Domain: "preview.example.com"}
	d.Timeout, d.CommitTime = 45*time.Second, when
	return d.Run(context.Background(), n, f.image)
}

// aliasIngresses are the namespaces holding the Ingress of ref's alias,
// each checked to route the alias host to its own namespace's Service.
func (f *deployFixture) aliasIngresses(t *testing.T, ref string) []string {
	t.Helper()
	return f.routeIngresses(t, release.RoleAlias, f.app+"-ref-"+ref, f.app+"--"+ref+".preview.example.com")
}

// deleteCommit deletes sha; with a ref, as that branch's stop job does
// (--with-alias).
func (f *deployFixture) deleteCommit(sha, ref string) (*release.Deleted, error) {
	n, err := release.NewNames(f.app, sha)
	if err != nil {
		return nil, err
	}
	d := release.NewDelete(f.cfg)
	if ref != "" {
		if n, err = n.WithRef(ref); err != nil {
			return nil, err
		}
		d.WithAlias = true
	}
	return d.Run(context.Background(), n)
}

func (f *deployFixture) commits(t *testing.T) map[string]release.Commit {
	t.Helper()
	list, err := release.NewList(f.cfg).Run(context.Background(), names(t, f.app, ""))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]release.Commit{}
	for _, c := range list {
		out[c.Short] = c
	}
	return out
}

func (f *deployFixture) noViolations(t *testing.T, when string) {
	t.Helper()
	problems, err := release.NewStatus(f.cfg).Check(context.Background(), names(t, f.app, ""))
	if err != nil {
		t.Fatalf("%s: checking invariants: %v", when, err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", when, p)
	}
}

// TestBranchAliasFollowsTheNewestCommit (ingress router): a deploy from a
// branch points its alias at the commit; a newer commit moves it (the new
// Ingress before the old one goes); a re-run job of an older commit never
// moves it back; list shows it; delete refuses the commit it serves unless
// --with-alias, which takes the alias too; `helm history` has one revision
// per move.
func TestBranchAliasFollowsTheNewestCommit(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	nsA, nsB := f.app+"-aaaaaaaa", f.app+"-bbbbbbbb"

	a, err := f.deployBranch(t, shaA, "main", commitTime(1))
	if err != nil {
		t.Fatalf("deploy A: %v", err)
	}
	if a.Alias == nil || !a.Alias.Moved || a.Alias.SHA != "aaaaaaaa" || a.Alias.URL != "https://"+f.app+"--main.preview.example.com" {
		t.Fatalf("deploy A alias = %+v, want moved to aaaaaaaa at https://%s--main.preview.example.com", a.Alias, f.app)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 1 || got[0] != nsA {
		t.Fatalf("alias Ingresses in %v, want [%s]", got, nsA)
	}

	events := watchIngresses(t, f, release.RoleAlias)
	b, err := f.deployBranch(t, shaB, "main", commitTime(2))
	if err != nil {
		t.Fatalf("deploy B: %v", err)
	}
	order := events()
	if !b.Alias.Moved || b.Alias.SHA != "bbbbbbbb" {
		t.Errorf("deploy B alias = %+v, want moved to bbbbbbbb", b.Alias)
	}
	added, deleted := indexOf(order, "ADDED "+nsB), indexOf(order, "DELETED "+nsA)
	if added < 0 || deleted < 0 || added > deleted {
		t.Errorf("alias Ingress events %v: want ADDED %s before DELETED %s (never no route)", order, nsB, nsA)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 1 || got[0] != nsB {
		t.Errorf("alias Ingresses in %v, want [%s]", got, nsB)
	}

	// The pipeline of the older commit re-run: deployed again, alias stays.
	again, err := f.deployBranch(t, shaA, "main", commitTime(1))
	if err != nil {
		t.Fatalf("deploy A again: %v", err)
	}
	if again.Alias.Moved || again.Alias.SHA != "bbbbbbbb" || !strings.Contains(again.Alias.Note, "newer commit") {
		t.Errorf("re-deploy of older A: alias = %+v, want left on bbbbbbbb with a note", again.Alias)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 1 || got[0] != nsB {
		t.Errorf("after re-deploying A: alias Ingresses in %v, want [%s]", got, nsB)
	}

	commits := f.commits(t)
	if got := commits["bbbbbbbb"].Aliases; len(got) != 1 || got[0] != "main" {
		t.Errorf("list: B aliases = %v, want [main]", got)
	}
	if got := commits["aaaaaaaa"]; len(got.Aliases) != 0 || got.Ref != "main" {
		t.Errorf("list: A = ref %q aliases %v, want ref main, no alias", got.Ref, got.Aliases)
	}
	if hist := helmHistory(t, f, f.app+"-production", f.app+"-ref-main"); len(hist) != 2 {
		t.Errorf("helm history of the alias: %d revisions (%v), want 2: one per move", len(hist), hist)
	}
	f.noViolations(t, "after the moves")

	// Delete: the commit the alias serves is refused, with the way out.
	_, err = f.deleteCommit(shaB, "")
	var ue *release.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--with-alias") {
		t.Fatalf("delete B = %v, want a usage error naming --with-alias", err)
	}
	if ns, err := f.cs.CoreV1().Namespaces().Get(ctx, nsB, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("refused delete changed something: namespace %s: %v", nsB, err)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 1 {
		t.Errorf("refused delete changed the alias: Ingresses in %v", got)
	}
	if _, err := f.deleteCommit(shaA, ""); err != nil {
		t.Errorf("delete A (no alias serves it): %v", err)
	}
	d, err := f.deleteCommit(shaB, "main")
	if err != nil {
		t.Fatalf("delete B --with-alias: %v", err)
	}
	if len(d.Aliases) != 1 || d.Aliases[0] != "main" {
		t.Errorf("delete B --with-alias deleted aliases %v, want [main]", d.Aliases)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 0 {
		t.Errorf("alias Ingresses left in %v after delete --with-alias", got)
	}
	if hist := helmHistory(t, f, f.app+"-production", f.app+"-ref-main"); len(hist) > 0 {
		t.Errorf("alias release still has %d revisions after delete --with-alias", len(hist))
	}
	f.noViolations(t, "after delete --with-alias")
}

// TestBranchAliasConcurrentDeploys: three commits of one branch deployed at
// once, in any order, leave the alias on the newest, routed once; without
// commit times, the order of first deploys decides.
func TestBranchAliasConcurrentDeploys(t *testing.T) {
	f := newDeployFixture(t)
	shas := []string{
		"c1c1c1c1" + strings.Repeat("1", 32),
		"c2c2c2c2" + strings.Repeat("2", 32),
		"c3c3c3c3" + strings.Repeat("3", 32),
	}
	var wg sync.WaitGroup
	errs := make([]error, len(shas))
	// The newest first: it is the one a later, older deploy must not undo.
	for i := len(shas) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.deployBranch(t, shas[i], "feature/login", commitTime(i))
		}()
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("deploy %d: %v", i, err)
		}
	}
	if got := f.aliasIngresses(t, "feature-login"); len(got) != 1 || got[0] != f.app+"-c3c3c3c3" {
		t.Errorf("alias Ingresses in %v, want only in the newest commit's namespace", got)
	}
	f.noViolations(t, "after concurrent deploys")

	// No commit times: the first deployed is the older.
	for _, sha := range []string{shaA, shaB} {
		if _, err := f.deployBranch(t, sha, "no-times", time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := f.deployBranch(t, shaA, "no-times", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Alias.Moved || c.Alias.SHA != "bbbbbbbb" {
		t.Errorf("re-deploy of the first deployed commit moved the alias: %+v", c.Alias)
	}
}

// TestBranchAliasRepairsAStrayRoute: an alias move killed between Helm's
// creation of the new route and its deletion of the old leaves two routes
// and a pending revision; the next deploy of the branch repairs both, even
// one of an older commit that does not move the alias.
func TestBranchAliasRepairsAStrayRoute(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	if _, err := f.deployBranch(t, shaA, "main", commitTime(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.deployBranch(t, shaB, "main", commitTime(2)); err != nil {
		t.Fatal(err)
	}
	// The state a kill leaves: the old Ingress back in A's namespace, the
	// newest revision pending.
	live, err := f.cs.NetworkingV1().Ingresses(f.app+"-bbbbbbbb").Get(ctx, f.app+"-ref-main", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stray := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: live.Name, Namespace: f.app + "-aaaaaaaa", Labels: live.Labels}, Spec: *live.Spec.DeepCopy()}
	stray.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = f.app + "-aaaaaaaa"
	if _, err := f.cs.NetworkingV1().Ingresses(stray.Namespace).Create(ctx, stray, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store := f.helm(t, f.app+"-production").Releases
	last, err := store.Last(f.app + "-ref-main")
	if err != nil {
		t.Fatal(err)
	}
	pending := *last
	pending.Version++
	pending.Info = &helmrelease.Info{Status: helmrelease.StatusPendingUpgrade}
	if err := store.Create(&pending); err != nil {
		t.Fatal(err)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 2 {
		t.Fatalf("setup: alias Ingresses in %v, want two", got)
	}
	// The re-run pipeline of the older commit: no move, but a repair.
	c, err := f.deployBranch(t, shaA, "main", commitTime(1))
	if err != nil {
		t.Fatal(err)
	}
	if c.Alias.Moved || c.Alias.SHA != "bbbbbbbb" {
		t.Errorf("older commit moved the alias: %+v", c.Alias)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 1 || got[0] != f.app+"-bbbbbbbb" {
		t.Errorf("after the next deploy: alias Ingresses in %v, want only B's", got)
	}
	if rel, err := store.Get(f.app+"-ref-main", pending.Version); err != nil || rel.Info.Status.IsPending() {
		t.Errorf("the pending revision after the next deploy: %v, %v; want repaired", rel.Info.Status, err)
	}
	f.noViolations(t, "after the repair")
}

// TestDeleteWithAliasTakesOnlyItsBranch: one commit served by the aliases
// of two branches (a branch made from main): the stop job of one branch
// removes that branch's alias and keeps the commit, which the other still
// serves (exit 0, saying why); the other branch's stop job then removes
// both; a stop job run again, or after its commit is gone, still removes
// the branch's alias.
func TestDeleteWithAliasTakesOnlyItsBranch(t *testing.T) {
	f := newDeployFixture(t)
	for _, ref := range []string{"main", "feature"} {
		if _, err := f.deployBranch(t, shaA, ref, commitTime(1)); err != nil {
			t.Fatalf("deploy A from %s: %v", ref, err)
		}
	}
	if got := f.commits(t)["aaaaaaaa"].Aliases; len(got) != 2 {
		t.Fatalf("A aliases = %v, want main and feature", got)
	}
	d, err := f.deleteCommit(shaA, "feature")
	if err != nil {
		t.Fatalf("stop job of feature: %v", err)
	}
	if len(d.Aliases) != 1 || d.Aliases[0] != "feature" || !strings.Contains(d.Kept, "branch main") {
		t.Errorf("stop job of feature = %+v, want feature's alias deleted and A kept for main", d)
	}
	if got := f.aliasIngresses(t, "main"); len(got) != 1 {
		t.Errorf("main's alias Ingresses %v, want it untouched", got)
	}
	if got := f.aliasIngresses(t, "feature"); len(got) != 0 {
		t.Errorf("feature's alias Ingresses %v, want none", got)
	}
	if d, err = f.deleteCommit(shaA, "main"); err != nil || d.Kept != "" || len(d.Aliases) != 1 {
		t.Fatalf("stop job of main = %+v, %v: want the alias and the commit deleted", d, err)
	}
	if left := f.namespacesLeft(t); left["aaaaaaaa"] {
		t.Errorf("A still there: %v", left)
	}
	// A branch whose alias serves another commit than the job's, the
	// job's commit gone: the alias still goes.
	if _, err := f.deployBranch(t, shaB, "other", commitTime(2)); err != nil {
		t.Fatal(err)
	}
	if d, err = f.deleteCommit(shaA, "other"); err != nil || !d.Gone || len(d.Aliases) != 1 {
		t.Errorf("stop job of other with its commit gone = %+v, %v: want the alias deleted", d, err)
	}
	if got := f.aliasIngresses(t, "other"); len(got) != 0 {
		t.Errorf("other's alias Ingresses %v after its stop job", got)
	}
	f.noViolations(t, "after the stop jobs")
}

// helmHistory is `helm history` of release in namespace, as revision
// numbers (none when the release is gone).
func helmHistory(t *testing.T, f *deployFixture, namespace, release string) []int {
	t.Helper()
	rels, err := f.helm(t, namespace).Releases.History(release)
	if err != nil {
		return nil
	}
	var out []int
	for _, r := range rels {
		out = append(out, r.Version)
	}
	return out
}
