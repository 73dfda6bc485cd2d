package release

import (
	"context"
	"fmt"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestUndecodableRecords: a release record that does not decode (Helm
// 3.22's Secrets.Get panics on one) neither crashes repairPending, which
// falls back to Helm's Last (it skips such records), nor pruneHistory,
// which deletes records by name without reading them.
func TestUndecodableRecords(t *testing.T) {
	env, cs, ns := scratchNamespace(t, "undecodable")
	ctx := context.Background()
	c, err := NewConfiguration(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.helm(ns)
	if err != nil {
		t.Fatal(err)
	}
	good := &release.Release{Name: "rel", Namespace: ns, Version: 1, Info: &release.Info{Status: release.StatusDeployed}}
	if err := cfg.Releases.Create(good); err != nil {
		t.Fatal(err)
	}
	for v := 2; v <= 4; v++ { // newer revisions whose data is not a release
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sh.helm.release.v1.rel.v%d", v), Labels: map[string]string{
				"owner": "helm", "name": "rel", "version": fmt.Sprint(v), "status": "superseded"}},
			Type: "helm.sh/release.v1", Data: map[string][]byte{"release": []byte("not a release")},
		}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	last, history, err := c.repairPending(ctx, cfg, ns, "rel")
	if err != nil || last == nil || last.Version != 1 {
		t.Fatalf("repairPending = %v, %v; want revision 1, the newest that decodes", last, err)
	}
	if len(history) != 4 {
		t.Fatalf("repairPending listed %d revisions, want 4", len(history))
	}
	c.pruneHistory(ctx, history, 1, 0)
	left, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 1 || left.Items[0].Labels["version"] != "1" {
		var names []string
		for _, s := range left.Items {
			names = append(names, s.Name)
		}
		t.Errorf("records left = %v, want revision 1 alone (deployed; the undecodable 2-4 pruned)", names)
	}
}

// scratchNamespace is the test environment, its admin clientset and a
// namespace made for one test, deleted after it.
func scratchNamespace(t *testing.T, prefix string) (*testenv.Env, kubernetes.Interface, string) {
	t.Helper()
	env := testenv.Get(t)
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return env, cs, ns
}
