package integration

import (
	"archive/tar"
	binenc "encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestJobImage runs `make image`'s script twice into the harness's
// registry: the same commit gives the same digest; the image has a shell
// and shipper on its PATH, and both run (extracted from the pushed layers,
// executed here: the job image is linux/amd64, as this machine).
func TestJobImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds shipper and pushes an image")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed: hack/deps.sh image")
	}
	env := testenv.Get(t)
	repo := env.Registry.Repository("tools/shipper")
	build := func(extra ...string) string {
		t.Helper()
		cmd := exec.Command("hack/image.sh")
		cmd.Dir = ".."
		cmd.Env = append(append(os.Environ(), "IMAGE="+repo, "VERSION=v0.0.0-test",
			"SHIPPER_REGISTRY_USER="+env.Registry.Username, "SHIPPER_REGISTRY_PASSWORD="+env.Registry.Password), extra...)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("hack/image.sh: %v\n%s", err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	first, second := build(), build()
	if first != second || !strings.Contains(first, "@sha256:") {
		t.Fatalf("two builds of one commit: %s and %s, want one digest", first, second)
	}
	ref, err := name.ParseReference(first, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: env.Registry.Username, Password: env.Registry.Password}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"/bin/sh"}) || len(cfg.Config.Entrypoint) != 0 || !slices.Contains(cfg.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin") {
		t.Errorf("config: entrypoint %v cmd %v env %v; want no entrypoint, /bin/sh, PATH", cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.Env)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	// Extract the filesystem and run what a job runs.
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var size int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode)); err == nil {
				var n int64
				n, err = io.Copy(f, tr)
				size += n
				f.Close()
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for file, mode := range map[string]os.FileMode{"usr/local/bin/shipper": 0o755, "bin/busybox": 0o755, "etc/passwd": 0o644, "etc/ssl/certs/ca-certificates.crt": 0o644} {
		if st, err := os.Stat(filepath.Join(root, file)); err != nil || st.Mode().Perm() != mode {
			t.Errorf("/%s in the image: %v, mode %v; want %v", file, err, st.Mode().Perm(), mode)
		}
	}
	// Run what a job runs, inside the image's filesystem when root may
	// chroot (the applets are busybox's, statically linked).
	run := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command("chroot", append([]string{root}, args...)...)
		}
		return exec.Command(filepath.Join(root, args[0]), args[1:]...)
	}
	out, err := run("/bin/sh", "-c", "cat /etc/passwd >/tmp/p && test -s /tmp/p && test -s /etc/ssl/certs/ca-certificates.crt && echo shell ok").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "shell ok" {
		t.Errorf("/bin/sh of the image: %v %s", err, out)
	}
	out, err = run("/usr/local/bin/shipper", "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v0.0.0-test") {
		t.Errorf("shipper version in the image: %v %s", err, out)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var compressed int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		compressed += n
	}
	t.Logf("job image %s: %.1f MiB of files, %.1f MiB compressed", first, float64(size)/(1<<20), float64(compressed)/(1<<20))

	// On a base with two platforms (as alpine has): one index, a shipper
	// binary per architecture.
	auth := remote.WithAuth(&authn.Basic{Username: env.Registry.Username, Password: env.Registry.Password})
	baseIdx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		baseIdx = mutate.AppendManifests(baseIdx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	baseRef, _ := name.ParseReference(env.Registry.Repository("base/two")+":1", name.Insecure)
	if err := remote.WriteIndex(baseRef, baseIdx, auth); err != nil {
		t.Fatal(err)
	}
	multi, err := name.ParseReference(build("BASE="+baseRef.String()), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(multi, auth)
	if err != nil {
		t.Fatalf("the job image on a two-platform base is no index: %v", err)
	}
	im, _ := idx.IndexManifest()
	machines := map[string]uint16{}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		machines[m.Platform.Architecture] = elfMachine(t, layers[len(layers)-1], "usr/local/bin/shipper")
	}
	// ELF e_machine: 62 x86-64, 183 AArch64.
	if machines["amd64"] != 62 || machines["arm64"] != 183 || len(machines) != 2 {
		t.Errorf("shipper binaries by platform (ELF machine) %v, want amd64: 62, arm64: 183", machines)
	}
}

// elfMachine is the ELF e_machine of file in layer l.
func elfMachine(t *testing.T, l v1.Layer, file string) uint16 {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", file, err)
		}
		if h.Name != file {
			continue
		}
		head := make([]byte, 20)
		if _, err := io.ReadFull(tr, head); err != nil || string(head[1:4]) != "ELF" {
			t.Fatalf("%s is no ELF file: %v", file, err)
		}
		return binenc.LittleEndian.Uint16(head[18:20])
	}
}
