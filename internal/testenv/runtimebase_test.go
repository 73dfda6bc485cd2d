package testenv_test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// nonroot is the user the chart runs pods as, and the bases' user.
const nonroot = 65532

// TestRuntimeBaseRunsExample builds each runtime's base, unpacks it and
// runs the sample app of that runtime in it as a pod would: chrooted, as
// 65532, from /app, with the command, port and environment image.Detect
// chooses; then asks / and /version.
func TestRuntimeBaseRunsExample(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds images from the host's packages and runs them (run without -short)")
	}
	if os.Geteuid() != 0 {
		t.Skip("running an app in its base needs chroot, so root")
	}
	for _, kind := range testenv.RuntimeKinds {
		t.Run(kind, func(t *testing.T) {
			start := time.Now()
			img, err := testenv.RuntimeBase(context.Background(), kind)
			if err != nil {
				t.Fatal(err)
			}
			layer := onlyLayer(t, img)
			size, err := layer.Size()
			if err != nil {
				t.Fatal(err)
			}
			built := time.Since(start)
			checkBaseConfig(t, img)

			root := t.TempDir()
			summary := unpack(t, layer, root)
			t.Logf("%s base: %d bytes compressed, built in %s; unpacked: %s", kind, size, built.Round(time.Millisecond), summary)
			app := filepath.Join("..", "..", "examples", kind)
			if err := os.CopyFS(filepath.Join(root, "app"), os.DirFS(app)); err != nil {
				t.Fatal(err)
			}
			d, err := image.Detect(app, freePort(t))
			if err != nil {
				t.Fatal(err)
			}
			const version = "7c77eb3"
			exited := runChrooted(t, root, d, "APP_VERSION="+version)
			base := fmt.Sprintf("http://127.0.0.1:%d", d.Port)
			waitServing(t, base+"/", exited, 30*time.Second)

			body, header := get(t, base+"/")
			if !regexp.MustCompile(`^[a-z]+_[a-z]+\n$`).MatchString(body) {
				t.Errorf("GET / = %q, want a Docker-style name", body)
			}
			if env := header.Get("env"); !regexp.MustCompile(`^` + kind + `-[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(env) {
				t.Errorf("env header = %q, want %s-<version>", env, kind)
			}
			if got, _ := get(t, base+"/version"); got != version+"\n" {
				t.Errorf("GET /version = %q, want %q", got, version+"\n")
			}
		})
	}
}

// TestRuntimeBaseIsReproducible builds a base twice: the same host gives
// the same digest. Python's base, with about a thousand files, is the one
// whose order and metadata could vary most.
func TestRuntimeBaseIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds images from the host's packages (run without -short)")
	}
	var digests []v1.Hash
	for range 2 {
		img, err := testenv.RuntimeBase(context.Background(), "python")
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the python base: %s, then %s", digests[0], digests[1])
	}
}

// TestPushRuntimeBase pushes a base to the harness registry and pulls it
// back by the reference PushRuntimeBase returns.
func TestPushRuntimeBase(t *testing.T) {
	env := testenv.Get(t)
	start := time.Now()
	got, err := env.Registry.PushRuntimeBase(context.Background(), "ruby")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %s in %s", got, time.Since(start).Round(time.Millisecond))
	want := regexp.MustCompile(`^` + regexp.QuoteMeta(env.Registry.Repository("runtimes/ruby")) + `@sha256:[0-9a-f]{64}$`)
	if !want.MatchString(got) {
		t.Fatalf("PushRuntimeBase = %q, want %s", got, want)
	}
	ref, err := name.ParseReference(got)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: env.Registry.Username, Password: env.Registry.Password})
	img, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatalf("pulling %s: %v", got, err)
	}
	if d, err := img.Digest(); err != nil || ref.Identifier() != d.String() {
		t.Errorf("pulled digest %s (%v), want %s", d, err, ref.Identifier())
	}
	checkBaseConfig(t, img)
}

func onlyLayer(t *testing.T, img v1.Image) v1.Layer {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("the base has %d layers, want 1", len(layers))
	}
	return layers[0]
}

// checkBaseConfig checks what the chart and packaging rely on: linux on
// the host's architecture, user 65532, a PATH, and no command of its own.
func checkBaseConfig(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	got := fmt.Sprintf("%s/%s user=%s env=%q entrypoint=%q cmd=%q", cf.OS, cf.Architecture, c.User, c.Env, c.Entrypoint, c.Cmd)
	want := fmt.Sprintf("linux/%s user=%d:%d env=%q entrypoint=[] cmd=[]", runtime.GOARCH, nonroot, nonroot, []string{"PATH=/usr/local/bin:/usr/bin:/bin"})
	if got != want {
		t.Errorf("config:\n got %s\nwant %s", got, want)
	}
}

// unpack extracts layer into root as a container runtime would, and sums
// it up: entries and bytes, by directory.
func unpack(t *testing.T, layer v1.Layer, root string) string {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files, bytes := map[string]int{}, map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := unpackEntry(tr, hdr, root); err != nil {
			t.Fatalf("unpacking %s: %v", hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeDir {
			files[topDir(hdr.Name)]++
			bytes[topDir(hdr.Name)] += hdr.Size
		}
	}
	var dirs []string
	for d := range files {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var total int64
	var parts []string
	for _, d := range dirs {
		total += bytes[d]
		parts = append(parts, fmt.Sprintf("%s %d files %d B", d, files[d], bytes[d]))
	}
	return fmt.Sprintf("%d bytes: %s", total, strings.Join(parts, "; "))
}

// topDir groups a path by its first three directories:
// usr/lib/x86_64-linux-gnu, usr/lib/python3.11, etc.
func topDir(p string) string {
	dir := strings.Split(path.Dir(p), "/")
	return strings.Join(dir[:min(len(dir), 3)], "/")
}

func unpackEntry(tr *tar.Reader, hdr *tar.Header, root string) error {
	if !filepath.IsLocal(hdr.Name) {
		return errors.New("not a local path")
	}
	p := filepath.Join(root, hdr.Name)
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, p)
	case tar.TypeReg:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unexpected type %c", hdr.Typeflag)
	}
	// Modes after creation: the umask would mask them, /tmp's sticky bit included.
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Lchown(p, hdr.Uid, hdr.Gid)
}

// runChrooted starts d's command in root as a pod would run it: chrooted,
// as 65532, from d.Workdir, with the image's PATH and d.Env; it is
// stopped when the test ends. The channel is closed when it exits.
// coreutils' chroot cannot change to d.Workdir after the chroot, hence
// SysProcAttr.Chroot.
func runChrooted(t *testing.T, root string, d *image.Detection, env ...string) <-chan struct{} {
	t.Helper()
	const imagePath = "/usr/local/bin:/usr/bin:/bin"
	bin := ""
	for _, dir := range filepath.SplitList(imagePath) {
		if _, err := os.Lstat(filepath.Join(root, dir, d.Cmd[0])); err == nil {
			bin = path.Join(dir, d.Cmd[0])
			break
		}
	}
	if bin == "" {
		t.Fatalf("%s is not on the base's PATH %s", d.Cmd[0], imagePath)
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{
		Path: bin, Args: d.Cmd, Dir: d.Workdir,
		Env:    append(append([]string{"PATH=" + imagePath}, d.Env...), env...),
		Stdout: log, Stderr: log,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:     root,
			Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot},
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q chrooted in %s: %v", d.Cmd, root, err)
	}
	t.Logf("running %q (%s) chrooted, as %d, from %s", d.Cmd, bin, nonroot, d.Workdir)
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		log.Close()
		if out, _ := os.ReadFile(log.Name()); t.Failed() || testing.Verbose() {
			t.Logf("%q exited (%v), its output:\n%s", d.Cmd, waitErr, out)
		}
	})
	return exited
}

// waitServing waits until url answers, failing early if the app exits.
func waitServing(t *testing.T, url string, exited <-chan struct{}, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("the app exited before serving %s", url)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served after %s: %v", url, timeout, err)
		}
	}
}

func get(t *testing.T, url string) (string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s %q", url, resp.Status, b)
	}
	return string(b), resp.Header
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
