package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RuntimeKinds are the runtimes RuntimeBase builds a base of, named as
// image.Detect names the kinds of app.
var RuntimeKinds = []string{"node", "php", "python", "ruby"}

// runtimeSpec says what goes into one runtime's base besides the
// interpreter and the shared libraries ldd finds.
type runtimeSpec struct {
	// command is the interpreter as a detected app's Cmd calls it.
	command string
	// probe, run by the interpreter, prints the directories (or files) of
	// its standard library, one a line. Asking the interpreter keeps the
	// version numbers (python3.11, ruby/3.1.0) out of this table.
	probe []string
	// skip holds path.Match patterns of base names left out of those
	// trees: tests, caches and what serves only to build or document.
	skip []string
}

var runtimeSpecs = map[string]runtimeSpec{
	// NodeSource's node is one binary; Debian's links libnode, which ldd
	// lists, and loads some builtins (acorn, cjs-module-lexer, undici)
	// from files of other packages, which its build names in
	// process.config: none for NodeSource's.
	"node": {command: "node",
		probe: []string{"-p", `Object.entries(process.config.variables).filter(([k]) => /^node_shared_builtin_.*_path$/.test(k)).map(([, v]) => v).join("\n")`}},
	// The sample app needs no php.ini and no shared extension: php runs on
	// its built-in defaults and compiled-in extensions.
	"php": {command: "php"},
	"python": {command: "python3",
		probe: []string{"-S", "-c", `import sysconfig; print(sysconfig.get_path("stdlib"))`},
		// config-3.x-*: the static libpython and Makefile that build C
		// extensions (25 MB). Without __pycache__ the modules compile at
		// each start, which is quick.
		skip: []string{"__pycache__", "test", "tests", "idle_test", "config-*"}},
	"ruby": {command: "ruby",
		// vendordir holds Debian's rubygems defaults, which add the
		// rubygems-integration gem path where ruby-webrick is; WEBrick
		// left the standard library in Ruby 3.0.
		probe: []string{"-e", `puts RbConfig::CONFIG.values_at("rubylibdir", "archdir", "vendordir", "vendorarchdir")
puts Gem.default_specifications_dir
webrick = Gem::Specification.find_by_name("webrick")
puts webrick.full_gem_path, webrick.loaded_from`},
		// rdoc writes documentation; its templates link to fonts in /usr/share.
		skip: []string{"rdoc"}},
}

// depsHint ends the error of a base whose packages are missing.
const depsHint = "install the runtimes with `hack/deps.sh runtimes`"

// nonroot is the user of every base, the uid the chart runs pods as.
const nonroot = 65532

// RuntimeBase builds the base image of a runtime (one of RuntimeKinds) from
// this machine's Debian packages, for tests that package the sample apps
// without a public registry. Its one layer holds the interpreter as
// /usr/bin/<command> (with the symlinks that lead to the binary), the
// shared libraries and dynamic loader ldd lists for it and for the
// extensions of its standard library, that standard library, /etc/passwd
// and /etc/group with the user nonroot (65532), its home, and /tmp. The
// layer is reproducible: sorted entries owned by root, one timestamp. The
// image is linux on the host's architecture, runs as 65532 with
// PATH=/usr/local/bin:/usr/bin:/bin, and has no command: packaging sets it.
func RuntimeBase(ctx context.Context, kind string) (v1.Image, error) {
	spec, ok := runtimeSpecs[kind]
	if !ok {
		return nil, fmt.Errorf("runtime base %q: unknown runtime (want one of %s)", kind, strings.Join(RuntimeKinds, ", "))
	}
	tree, err := spec.collect(ctx)
	if err != nil {
		return nil, fmt.Errorf("runtime base %q: %w", kind, err)
	}
	layer, err := tree.layer()
	if err != nil {
		return nil, fmt.Errorf("runtime base %q: writing its layer: %w", kind, err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cf.Config.User = fmt.Sprintf("%d:%d", nonroot, nonroot)
	return mutate.ConfigFile(img, cf)
}

// PushRuntimeBase builds kind's base (RuntimeBase), pushes it to the
// registry as runtimes/<kind>:debian and returns its digest reference,
// what `shipper package --base` takes.
func (r *Registry) PushRuntimeBase(ctx context.Context, kind string) (string, error) {
	img, err := RuntimeBase(ctx, kind)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(r.Repository("runtimes/" + kind + ":debian"))
	if err != nil {
		return "", err
	}
	auth := remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password})
	if err := remote.Write(tag, img, remote.WithContext(ctx), auth); err != nil {
		return "", fmt.Errorf("pushing the %s runtime base to %s: %w", kind, tag, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(digest.String()).String(), nil
}

// collect gathers the host paths of the base. The interpreter is taken
// from /usr/bin, where its package puts it and the image's PATH finds it,
// not from PATH: that may start with a version manager's shim (pyenv's
// python3 on the CI machine).
func (s runtimeSpec) collect(ctx context.Context) (hostTree, error) {
	bin := "/usr/bin/" + s.command
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %s", err, depsHint)
	}
	t := hostTree{}
	if err := t.add(bin); err != nil {
		return nil, err
	}
	if len(s.probe) > 0 {
		var stderr bytes.Buffer
		probe := exec.CommandContext(ctx, bin, s.probe...)
		probe.Stderr = &stderr
		out, err := probe.Output()
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
			return nil, fmt.Errorf("asking %s for its standard library: %w: %s; %s", bin, err, first, depsHint)
		}
		for _, root := range strings.Fields(string(out)) {
			if err := t.walk(root, s.skip); err != nil {
				return nil, err
			}
		}
	}
	return t, t.addLibraries(ctx)
}
