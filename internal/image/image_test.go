package image_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
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

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	fullSHA  = "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90"
	shortSHA = "7c77eb36"
)

var created = time.Date(2026, 11, 25, 19, 44, 38, 0, time.UTC)

// writeTree creates files (path -> content; a "->" prefix makes a symlink).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func appTree(t *testing.T) string {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"server.sh":           "#!/bin/sh\necho hi\n",
		"static/index.html":   "<h1>hello</h1>\n",
		"static/current":      "->index.html",
		"lib/deep/x/data.txt": "data\n",
		".git/HEAD":           "ref: refs/heads/main\n",
	})
	return dir
}

func spec(dir string) image.Spec {
	return image.Spec{
		Context: dir, Entrypoint: []string{"/app/server.sh"}, Cmd: []string{"--serve"},
		Port: 8080, Env: []string{"FOO=bar"}, User: "65532",
		SHA: fullSHA, ShortSHA: shortSHA, Source: "https://gitlab.example.com/group/app", Created: created,
	}
}

func opts(reg *testenv.Registry) image.Options {
	return image.Options{Username: reg.Username, Password: reg.Password}
}

// layerEntries reads the last layer of img as name -> header.
func layerEntries(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		b, _ := io.ReadAll(tr)
		data[h.Name] = string(b)
	}
	return hdrs, data
}

func TestBuildPushRoundTrip(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ctx := context.Background()
	art, err := image.Build(ctx, spec(appTree(t)), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer art.Close()
	repo := reg.Repository("group/roundtrip")
	got, err := image.Push(ctx, art, repo, shortSHA, []string{"latest"}, opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := art.Digest()
	if want := repo + ":" + shortSHA + "@" + d.String(); got != want {
		t.Errorf("Push = %q, want %q", got, want)
	}

	ref, _ := name.ParseReference(got)
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if strings.Join(c.Entrypoint, " ") != "/app/server.sh" || strings.Join(c.Cmd, " ") != "--serve" || c.WorkingDir != "/app" || c.User != "65532" {
		t.Errorf("config entrypoint %v cmd %v workdir %q user %q", c.Entrypoint, c.Cmd, c.WorkingDir, c.User)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 8080/tcp", c.ExposedPorts)
	}
	for _, e := range []string{"FOO=bar", "APP_VERSION=" + shortSHA, "COMMIT_SHA=" + fullSHA} {
		if !contains(c.Env, e) {
			t.Errorf("env %v lacks %s", c.Env, e)
		}
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(created) {
		t.Errorf("config os/arch %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		image.AnnotationRevision: fullSHA, image.AnnotationSource: "https://gitlab.example.com/group/app",
		image.AnnotationCreated: "2026-11-25T19:44:38Z",
	} {
		if c.Labels[k] != v || m.Annotations[k] != v {
			t.Errorf("%s: label %q annotation %q, want %q", k, c.Labels[k], m.Annotations[k], v)
		}
	}

	hdrs, data := layerEntries(t, img)
	var names []string
	for n := range hdrs {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"app/", "app/lib/", "app/lib/deep/", "app/lib/deep/x/", "app/lib/deep/x/data.txt", "app/server.sh", "app/static/", "app/static/current", "app/static/index.html"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("layer entries %v, want %v (.git excluded)", names, want)
	}
	if h := hdrs["app/server.sh"]; h == nil || h.Mode != 0o755 || data["app/server.sh"] != "#!/bin/sh\necho hi\n" {
		t.Errorf("app/server.sh = %+v, want mode 0755 and its content", h)
	}
	if h := hdrs["app/static/current"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "index.html" {
		t.Errorf("app/static/current = %+v, want a symlink to index.html", h)
	}
	for n, h := range hdrs {
		if !h.ModTime.Equal(created) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q; want the fixed ones", n, h.ModTime, h.Uid, h.Gid, h.Uname)
		}
	}

	// The extra tag names the same image.
	latest, err := image.Resolve(ctx, repo+":latest", opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(latest, "@"+d.String()) {
		t.Errorf("latest resolves to %s, want digest %s", latest, d)
	}
}

// TestBuildIsReproducible builds the same tree twice, at different wall
// clock times, from a copy with other file times, and gets one digest.
func TestBuildIsReproducible(t *testing.T) {
	ctx := context.Background()
	dir := appTree(t)
	a, err := image.Build(ctx, spec(dir), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	time.Sleep(1100 * time.Millisecond)
	copyDir := appTree(t) // same content, new inodes and times
	future := time.Now().Add(48 * time.Hour)
	if err := os.Chtimes(filepath.Join(copyDir, "server.sh"), future, future); err != nil {
		t.Fatal(err)
	}
	b, err := image.Build(ctx, spec(copyDir), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("digests differ: %s vs %s", da, db)
	}
	if err := os.WriteFile(filepath.Join(copyDir, "static/index.html"), []byte("<h1>changed</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := image.Build(ctx, spec(copyDir), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if dc, _ := c.Digest(); dc == da {
		t.Error("changing a file did not change the digest")
	}
}

// TestRepushUploadsNothing counts the registry's blob upload requests.
func TestRepushUploadsNothing(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ctx := context.Background()
	repo := reg.Repository("group/repush")
	push := func() {
		t.Helper()
		art, err := image.Build(ctx, spec(appTree(t)), image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer art.Close()
		if _, err := image.Push(ctx, art, repo, shortSHA, nil, opts(reg)); err != nil {
			t.Fatal(err)
		}
	}
	uploads := func() int {
		b, err := os.ReadFile(reg.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), `"POST /v2/group/repush/blobs/uploads/`)
	}
	push()
	first := uploads()
	if first < 2 {
		t.Fatalf("first push made %d upload requests, want at least 2 (layer and config)", first)
	}
	push()
	if got := uploads(); got != first {
		t.Errorf("re-packaging an unchanged commit made %d more upload requests, want 0", got-first)
	}
}

func TestIgnoreRules(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore":  "*.log\nsecret/\nnode_modules\n!keep.log\n",
		"a.log":          "x",
		"keep.log":       "kept",
		"secret/key.pem": "k",
		"node_modules/m": "m",
		"src/main.go":    "package main",
		".git/config":    "[core]",
	})
	art, err := image.Build(context.Background(), image.Spec{Context: dir, Created: created}, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer art.Close()
	hdrs, _ := layerEntries(t, art.Image)
	for _, n := range []string{"app/a.log", "app/secret/key.pem", "app/secret/", "app/node_modules/m", "app/.git/config"} {
		if hdrs[n] != nil {
			t.Errorf("%s is in the layer, .dockerignore excludes it", n)
		}
	}
	for _, n := range []string{"app/keep.log", "app/src/main.go", "app/.dockerignore"} {
		if hdrs[n] == nil {
			t.Errorf("%s is missing from the layer", n)
		}
	}
}

func TestBadContextsGiveClearErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"relative symlink escape", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"static/passwd": "->../../etc/passwd"})
		}, "static/passwd: symlink to \"../../etc/passwd\" points outside the build context"},
		{"absolute symlink", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"hosts": "->/etc/hosts"})
		}, "hosts: symlink to \"/etc/hosts\" points outside the build context"},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "pipe: unsupported file type"},
		{"missing context", func(t *testing.T, dir string) { os.RemoveAll(dir) }, "build context must be a readable directory"},
		{"bad ignore pattern", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{".dockerignore": "[\n"})
		}, "invalid pattern in .dockerignore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := image.Build(context.Background(), image.Spec{Context: dir, Created: created}, image.Options{})
			var ie *image.InputError
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if !errors.As(err, &ie) {
				t.Errorf("err %T is not an *image.InputError", err)
			}
		})
	}
}

