package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Versions of the components built by hack/tools.sh from tools/*/go.mod.
// TestVersionsMatchToolsModules keeps them in step with those files.
const (
	KubernetesVersion = "v1.34.4"
	EtcdVersion       = "v3.6.16"
	// HelmVersion is the helm CLI tests run beside the SDK of the same version.
	HelmVersion = "v3.22.0"
	// CraneVersion is go-containerregistry's crane, the packaging baseline.
	CraneVersion = "v0.22.1"
	// TraefikVersion is the ingress controller of the real node
	// (tools/traefik/version).
	TraefikVersion = "v3.6.12"
	// KubeRouterVersion is the real node's NetworkPolicy enforcer
	// (tools/kube-router/version): a test-only one, see node_firewall.go.
	KubeRouterVersion = "v2.1.0"
)

// CacheDir is where hack/tools.sh puts the binaries it builds:
// $SHIPPER_CACHE_DIR, else $XDG_CACHE_HOME/shipper, else ~/.cache/shipper.
func CacheDir() string {
	if d := os.Getenv("SHIPPER_CACHE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "shipper")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "shipper-cache")
	}
	return filepath.Join(home, ".cache", "shipper")
}

// binDirs maps each component to the cache folder hack/tools.sh builds it in.
var binDirs = map[string]string{
	"etcd":                    "etcd-" + EtcdVersion,
	"helm":                    "helm-" + HelmVersion,
	"crane":                   "crane-" + CraneVersion,
	"traefik":                 "traefik-" + TraefikVersion,
	"kube-router":             "kube-router-" + KubeRouterVersion,
	"kube-apiserver":          "kubernetes-" + KubernetesVersion,
	"kube-controller-manager": "kubernetes-" + KubernetesVersion,
	"kube-scheduler":          "kubernetes-" + KubernetesVersion,
	"kubelet":                 "kubernetes-" + KubernetesVersion,
	"kube-proxy":              "kubernetes-" + KubernetesVersion,
	"kubectl":                 "kubernetes-" + KubernetesVersion,
}

// Binary returns the path of a cached component, or an error that says how
// to build it.
func Binary(name string) (string, error) {
	dir, ok := binDirs[name]
	if !ok {
		return "", fmt.Errorf("testenv: unknown component %q", name)
	}
	p := filepath.Join(CacheDir(), "bin", dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not built (looked for %s): run `make tools` or `hack/tools.sh %s`", name, p, name)
	}
	return p, nil
}

// registryBinary finds Debian's docker-registry.
func registryBinary() (string, error) {
	p, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", fmt.Errorf("docker-registry not found on PATH: install Debian's docker-registry package (apt-get install docker-registry)")
	}
	return p, nil
}
