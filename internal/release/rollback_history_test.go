package release_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
)

// TestRollbackToTheOldestRevisionKept: with production's history full, a
// rollback to its oldest revision works, as `helm rollback --history-max`
// does (Helm reads the target before it prunes): the pruning that makes
// room for the new revision spares the target. Old revisions go by age
// otherwise, the deployed one kept.
func TestRollbackToTheOldestRevisionKept(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	for _, sha := range []string{shaA, shaB, shaA} { // revisions 1 (A), 2 (B), 3 (A)
		if _, err := f.promote(t, sha); err != nil {
			t.Fatal(err)
		}
	}
	rb := release.NewRollback(f.cfg)
	rb.MaxHistory = 3
	p, err := rb.Run(ctx, names(t, f.app, ""), "2")
	if err != nil {
		t.Fatalf("rollback to revision 2, the oldest but one: %v", err)
	}
	if p.SHA != "bbbbbbbb" || p.Revision != 4 {
		t.Errorf("rollback = %s revision %d, want bbbbbbbb revision 4", p.SHA, p.Revision)
	}
	// History 2, 3, 4 (1 pruned); now to the oldest, 2.
	if p, err = rb.Run(ctx, names(t, f.app, ""), "2"); err != nil {
		t.Fatalf("rollback to revision 2, the oldest kept: %v", err)
	}
	if p.SHA != "bbbbbbbb" || p.Revision != 5 {
		t.Errorf("rollback = %s revision %d, want bbbbbbbb revision 5", p.SHA, p.Revision)
	}
	secrets, err := f.cs.CoreV1().Secrets(f.app+"-production").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, s := range secrets.Items {
		versions = append(versions, s.Labels["version"])
	}
	sort.Strings(versions)
	if strings.Join(versions, ",") != "2,4,5" {
		t.Errorf("revisions kept = %v, want 2 (the target), 4, 5", versions)
	}
}