func TestRegistryFailuresPushNothing(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ctx := context.Background()
	repo := reg.Repository("group/failures")

	t.Run("missing base", func(t *testing.T) {
		s := spec(appTree(t))
		s.Base = reg.Repository("group/no-such-base") + ":1"
		_, err := image.Build(ctx, s, opts(reg))
		if !image.NotFound(err) || !strings.Contains(err.Error(), s.Base) {
			t.Errorf("err = %v, want not found naming %s", err, s.Base)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		art, err := image.Build(ctx, spec(appTree(t)), image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer art.Close()
		bad := image.Options{Username: reg.Username, Password: "wrong-password-1234"}
		_, err = image.Push(ctx, art, repo, shortSHA, nil, bad)
		if !image.Unauthorized(err) || strings.Contains(err.Error(), "wrong-password-1234") {
			t.Errorf("err = %v, want credentials refused, without the password", err)
		}
		if _, err := image.Resolve(ctx, repo+":"+shortSHA, opts(reg)); !image.NotFound(err) {
			t.Errorf("after the refused push the tag resolves: err = %v, want not found", err)
		}
		if _, err := image.Resolve(ctx, repo+":"+shortSHA, bad); !image.Unauthorized(err) {
			t.Errorf("resolve with a wrong password: err = %v, want credentials refused", err)
		}
	})
}

func TestSourceDate(t *testing.T) {
	for _, tc := range []struct {
		epoch, commit string
		want          time.Time
		wantErr       bool
	}{
		{"1700000000", "2026-11-25T19:44:38+01:00", time.Unix(1700000000, 0).UTC(), false},
		{"", "2026-11-25T19:44:38+01:00", time.Date(2026, 11, 25, 18, 44, 38, 0, time.UTC), false},
		{"", "", time.Unix(0, 0).UTC(), false},
		{"yesterday", "", time.Time{}, true},
		{"", "25/11/2026", time.Time{}, true},
	} {
		got, err := image.SourceDate(tc.epoch, tc.commit)
		if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
			t.Errorf("SourceDate(%q, %q) = %v, %v; want %v (error %v)", tc.epoch, tc.commit, got, err, tc.want, tc.wantErr)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
