// Package internal_test enforces the import direction of shipper's
// packages (../shared/STYLE.md, habit 12), as go-containerregistry's
// depcheck_test does: internal/image knows nothing of Helm or Kubernetes,
// internal/release nothing of registries beyond a reference string.
package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

func TestImportDirection(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/shipper-dev/shipper/internal/image", []string{"helm.sh/", "k8s.io/client-go", "k8s.io/api/", "github.com/shipper-dev/shipper/internal/release"}},
		{"github.com/shipper-dev/shipper/internal/release", []string{"github.com/google/go-containerregistry", "github.com/shipper-dev/shipper/internal/image", "github.com/urfave/cli"}},
		{"github.com/shipper-dev/shipper/internal/testenv", []string{"github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image"}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tc.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", tc.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range tc.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", tc.pkg, dep)
				}
			}
		}
	}
}
