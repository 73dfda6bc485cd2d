package release_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
)

func TestDeleteLeavesForeignNamespacesAlone(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()

	// kube-system as an app name addresses "kube-system-<sha>", never kube-system.
	d, err := release.NewDelete(f.cfg).Run(ctx, names(t, "kube-system", shaA))
	if err != nil || !d.Gone {
		t.Errorf("delete of app kube-system = %+v, %v; want already gone", d, err)
	}
	if _, err := f.cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("kube-system: %v", err)
	}

	foreign := f.app + "-aaaaaaaa"
	_, err = f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: foreign}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.cs.CoreV1().Namespaces().Delete(ctx, foreign, metav1.DeleteOptions{}) })
	if _, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, shaA)); err == nil || !strings.Contains(err.Error(), "not created by shipper") {
		t.Errorf("delete of a foreign namespace: err = %v, want a refusal", err)
	}
	ns, err := f.cs.CoreV1().Namespaces().Get(ctx, foreign, metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("foreign namespace %s was touched: %v %v", foreign, err, ns.DeletionTimestamp)
	}
}
