package release_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	helmrelease "helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/release"
)

// productionSize is a promote's production overlay and environment.
func productionSize(replicas int, secret string) func(*release.Promote) {
	return func(p *release.Promote) {
		p.Values = map[string]any{"production": map[string]any{
			"replicaCount": replicas,
			"resources":    map[string]any{"requests": map[string]any{"cpu": "250m"}},
			"env":          map[string]any{"TIER": "production"},
		}}
		p.Secrets = map[string]string{"DB_PASSWORD": secret}
		p.DrainDelay = 0
	}
}

// sizeOf is what commit sha's Deployment runs with: replicas, the CPU
// request, env TIER and the Secret its pods take their environment from.
type size struct {
	replicas       int32
	cpu, tier, env string
}

func (f *deployFixture) sizeOf(t *testing.T, sha string) size {
	t.Helper()
	rel := f.app + "-" + sha[:8]
	d, err := f.cs.AppsV1().Deployments(rel).Get(context.Background(), rel, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	s := size{replicas: ptr.Deref(d.Spec.Replicas, 1), cpu: c.Resources.Requests.Cpu().String()}
	for _, e := range c.Env {
		if e.Name == "TIER" {
			s.tier = e.Value
		}
	}
	if len(c.EnvFrom) > 0 {
		s.env = c.EnvFrom[0].SecretRef.Name
	}
	return s
}

// productionSecret is the production Secret's DB_PASSWORD in commit
// sha's namespace, "" when there is none.
func (f *deployFixture) productionSecret(t *testing.T, sha string) string {
	t.Helper()
	rel := f.app + "-" + sha[:8]
	s, err := f.cs.CoreV1().Secrets(rel).Get(context.Background(), rel+"-env-production", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(s.Data["DB_PASSWORD"])
}

// sizedList is the list of commits at production size.
func (f *deployFixture) sizedList(t *testing.T) []string {
	t.Helper()
	s, err := f.cs.CoreV1().Secrets(f.app+"-production").Get(context.Background(), f.app+"-production-sized", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// descriptions are the revision descriptions of commit sha's release,
// oldest first, as `helm history` shows them.
func (f *deployFixture) descriptions(t *testing.T, sha string) []string {
	t.Helper()
	rel := f.app + "-" + sha[:8]
	hist, err := f.helm(t, rel).Releases.History(rel)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(hist, func(a, b *helmrelease.Release) int { return a.Version - b.Version })
	var out []string
	for _, r := range hist {
		out = append(out, r.Info.Description)
	}
	return out
}

func TestPromoteSizesUpSwitchesAndSizesDown(t *testing.T) {
	f := newDeployFixture(t)
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	preview := size{replicas: 1, cpu: "10m"}
	if got := f.sizeOf(t, shaA); got != preview {
		t.Fatalf("a preview runs with %+v, want %+v", got, preview)
	}
	stopA := simulate(t, f.cs, f.app+"-aaaaaaaa", f.app+"-aaaaaaaa", rolloutReady)
	stopB := simulate(t, f.cs, f.app+"-bbbbbbbb", f.app+"-bbbbbbbb", rolloutReady)
	defer stopA()
	defer stopB()

	prod, err := f.promote(t, shaA, productionSize(2, "prod-secret"))
	if err != nil {
		t.Fatalf("promote a: %v", err)
	}
	if len(prod.SizedDown) != 0 {
		t.Errorf("the first promote sized down %v", prod.SizedDown)
	}
	want := size{replicas: 2, cpu: "250m", tier: "production", env: f.app + "-aaaaaaaa-env-production"}
	if got := f.sizeOf(t, shaA); got != want {
		t.Errorf("the live commit runs with %+v, want %+v", got, want)
	}
	if got := f.productionSecret(t, shaA); got != "prod-secret" {
		t.Errorf("the live commit's production Secret holds %q", got)
	}
	if got := f.sizedList(t); !slices.Equal(got, []string{"aaaaaaaa"}) {
		t.Errorf("listed at production size: %v", got)
	}
	// Secret values never enter Helm's records.
	for _, rel := range []string{f.app + "-aaaaaaaa", f.app + "-production"} {
		hist, err := f.helm(t, rel).Releases.History(rel)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range hist {
			if b, _ := json.Marshal(r); strings.Contains(string(b), "prod-secret") {
				t.Errorf("Helm's record of %s revision %d holds the production secret's value", rel, r.Version)
			}
		}
	}

	// B goes live: sized up before the switch, A sized down after it.
	prod, err = f.promote(t, shaB, productionSize(3, "prod-secret-2"))
	if err != nil {
		t.Fatalf("promote b: %v", err)
	}
	if !slices.Equal(prod.SizedDown, []string{"aaaaaaaa"}) {
		t.Errorf("promote b sized down %v, want a", prod.SizedDown)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 3 || got.env != f.app+"-bbbbbbbb-env-production" {
		t.Errorf("b live runs with %+v", got)
	}
	if got := f.sizeOf(t, shaA); got != preview {
		t.Errorf("a after leaving production runs with %+v, want its preview size %+v", got, preview)
	}
	if got := f.productionSecret(t, shaA); got != "" {
		t.Errorf("a kept production's Secret after leaving production")
	}
	if got := f.sizedList(t); !slices.Equal(got, []string{"bbbbbbbb"}) {
		t.Errorf("listed at production size: %v", got)
	}
	if got := f.live(t).Sized; !slices.Equal(got, []string{"bbbbbbbb"}) {
		t.Errorf("status says at production size: %v, want b", got)
	}
	descA := f.descriptions(t, shaA)
	if len(descA) != 3 || !strings.HasPrefix(descA[1], "shipper: sized up for production: promote of aaaaaaaa") ||
		!strings.HasPrefix(descA[2], "shipper: sized down to preview") {
		t.Errorf("helm history of a says %q", descA)
	}

	// Re-deploying the live commit keeps it at production size, with its
	// new values under the same overlay.
	if _, err := f.deploy(t, shaB, func(d *release.Deploy) {
		d.Values = map[string]any{"env": map[string]any{"EXTRA": "new"}}
	}); err != nil {
		t.Fatalf("re-deploy of the live commit: %v", err)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 3 || got.tier != "production" {
		t.Errorf("the live commit re-deployed runs with %+v, want production's size", got)
	}
	dep, err := f.cs.AppsV1().Deployments(f.app+"-bbbbbbbb").Get(context.Background(), f.app+"-bbbbbbbb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(dep.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "EXTRA" && e.Value == "new" }) {
		t.Errorf("the live commit re-deployed with env EXTRA=new runs without it: its new values were not applied")
	}

	// Rollback restores the sizing of the revision it returns to (2
	// replicas) with the rollback job's production secrets.
	rb := release.NewRollback(f.cfg)
	rb.DrainDelay, rb.Secrets = 0, map[string]string{"DB_PASSWORD": "prod-secret-3"}
	prod, err = rb.Run(context.Background(), names(t, f.app, ""), "")
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if prod.SHA != "aaaaaaaa" || !slices.Equal(prod.SizedDown, []string{"bbbbbbbb"}) {
		t.Errorf("rollback: %s live, sized down %v", prod.SHA, prod.SizedDown)
	}
	if got := f.sizeOf(t, shaA); got.replicas != 2 || got.cpu != "250m" {
		t.Errorf("a after the rollback runs with %+v, want revision 1's production size", got)
	}
	if got := f.productionSecret(t, shaA); got != "prod-secret-3" {
		t.Errorf("a's production Secret after the rollback holds %q", got)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 1 || got.tier != "" {
		t.Errorf("b after the rollback runs with %+v, want its preview size", got)
	}

	// A promote without a production block runs production at preview size.
	if _, err := f.promote(t, shaA, func(p *release.Promote) { p.DrainDelay = 0 }); err != nil {
		t.Fatalf("promote without overlay: %v", err)
	}
	if got := f.sizeOf(t, shaA); got != preview {
		t.Errorf("a promoted without a production block runs with %+v, want its preview size", got)
	}
	if got := f.sizedList(t); len(got) != 0 {
		t.Errorf("listed at production size: %v", got)
	}
}

func TestSizeUpThatFailsSwitchesNothing(t *testing.T) {
	f := newDeployFixture(t)
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	stopA := simulate(t, f.cs, f.app+"-aaaaaaaa", f.app+"-aaaaaaaa", rolloutReady)
	defer stopA()
	if _, err := f.promote(t, shaA, productionSize(2, "s")); err != nil {
		t.Fatal(err)
	}
	// B's pods crash at production size (a production-only variable that
	// makes the app exit).
	stopB := simulate(t, f.cs, f.app+"-bbbbbbbb", f.app+"-bbbbbbbb", rolloutCrashLoop)
	defer stopB()
	_, err := f.promote(t, shaB, productionSize(2, "s"))
	var re *release.RolloutError
	if !errors.As(err, &re) || re.Reason != "CrashLoopBackOff" {
		t.Fatalf("promote of a commit that crashes at production size: %v, want its CrashLoopBackOff", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "nothing was switched") {
		t.Errorf("the error does not say production was not switched: %v", msg)
	}
	var usage interface{ BadInput() bool }
	if errors.As(err, &usage) {
		t.Errorf("a failed size-up is not bad input (exit 1): %v", err)
	}
	if live := f.live(t); live.SHA != "aaaaaaaa" {
		t.Errorf("production serves %s after a failed size-up", live.SHA)
	}
	if got := f.productionIngresses(t); !slices.Equal(got, []string{f.app + "-aaaaaaaa"}) {
		t.Errorf("production routed from %v", got)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 1 || got.tier != "" || got.env != "" {
		t.Errorf("b after its failed size-up runs with %+v, want its preview size", got)
	}
	if got := f.productionSecret(t, shaB); got != "" {
		t.Errorf("b kept production's Secret after its failed size-up")
	}
	if got := f.sizedList(t); !slices.Equal(got, []string{"aaaaaaaa"}) {
		t.Errorf("listed at production size: %v", got)
	}
	desc := f.descriptions(t, shaB)
	if len(desc) < 2 || !strings.Contains(desc[len(desc)-1], "Rollback to 1") {
		t.Errorf("helm history of b: %q, want the size-up rolled back", desc)
	}
}

// newSizedFixture deploys commits A and B, keeps both available (the
// simulated controller, until the test ends) and promotes A at 2 replicas.
func newSizedFixture(t *testing.T) *deployFixture {
	t.Helper()
	f := newDeployFixture(t)
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	simulate(t, f.cs, f.app+"-aaaaaaaa", f.app+"-aaaaaaaa", rolloutReady)
	simulate(t, f.cs, f.app+"-bbbbbbbb", f.app+"-bbbbbbbb", rolloutReady)
	if _, err := f.promote(t, shaA, productionSize(2, "s")); err != nil {
		t.Fatal(err)
	}
	return f
}

// A size-down cut off (the job cancelled while draining) is done by the
// next promote.
func TestSizeDownLeftByACancelledJobIsDoneNext(t *testing.T) {
	f := newSizedFixture(t)
	// The test's own bound, should the watcher below never see the switch.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := release.NewPromote(f.cfg)
	p.Hosts = release.Hosts{Domain: "example.com"}
	productionSize(2, "s")(p)
	p.DrainDelay = time.Hour
	app := names(t, f.app, "")
	go func() {
		// Cancelled once the switch is done and the drain has begun.
		status := release.NewStatus(f.cfg)
		for ctx.Err() == nil {
			if live, err := status.Production(ctx, app); err == nil && live.SHA == "bbbbbbbb" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	if _, err := p.Run(ctx, names(t, f.app, shaB)); err != nil {
		t.Fatalf("promote cancelled while draining: %v", err)
	}
	if got := f.sizeOf(t, shaA); got.replicas != 2 {
		t.Fatalf("a sized down %+v although the drain was cut", got)
	}
	if got := f.sizedList(t); !slices.Equal(got, []string{"aaaaaaaa", "bbbbbbbb"}) {
		t.Errorf("listed at production size: %v", got)
	}
	// The next operation, whatever commit it promotes, finishes it.
	prod, err := f.promote(t, shaB, productionSize(2, "s"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prod.SizedDown, []string{"aaaaaaaa"}) {
		t.Errorf("the next promote sized down %v", prod.SizedDown)
	}
	if got := f.sizeOf(t, shaA); got.replicas != 1 || got.env != "" {
		t.Errorf("a after the next promote runs with %+v", got)
	}
	// The size-down is a revision of a's release; the promote of the live
	// commit with the same size changed nothing of b's.
	if desc := f.descriptions(t, shaB); len(desc) != 2 {
		t.Errorf("helm history of b: %q, want deploy and one size-up", desc)
	}
}

// A values file cannot size a preview: the live block is shipper's.
func TestValuesCannotSetTheLiveBlock(t *testing.T) {
	f := newDeployFixture(t)
	stop := simulate(t, f.cs, f.app+"-aaaaaaaa", f.app+"-aaaaaaaa", rolloutReady)
	defer stop()
	if _, err := f.deploy(t, shaA, func(d *release.Deploy) {
		d.Values = map[string]any{"live": map[string]any{"enabled": true, "replicaCount": 9}}
	}); err != nil {
		t.Fatal(err)
	}
	if got := f.sizeOf(t, shaA); got.replicas != 1 {
		t.Errorf("a values file's live block sized a preview to %d replicas", got.replicas)
	}
}

// A size-up killed after Helm applied it (its revision left
// pending-upgrade, with the live block): the next promote or rollback
// sizes the commit down from that revision, and a deploy of it does not
// carry the block of a revision that never became its deployed one.
func TestSizeUpKilledMidUpgradeIsSizedDownNext(t *testing.T) {
	f := newSizedFixture(t)
	// What the killed job of B's promote left: B listed, and its release
	// upgraded to A's live block (a valid one) but recorded pending.
	relA, relB := f.app+"-aaaaaaaa", f.app+"-bbbbbbbb"
	liveA, err := f.helm(t, relA).Releases.Deployed(relA)
	if err != nil {
		t.Fatal(err)
	}
	cfgB := f.helm(t, relB)
	cfgB.KubeClient.(*kube.Client).Namespace = relB // objects too, not only records
	depB, err := cfgB.Releases.Deployed(relB)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	for k, v := range depB.Config {
		vals[k] = v
	}
	vals["live"] = liveA.Config["live"]
	up := helmaction.NewUpgrade(cfgB)
	up.Namespace = relB
	killed, err := up.Run(relB, depB.Chart, vals)
	if err != nil {
		t.Fatal(err)
	}
	killed.SetStatus(helmrelease.StatusPendingUpgrade, "Preparing upgrade")
	if err := cfgB.Releases.Update(killed); err != nil {
		t.Fatal(err)
	}
	list, err := f.cs.CoreV1().Secrets(f.app+"-production").Get(context.Background(), f.app+"-production-sized", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list.Data["bbbbbbbb"] = []byte("2026-12-02T00:00:00Z")
	if _, err := f.cs.CoreV1().Secrets(f.app+"-production").Update(context.Background(), list, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 2 {
		t.Fatalf("the emulated kill left b at %+v", got)
	}

	prod, err := f.promote(t, shaA, productionSize(2, "s"))
	if err != nil {
		t.Fatalf("the next promote: %v", err)
	}
	if !slices.Equal(prod.SizedDown, []string{"bbbbbbbb"}) {
		t.Errorf("the next promote sized down %v, want b", prod.SizedDown)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 1 || got.env != "" || got.tier != "" {
		t.Errorf("b after the next promote runs with %+v, want its preview size", got)
	}
	if _, err := f.deploy(t, shaB); err != nil {
		t.Fatalf("deploy of b after the repair: %v", err)
	}
	if got := f.sizeOf(t, shaB); got.replicas != 1 {
		t.Errorf("deploy of b carried a live block: %+v", got)
	}
	if got := f.sizedList(t); !slices.Equal(got, []string{"aaaaaaaa"}) {
		t.Errorf("listed at production size: %v", got)
	}
}
