package release_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

const (
	shaA = "aaaaaaaa11111111111111111111111111111111"
	shaB = "bbbbbbbb22222222222222222222222222222222"
)

// deployReady deploys sha with the simulated cluster making it available.
func (f *deployFixture) deployReady(t *testing.T, sha string) *release.Commit {
	t.Helper()
	rel := f.app + "-" + sha[:8]
	stop := simulate(t, f.cs, rel, rel, rolloutReady)
	defer stop()
	c, err := f.deploy(t, sha)
	if err != nil {
		t.Fatalf("deploy %s: %v", sha[:8], err)
	}
	return c
}

func (f *deployFixture) promote(t *testing.T, sha string, mutate ...func(*release.Promote)) (*release.Production, error) {
	t.Helper()
	n, err := release.NewNames(f.app, sha)
	if err != nil {
		return nil, err
	}
	p := release.NewPromote(f.cfg)
	p.Hosts = release.Hosts{Domain: "example.com"}
	for _, m := range mutate {
		m(p)
	}
	return p.Run(context.Background(), n)
}

// productionIngresses returns the namespaces holding the app's production
// Ingress.
func (f *deployFixture) productionIngresses(t *testing.T) []string {
	t.Helper()
	return f.routeIngresses(t, release.RoleProduction, f.app+"-production", f.app+".example.com")
}

// routeIngresses returns the namespaces holding the app's Ingress name of
// role (production, alias), each checked to route host to its own
// namespace's Service.
func (f *deployFixture) routeIngresses(t *testing.T, role, name, host string) []string {
	t.Helper()
	list, err := f.cs.NetworkingV1().Ingresses("").List(context.Background(), metav1.ListOptions{
		LabelSelector: "shipper.dev/role=" + role + ",shipper.dev/app=" + f.app,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ing := range list.Items {
		if ing.Name != name {
			continue
		}
		out = append(out, ing.Namespace)
		if got := ing.Spec.Rules[0].Host; got != host {
			t.Errorf("%s Ingress in %s routes host %q, want %q", role, ing.Namespace, got, host)
		}
		if got := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != ing.Namespace {
			t.Errorf("%s Ingress in %s routes to Service %q, want its namespace's", role, ing.Namespace, got)
		}
	}
	return out
}

func (f *deployFixture) live(t *testing.T) *release.Production {
	t.Helper()
	p, err := release.NewStatus(f.cfg).Production(context.Background(), names(t, f.app, ""))
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return p
}

func TestPromoteRollbackDelete(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	nsA, nsB := f.app+"-aaaaaaaa", f.app+"-bbbbbbbb"
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)

	p, err := f.promote(t, shaA)
	if err != nil {
		t.Fatalf("promote A: %v", err)
	}
	if p.SHA != "aaaaaaaa" || p.Revision != 1 || p.URL != "https://"+f.app+".example.com" {
		t.Errorf("promote A = %+v, want sha aaaaaaaa, revision 1, https://%s.example.com", p, f.app)
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != nsA {
		t.Errorf("production Ingresses in %v, want [%s]", got, nsA)
	}

	// Promote B while watching the production Ingresses: the new route
	// must be added before the old one is deleted.
	events := watchProductionIngresses(t, f)
	if p, err = f.promote(t, shaB); err != nil {
		t.Fatalf("promote B: %v", err)
	}
	order := events()
	if p.SHA != "bbbbbbbb" || p.Revision != 2 {
		t.Errorf("promote B = %+v, want bbbbbbbb revision 2", p)
	}
	added, deleted := indexOf(order, "ADDED "+nsB), indexOf(order, "DELETED "+nsA)
	if added < 0 || deleted < 0 || added > deleted {
		t.Errorf("Ingress events %v: want ADDED %s before DELETED %s", order, nsB, nsA)
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != nsB {
		t.Errorf("production Ingresses in %v, want [%s]", got, nsB)
	}

	rollback := func(to string) *release.Production {
		t.Helper()
		p, err := release.NewRollback(f.cfg).Run(ctx, names(t, f.app, ""), to)
		if err != nil {
			t.Fatalf("rollback %q: %v", to, err)
		}
		if live := f.live(t); live.SHA != p.SHA || live.Revision != p.Revision {
			t.Errorf("status after rollback = %s rev %d, rollback said %s rev %d", live.SHA, live.Revision, p.SHA, p.Revision)
		}
		return p
	}
	for _, step := range []struct {
		to, wantSHA string
		wantRev     int
	}{
		{"", "aaaaaaaa", 3},       // back to the previous promotion
		{"", "bbbbbbbb", 4},       // twice undoes the first
		{shaA[:7], "aaaaaaaa", 5}, // to a SHA
		{"2", "bbbbbbbb", 6},      // to a revision
	} {
		p := rollback(step.to)
		if p.SHA != step.wantSHA || p.Revision != step.wantRev {
			t.Errorf("rollback %q = %s rev %d, want %s rev %d", step.to, p.SHA, p.Revision, step.wantSHA, step.wantRev)
		}
		want := f.app + "-" + step.wantSHA
		if got := f.productionIngresses(t); len(got) != 1 || got[0] != want {
			t.Errorf("after rollback %q production Ingresses in %v, want [%s]", step.to, got, want)
		}
	}

	// B is live: deleting it is refused with the command to run first.
	_, err = release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaB))
	if !release.IsUsage(err) || !strings.Contains(err.Error(), "is live in production") || !strings.Contains(err.Error(), "shipper promote") {
		t.Fatalf("delete of the live commit: err = %v, want a refusal naming the command to run", err)
	}
	if _, err := f.cs.CoreV1().Namespaces().Get(ctx, nsB, metav1.GetOptions{}); err != nil {
		t.Errorf("refused delete touched namespace %s: %v", nsB, err)
	}

	// A is not live: it goes, release and namespace.
	d, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaA))
	if err != nil || d.Gone {
		t.Fatalf("delete A = %+v, %v", d, err)
	}
	if rec, err := f.helm(t, nsA).Releases.History(nsA); err == nil && len(rec) > 0 {
		t.Errorf("release %s still has %d records after delete", nsA, len(rec))
	}
	ns, err := f.cs.CoreV1().Namespaces().Get(ctx, nsA, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("namespace %s not being deleted", nsA)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}

	// Rolling back to the deleted commit is refused; production is unchanged.
	if _, err := release.NewRollback(f.cfg).Run(ctx, names(t, f.app, ""), shaA); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("rollback to a deleted commit: err = %v, want a refusal", err)
	}
	if live := f.live(t); live.SHA != "bbbbbbbb" || live.Revision != 6 {
		t.Errorf("production after refused rollback = %s rev %d, want bbbbbbbb rev 6", live.SHA, live.Revision)
	}

	// A GitLab stop job that runs again succeeds with a note.
	d, err = release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaA))
	if err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if !d.Gone {
		// The namespace can still be terminating here (no namespace
		// controller in this harness); the release is gone either way.
		t.Logf("second delete found the namespace terminating: %+v", d)
	}

	// List: B live, A no longer deployed.
	commits, err := release.NewList(f.cfg).Run(ctx, names(t, f.app, ""))
	if err != nil {
		t.Fatal(err)
	}
	var sawB bool
	for _, c := range commits {
		switch c.Short {
		case "bbbbbbbb":
			sawB = true
			if !c.Live || c.Status != "deployed" || c.URL != "https://"+nsB+".preview.example.com" || c.SHA != shaB {
				t.Errorf("list entry for B = %+v, want live, deployed, its URL and full SHA", c)
			}
		case "aaaaaaaa":
			if c.Status == "deployed" || c.Live {
				t.Errorf("list entry for deleted A = %+v", c)
			}
		}
	}
	if !sawB {
		t.Errorf("list %+v lacks B", commits)
	}
}

