package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// GatewayAPIVersion is the Gateway API release whose CRDs InstallGatewayAPI
// applies: the one Traefik (TraefikVersion) is built against, and the one
// go.mod requires for the typed clients.
const GatewayAPIVersion = "v1.4.0"

const (
	gatewayAPIModule = "sigs.k8s.io/gateway-api"
	// fieldManager owns what the harness applies server-side.
	fieldManager = "shipper-testenv"
)

// InstallGatewayAPI applies the standard-channel CRDs of the Gateway API
// (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant,
// BackendTLSPolicy) to the Env's apiserver and returns once every version
// they serve is in discovery, so typed clients can use them at once.
//
// It applies server-side (the HTTPRoute CRD is too large for the
// last-applied annotation of client-side apply) as field manager
// "shipper-testenv". It is safe to call from concurrent tests: the first
// call that succeeds installs, later ones return at once.
func (e *Env) InstallGatewayAPI(ctx context.Context) error {
	e.gatewayAPI.Lock()
	defer e.gatewayAPI.Unlock()
	if e.gatewayAPI.installed {
		return nil
	}
	dir, err := gatewayAPIDir(ctx)
	if err != nil {
		return fmt.Errorf("locating the Gateway API CRDs: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "standard", "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs under %s/config/crd/standard", dir)
	}
	cs, err := apiextensions.NewForConfig(e.admin)
	if err != nil {
		return err
	}
	crds := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(files))
	for _, f := range files {
		crd, err := applyCRD(ctx, cs, f)
		if err != nil {
			return fmt.Errorf("applying the Gateway API CRD %s: %w", filepath.Base(f), err)
		}
		crds = append(crds, crd)
	}
	if err := waitCRDsServed(ctx, cs, crds); err != nil {
		return fmt.Errorf("installing the Gateway API: %w", err)
	}
	e.gatewayAPI.installed = true
	return nil
}

// applyCRD applies the CRD in file as it is written, not a re-encoding of
// it: a typed round trip would add empty fields the apply would then own.
func applyCRD(ctx context.Context, cs apiextensions.Interface, file string) (*apiextensionsv1.CustomResourceDefinition, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	body, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := json.Unmarshal(body, &crd); err != nil {
		return nil, err
	}
	return cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
}

// waitCRDsServed waits until every CRD is Established and discovery lists
// its resource in every version it serves. Established alone is not
// enough: discovery, which typed clients and REST mappers read, follows a
// moment later.
func waitCRDsServed(ctx context.Context, cs apiextensions.Interface, crds []*apiextensionsv1.CustomResourceDefinition) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, want := range crds {
			crd, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			if !crdEstablished(crd) {
				last = crd.Name + " is not Established"
				return false, nil
			}
			for _, v := range crd.Spec.Versions {
				if !v.Served {
					continue
				}
				gv := crd.Spec.Group + "/" + v.Name
				list, err := cs.Discovery().ServerResourcesForGroupVersion(gv)
				if err != nil {
					last = fmt.Sprintf("discovery of %s: %v", gv, err)
					return false, nil
				}
				if !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == crd.Spec.Names.Plural }) {
					last = fmt.Sprintf("discovery of %s lists no %s", gv, crd.Spec.Names.Plural)
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("CRDs not served: %w (last: %s)", err, last)
	}
	return nil
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// The Gateway API module's directory is the same for every Env of the
// process: found once, kept once found.
var gatewayAPIModDir struct {
	sync.Mutex
	dir string
}

// gatewayAPIDir returns the module cache directory of the Gateway API at
// GatewayAPIVersion. It asks `go list -m` first, which answers from the
// module of the working directory (shipper's, for its tests) without the
// network; outside that module, or when the module there is another
// version, it falls back to `go mod download`, which uses the cache when it
// can and the module proxy otherwise.
func gatewayAPIDir(ctx context.Context) (string, error) {
	gatewayAPIModDir.Lock()
	defer gatewayAPIModDir.Unlock()
	if gatewayAPIModDir.dir != "" {
		return gatewayAPIModDir.dir, nil
	}
	m, listErr := goModule(ctx, "", "list", "-m", "-json", gatewayAPIModule)
	if listErr != nil || m.Version != GatewayAPIVersion {
		// Run outside any module and workspace: `go mod download` inside
		// one may add to its go.sum.
		var err error
		m, err = goModule(ctx, os.TempDir(), "mod", "download", "-json", gatewayAPIModule+"@"+GatewayAPIVersion)
		if err != nil {
			return "", errors.Join(err, listErr)
		}
	}
	gatewayAPIModDir.dir = m.Dir
	return m.Dir, nil
}

// goModule runs a go command that prints one module as JSON, in dir (the
// working directory when empty).
func goModule(ctx context.Context, dir string, args ...string) (*goModuleInfo, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if dir != "" {
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GO111MODULE=on")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m goModuleInfo
	// go mod download reports a failure in its JSON, often with nothing
	// on stderr; a failure of go list shows on stderr.
	_ = json.Unmarshal(out, &m)
	if err != nil || len(m.Error) > 0 || m.Dir == "" {
		return nil, fmt.Errorf("go %s: %v: %s %s", strings.Join(args, " "), err, m.Error, strings.TrimSpace(stderr.String()))
	}
	return &m, nil
}

// goModuleInfo is the part of `go list -m -json` and `go mod download
// -json` output the harness reads.
type goModuleInfo struct {
	Version string
	Dir     string
	Error   json.RawMessage // a string from go mod download, an object from go list
}
