package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"
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
	// lists. Neither needs a file beside its libraries.
	"node": {command: "node"},
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

// hostTree is the set of host paths a base copies, keyed by their path
// with no symlink in its directories, with what Lstat said of them.
type hostTree map[string]fs.FileInfo

// add takes the host path p with what it needs to be reached the same
// way in the image: its parent directories, and every symlink on the way
// with its target. /lib/x86_64-linux-gnu/libc.so.6 thus brings the /lib ->
// usr/lib link of a merged-/usr system, and /usr/bin/php the alternatives
// link to php8.2.
func (t hostTree) add(p string) error {
	p = filepath.Clean(p)
	if _, ok := t[p]; ok || p == "/" {
		return nil
	}
	if err := t.add(filepath.Dir(p)); err != nil {
		return err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return err
	}
	p = filepath.Join(dir, filepath.Base(p))
	if _, ok := t[p]; ok {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	t[p] = fi
	if fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, err := os.Readlink(p)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, target)
	}
	// A link dangling on the host dangles in the image too.
	if err := t.add(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// walk adds the tree at root (a directory or a file), without the
// entries whose base name matches a skip pattern. A root that does not
// exist is no error: Ruby names a vendorarchdir it may not have.
func (t hostTree) walk(root string, skip []string) error {
	root, err := filepath.EvalSymlinks(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, pattern := range skip {
			if ok, _ := path.Match(pattern, d.Name()); ok && p != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		return t.add(p)
	})
}

// addLibraries adds what ldd lists for each ELF file of the tree (the
// interpreter and its extension modules): the shared libraries, each with
// its own dependencies already, and the dynamic loader.
func (t hostTree) addLibraries(ctx context.Context) error {
	var elves []string
	for p, fi := range t {
		if fi.Mode().IsRegular() && isELF(p) {
			elves = append(elves, p)
		}
	}
	sort.Strings(elves)
	for _, p := range elves {
		out, err := exec.CommandContext(ctx, "ldd", p).CombinedOutput()
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listing the libraries of %s: ldd: %w: %s", p, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if strings.Contains(line, "=> not found") {
				return fmt.Errorf("%s needs %s, which is not installed", p, f[0])
			}
			for _, lib := range f {
				if strings.HasPrefix(lib, "/") {
					if err := t.add(lib); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == "\x7fELF"
}

// layer writes the tree and the files every base has as one tar,
// compressed as shipper's app layers are, and keeps it in memory: the
// largest base, node, is about 40 MB compressed.
func (t hostTree) layer() (v1.Layer, error) {
	entries := map[string]*tar.Header{}
	for p, fi := range t {
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
		hdr.Name, hdr.Uid, hdr.Gid = p, 0, 0
		entries[p] = hdr
	}
	users := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)
	groups := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot)
	content := map[string]string{"/etc/passwd": users, "/etc/group": groups}
	for p, data := range content {
		entries[p] = &tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(data))}
	}
	entries["/tmp"] = &tar.Header{Typeflag: tar.TypeDir, Name: "/tmp", Mode: 0o1777}
	entries["/home/nonroot"] = &tar.Header{Typeflag: tar.TypeDir, Name: "/home/nonroot", Mode: 0o755, Uid: nonroot, Gid: nonroot}
	for p := range entries {
		for d := filepath.Dir(p); d != "/" && entries[d] == nil; d = filepath.Dir(d) {
			entries[d] = &tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}
		}
	}
	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	gz, err := pgzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := gz.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, p := range names {
		if err := writeHostEntry(tw, entries[p], p, content[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// layerTime is the timestamp of every entry of a base.
var layerTime = time.Unix(0, 0).UTC()

// writeHostEntry writes one entry with the host's varying metadata fixed,
// and its content: data, or the host file p.
func writeHostEntry(tw *tar.Writer, hdr *tar.Header, p, data string) error {
	h := &tar.Header{
		Typeflag: hdr.Typeflag, Name: strings.TrimPrefix(p, "/"), Linkname: hdr.Linkname,
		Mode: hdr.Mode, Size: hdr.Size, Uid: hdr.Uid, Gid: hdr.Gid,
		ModTime: layerTime, Format: tar.FormatPAX,
	}
	switch h.Typeflag {
	case tar.TypeDir:
		h.Name += "/"
		return tw.WriteHeader(h)
	case tar.TypeSymlink:
		return tw.WriteHeader(h)
	case tar.TypeReg:
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if data != "" {
			_, err := io.WriteString(tw, data)
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, h.Size)
		return err
	}
	return fmt.Errorf("%s: %s files do not go into a base", p, hdr.FileInfo().Mode().Type())
}
