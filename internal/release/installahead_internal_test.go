package release

import "testing"

// TestRendersAny: an install starts ahead only for a chart that renders
// no object of a kind the deploy writes meanwhile; a document whose kind
// cannot be read counts as one (it may be).
func TestRendersAny(t *testing.T) {
	for _, tc := range []struct {
		manifest string
		want     bool
	}{
		{"---\n# Source: a/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n", false},
		{"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: shipper-pull\n", true},
		{`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"x"}}`, true},
		{"---\napiVersion: coordination.k8s.io/v1\nkind: \"Lease\"\nmetadata:\n  name: shipper-a\n", true},
		{"---\nkind: [unclosed\n", true},
		{"", false},
	} {
		if got := rendersAny(tc.manifest, writtenAlongside); got != tc.want {
			t.Errorf("rendersAny(%q) = %v, want %v", tc.manifest, got, tc.want)
		}
	}
}
