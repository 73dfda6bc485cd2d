// Package internal_test enforces the import direction of shipper's
// packages, as go-containerregistry's depcheck_test does (the rules are
// described in docs/development.md, "Import direction"): internal/image
// knows nothing of Helm or Kubernetes, internal/release nothing of
// registries beyond a reference string, internal/kube (the cluster
// plumbing), internal/lease (the Lease lock) and internal/database (the
// per-commit databases) nothing of releases, the last nothing of
// Kubernetes either, internal/gate (the preview protection, a plain
// net/http handler) nothing of Kubernetes, releases or databases, and
// cmd/shipper only wires: it imports neither client-go, Helm's actions nor
// go-containerregistry itself (its dependencies do, so for the CLI only
// its own imports are checked).
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
		direct    bool // check the package's own imports, not all its dependencies
	}{
		{"github.com/shipper-dev/shipper/internal/image", []string{"helm.sh/", "k8s.io/client-go", "k8s.io/api/", "github.com/shipper-dev/shipper/internal/release"}, false},
		{"github.com/shipper-dev/shipper/internal/release", []string{"github.com/google/go-containerregistry", "github.com/shipper-dev/shipper/internal/image", "github.com/urfave/cli"}, false},
		{"github.com/shipper-dev/shipper/internal/kube", []string{"github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image"}, false},
		{"github.com/shipper-dev/shipper/internal/lease", []string{"github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image", "helm.sh/"}, false},
		{"github.com/shipper-dev/shipper/internal/database", []string{"helm.sh/", "k8s.io/", "github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image"}, false},
		{"github.com/shipper-dev/shipper/internal/gate", []string{"helm.sh/", "k8s.io/", "github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image", "github.com/shipper-dev/shipper/internal/database"}, false},
		// The sidecar every protected preview runs: its memory is the gate's
		// and the standard library's (docs/benchmarks.md).
		{"github.com/shipper-dev/shipper/cmd/shipper-gate", []string{"helm.sh/", "k8s.io/", "github.com/urfave/cli", "github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image", "github.com/shipper-dev/shipper/internal/database"}, false},
		{"github.com/shipper-dev/shipper/internal/testenv", []string{"github.com/shipper-dev/shipper/internal/release", "github.com/shipper-dev/shipper/internal/image"}, false},
		{"github.com/shipper-dev/shipper/cmd/shipper", []string{"github.com/google/go-containerregistry", "k8s.io/client-go", "k8s.io/api/", "helm.sh/"}, true},
	} {
		args := []string{"list", "-deps", "-f", "{{.ImportPath}}", tc.pkg}
		if tc.direct {
			args = []string{"list", "-f", `{{join .Imports "\n"}}`, tc.pkg}
		}
		out, err := exec.Command("go", args...).CombinedOutput()
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

// TestWhereTestsLive keeps the layout of docs/development.md, "Where tests
// live": integration/ reaches shipper only through the binaries it builds,
// so it has no code of its own and no package imports it; cmd/shipper's
// tests call package main in process and start no harness (a test that
// needs the control plane runs the binary, in integration/).
func TestWhereTestsLive(t *testing.T) {
	const (
		integration = "github.com/shipper-dev/shipper/integration"
		cli         = "github.com/shipper-dev/shipper/cmd/shipper"
		testenv     = "github.com/shipper-dev/shipper/internal/testenv"
	)
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}}|{{join .GoFiles " "}}|{{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`,
		"github.com/shipper-dev/shipper/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, rest, _ := strings.Cut(line, "|")
		files, imports, _ := strings.Cut(rest, "|")
		if pkg == integration && files != "doc.go" {
			t.Errorf("%s has code of its own (%s): its tests run the binary; code they share belongs in internal/", pkg, files)
		}
		for _, imp := range strings.Fields(imports) {
			if imp == integration {
				t.Errorf("%s imports %s, which holds only tests", pkg, integration)
			}
			if pkg == cli && imp == testenv {
				t.Errorf("%s's tests import %s: a test that needs the control plane runs the binary, in integration/", pkg, testenv)
			}
		}
	}
}