// TestHelmCLISeesShipperReleases runs the real helm binary against what
// shipper created, and has shipper read a rollback made with it.
func TestHelmCLISeesShipperReleases(t *testing.T) {
	f := newDeployFixture(t)
	helmBin, err := testenv.Binary("helm")
	if err != nil {
		t.Fatal(err)
	}
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	if _, err := f.promote(t, shaB); err != nil {
		t.Fatal(err)
	}
	prodNS := f.app + "-production"
	helm := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(helmBin, append(args, "--kubeconfig", f.env.Kubeconfig)...)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// helm list -A shows each release, deployed in its own namespace, with
	// the commit it runs as its APP VERSION (production: the live one).
	appVersions := func() map[string]string {
		t.Helper()
		var list []struct {
			Name, Namespace, Status, Revision string
			AppVersion                        string `json:"app_version"`
		}
		if err := json.Unmarshal(helm("list", "-A", "-o", "json"), &list); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range list {
			if r.Status == "deployed" && r.Namespace == r.Name {
				got[r.Name] = r.AppVersion
			}
		}
		return got
	}
	got := appVersions()
	for name, version := range map[string]string{f.app + "-aaaaaaaa": "aaaaaaaa", f.app + "-bbbbbbbb": "bbbbbbbb", prodNS: "bbbbbbbb"} {
		if got[name] != version {
			t.Errorf("helm list -A: %s deployed in its own namespace with app version %q, want %q (all: %v)", name, got[name], version, got)
		}
	}

	var hist []struct {
		Revision int
		Status   string
	}
	if err := json.Unmarshal(helm("history", prodNS, "-n", prodNS, "-o", "json"), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Status != "superseded" || hist[1].Status != "deployed" {
		t.Errorf("helm history %s = %+v, want revisions 1 superseded, 2 deployed", prodNS, hist)
	}

	helm("rollback", prodNS, "1", "-n", prodNS)
	live := f.live(t)
	if live.SHA != "aaaaaaaa" || live.Revision != 3 {
		t.Errorf("status after helm rollback = %s rev %d, want aaaaaaaa rev 3", live.SHA, live.Revision)
	}
	if v := appVersions()[prodNS]; v != "aaaaaaaa" {
		t.Errorf("helm list -A after helm rollback: production app version %q, want aaaaaaaa", v)
	}
	if got := f.productionIngresses(t); len(got) != 1 || got[0] != f.app+"-aaaaaaaa" {
		t.Errorf("after helm rollback production Ingresses in %v", got)
	}
}

// watchProductionIngresses records ADDED/DELETED events of the app's
// production Ingresses until the returned function is called.
func watchProductionIngresses(t *testing.T, f *deployFixture) func() []string {
	return watchIngresses(t, f, release.RoleProduction)
}

// watchIngresses records ADDED/DELETED events of the app's Ingresses of
// role (production, alias) until the returned function is called.
func watchIngresses(t *testing.T, f *deployFixture, role string) func() []string {
	t.Helper()
	w, err := f.cs.NetworkingV1().Ingresses("").Watch(context.Background(), metav1.ListOptions{
		LabelSelector: "shipper.dev/role=" + role + ",shipper.dev/app=" + f.app,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			ing, ok := ev.Object.(*networkingv1.Ingress)
			if !ok || ev.Type == watch.Modified {
				continue
			}
			mu.Lock()
			events = append(events, string(ev.Type)+" "+ing.Namespace)
			mu.Unlock()
		}
	}()
	return func() []string {
		time.Sleep(300 * time.Millisecond) // let the last events arrive
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return events
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
