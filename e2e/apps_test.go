//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// sampleApps are the Node.js, PHP, Python and Ruby apps of examples/,
// each with the runtime its env header names.
var sampleApps = []struct{ kind, header string }{
	{"node", "node-"}, {"php", "php-"}, {"python", "python-"}, {"ruby", "ruby-"},
}

// apps packages each sample app with zero configuration (no
// --entrypoint, no --cmd: detected from its files) on a base built from
// this machine's Debian packages (no public registry here), deploys it,
// checks /, /version and the env header through Traefik, and promotes
// one of them (ingress router). The Node.js app's layer is zstd: the node
// pulls and runs it.
func apps(t *testing.T, c *cluster) {
	sha := "e5f60718293a4b5c6d7e8f90123456789012345a"
	for i, app := range sampleApps {
		start := time.Now()
		base, err := c.env.Registry.PushRuntimeBase(context.Background(), app.kind)
		if err != nil {
			t.Fatal(err)
		}
		say(t, "\n## %s: runtime base from Debian packages %s, %.1f MiB compressed, built and pushed in %v", app.kind, base,
			float64(imageBytes(t, c, base))/(1<<20), time.Since(start).Round(time.Millisecond))
		a := *c
		a.app = "sample-" + app.kind
		dir, err := filepath.Abs(filepath.Join("..", "examples", app.kind))
		if err != nil {
			t.Fatal(err)
		}
		a.extra = append(append([]string{}, c.extra...), "SHIPPER_CONTEXT="+dir, "SHIPPER_ENTRYPOINT=", "SHIPPER_BASE="+base)
		zstd := app.kind == "node" // containerd on the node pulls a tar+zstd app layer
		if zstd {
			a.extra = append(a.extra, "SHIPPER_COMPRESSION=zstd")
		}
		start = time.Now()
		out, errOut, code := a.try(sha, "package")
		took := time.Since(start).Round(time.Millisecond)
		say(t, "\n$ shipper package   # %s, no --entrypoint: %v\n%s%s", app.kind, took, errOut, out)
		if code != 0 {
			t.Fatalf("package %s: exit %d", app.kind, code)
		}
		say(t, "%s: image %.1f MiB compressed, packaged and pushed in %v", app.kind, float64(imageBytes(t, c, strings.TrimSpace(out)))/(1<<20), took)
		if got := appLayerType(t, c, strings.TrimSpace(out)); zstd && got != types.OCILayerZStd || !zstd && got != types.OCILayer {
			t.Errorf("%s: the app layer is %s (zstd %v)", app.kind, got, zstd)
		}
		if !strings.Contains(errOut, "detected app kind="+app.kind) {
			t.Errorf("package of examples/%s did not say it detected a %s app:\n%s", app.kind, app.kind, errOut)
		}
		host := strings.TrimPrefix(a.run(t, sha, "deploy"), "http://")
		a.eventually(t, host, "/version", 200, sha[:8])
		code, body, env := a.getHeader(host, "/", "env")
		if code != 200 || !strings.Contains(body, "_") || !strings.HasPrefix(env, app.header) {
			t.Errorf("%s: / answered %d %q with env %q, want a docker-style name and env %s<version>", app.kind, code, body, env, app.header)
		}
		say(t, "%s: / answered %q, env: %s", app.kind, strings.TrimSpace(body), env)
		if i == 2 { // python goes to production
			if got := a.run(t, sha, "promote"); got != "http://"+a.app+"."+a.router.domain {
				t.Errorf("promote printed %q", got)
			}
			a.eventually(t, a.app+"."+a.router.domain, "/version", 200, sha[:8])
			a.curl(t, a.app+"."+a.router.domain, "/version")
		}
	}
}

// manifest is image ref's manifest, read from the harness registry.
func manifest(t *testing.T, c *cluster, ref string) *v1.Manifest {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithAuth(&authn.Basic{Username: c.env.Registry.Username, Password: c.env.Registry.Password}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// appLayerType is the media type of image ref's last layer, the app's.
func appLayerType(t *testing.T, c *cluster, ref string) types.MediaType {
	t.Helper()
	m := manifest(t, c, ref)
	return m.Layers[len(m.Layers)-1].MediaType
}

// imageBytes is the compressed size of image ref's layers, as the node
// pulls them.
func imageBytes(t *testing.T, c *cluster, ref string) int64 {
	t.Helper()
	var n int64
	for _, l := range manifest(t, c, ref).Layers {
		n += l.Size
	}
	return n
}
