package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestGatewayAPIDir finds the Gateway API module from shipper's module (go
// list) and from a directory outside any module (go mod download), as a
// binary run elsewhere than the repository would.
func TestGatewayAPIDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		cwd  string
	}{
		{"in the module", ""},
		{"outside any module", t.TempDir()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cwd != "" {
				t.Chdir(tc.cwd)
			}
			gatewayAPIModDir.dir = "" // forget what an earlier call found
			dir, err := gatewayAPIDir(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := filepath.Base(dir), "gateway-api@"+GatewayAPIVersion; got != want {
				t.Errorf("module dir %s, want one named %s", dir, want)
			}
			crd := filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml")
			if _, err := os.Stat(crd); err != nil {
				t.Errorf("no HTTPRoute CRD in the module: %v", err)
			}
		})
	}
}
