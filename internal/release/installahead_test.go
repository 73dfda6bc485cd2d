package release_test

import (
	"context"
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
)

// releaseLeft lists what of release ns exists in namespace ns: its
// records, and its Service, Deployment and Ingress.
func releaseLeft(t *testing.T, f *deployFixture, ns string) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	records, err := f.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range records.Items {
		left = append(left, "record "+s.Name+" "+s.Labels["status"])
	}
	if _, err := f.cs.CoreV1().Services(ns).Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "Service")
	}
	if _, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "Deployment")
	}
	if _, err := f.cs.NetworkingV1().Ingresses(ns).Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "Ingress")
	}
	return left
}

// TestInstallAheadGivenUpWritesNothing: an install started ahead of its
// lock, whose first write waits at its gate, leaves nothing in the cluster
// when it is given up (a deploy that could not isolate its namespace, a
// Lease it did not make, a cancelled job): no record, failed or pending,
// and no resource; it fails.
func TestInstallAheadGivenUpWritesNothing(t *testing.T) {
	f := newDeployFixture(t)
	n, err := release.NewNames(f.app, testSHA)
	if err != nil {
		t.Fatal(err)
	}
	d := release.NewDeploy(f.cfg)
	d.Hosts = release.Hosts{Domain: "preview.example.com"}
	_, err = release.InstallAhead(context.Background(), d, n, f.image, false)
	// Its writes fail with the gate's reason, or its context ends first.
	if !errors.Is(err, release.ErrNotAhead) && !errors.Is(err, context.Canceled) {
		t.Errorf("the install given up returned %v, want %v (or its context's end)", err, release.ErrNotAhead)
	}
	if left := releaseLeft(t, f, n.Namespace); len(left) > 0 {
		t.Errorf("an install given up at its gate left %v in the cluster, want nothing", left)
	}
}

// TestInstallAheadOpenedInstalls: the same install, its gate opened, is
// Helm's install as a deploy makes it: the record deployed, the resources
// there.
func TestInstallAheadOpenedInstalls(t *testing.T) {
	f := newDeployFixture(t)
	n, err := release.NewNames(f.app, testSHA)
	if err != nil {
		t.Fatal(err)
	}
	d := release.NewDeploy(f.cfg)
	d.Hosts = release.Hosts{Domain: "preview.example.com"}
	rel, err := release.InstallAhead(context.Background(), d, n, f.image, true)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 1 || rel.Info.Status.String() != "deployed" {
		t.Errorf("install = revision %d %s, want 1 deployed", rel.Version, rel.Info.Status)
	}
	left := releaseLeft(t, f, n.Namespace)
	want := []string{"record sh.helm.release.v1." + n.Release + ".v1 deployed", "Service", "Deployment", "Ingress"}
	if len(left) != len(want) {
		t.Fatalf("after the install: %v, want %v", left, want)
	}
	for i := range want {
		if left[i] != want[i] {
			t.Errorf("after the install: %v, want %v", left, want)
			break
		}
	}
}
