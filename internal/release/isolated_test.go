package release

import (
	"context"
	"log/slog"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestKeepIsolatedReadsOneObjectWhenStamped: a namespace whose
// NetworkPolicy carries the stamp of the settings' objects costs one GET;
// one whose objects are missing, or were made under other settings, takes
// the whole way and ends stamped.
func TestKeepIsolatedReadsOneObjectWhenStamped(t *testing.T) {
	ctx := context.Background()
	iso, err := parseIsolation(Settings{})
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewSimpleClientset()
	c := &Configuration{client: cs, log: slog.New(slog.DiscardHandler)}
	const ns = "app-c0ffee00"

	// A namespace a job killed before its isolation objects: repaired.
	if err := c.keepIsolated(ctx, ns, iso); err != nil {
		t.Fatal(err)
	}
	np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, IsolationPolicy, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the NetworkPolicy after the repair: %v", err)
	}
	wnp, wrq, wlr := iso.objects(ns)
	if got := np.Annotations[AnnotationIsolation]; got != isolationStamp(wnp, wrq, wlr) {
		t.Errorf("stamp %q, want %q", got, isolationStamp(wnp, wrq, wlr))
	}
	for _, err := range []error{
		func() error {
			_, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, IsolationQuota, metav1.GetOptions{})
			return err
		}(),
		func() error {
			_, err := cs.CoreV1().LimitRanges(ns).Get(ctx, IsolationQuota, metav1.GetOptions{})
			return err
		}(),
	} {
		if err != nil {
			t.Errorf("after the repair: %v", err)
		}
	}

	// Stamped: one GET, of the NetworkPolicy.
	cs.ClearActions()
	if err := c.keepIsolated(ctx, ns, iso); err != nil {
		t.Fatal(err)
	}
	if a := cs.Actions(); len(a) != 1 || a[0].GetVerb() != "get" || a[0].GetResource().Resource != "networkpolicies" {
		t.Errorf("a stamped namespace: %d requests (%v), want one GET of its NetworkPolicy", len(a), verbs(a))
	}

	// Other settings: the objects brought to them, the stamp with them.
	other, err := parseIsolation(Settings{Found: true, Data: map[string]string{"quota.pods": "9"}})
	if err != nil {
		t.Fatal(err)
	}
	cs.ClearActions()
	if err := c.keepIsolated(ctx, ns, other); err != nil {
		t.Fatal(err)
	}
	rq, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, IsolationQuota, metav1.GetOptions{})
	if err != nil || rq.Spec.Hard.Pods().String() != "9" {
		t.Errorf("quota pods after the settings changed: %v, %v; want 9", rq.Spec.Hard.Pods(), err)
	}
	np, _ = cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, IsolationPolicy, metav1.GetOptions{})
	onp, orq, olr := other.objects(ns)
	if np.Annotations[AnnotationIsolation] != isolationStamp(onp, orq, olr) {
		t.Errorf("the stamp after the settings changed is not theirs")
	}
}

func verbs(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
	}
	return out
}
