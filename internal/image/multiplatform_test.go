package image_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
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

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// pushTwoPlatformBase pushes an index of a linux/amd64 and a linux/arm64
// image (random layers, real configs) and returns its reference.
func pushTwoPlatformBase(t *testing.T, reg *testenv.Registry) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		cf.Config.Env = []string{"PATH=/usr/bin", "BASE_ARCH=" + arch}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref := reg.Repository("base/multi") + ":1"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestMultiPlatformBase(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ctx := context.Background()
	base := pushTwoPlatformBase(t, reg)

	s := spec(appTree(t))
	s.Base = base
	art, err := image.Build(ctx, s, opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer art.Close()
	got, err := image.Push(ctx, art, reg.Repository("group/multi"), shortSHA, nil, opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	// The base's layers live on the same registry: they are mounted into
	// the new repository, not uploaded again.
	log, err := os.ReadFile(reg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if mounts := strings.Count(string(log), "POST /v2/group/multi/blobs/uploads/?from=base%2Fmulti&mount=sha256"); mounts < 2 {
		t.Errorf("%d cross-repository mounts from base/multi into group/multi, want one per base layer (2)", mounts)
	}

	ref, _ := name.ParseReference(got)
	idx, err := remote.Index(ref, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	if err != nil {
		t.Fatalf("pulling the pushed index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	baseRef, _ := name.ParseReference(base)
	baseIdx, err := remote.Index(baseRef, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	if err != nil {
		t.Fatal(err)
	}
	bim, _ := baseIdx.IndexManifest()
	baseDigests := map[string]string{}
	for _, m := range bim.Manifests {
		baseDigests[m.Platform.Architecture] = m.Digest.String()
	}
	var appLayers []v1.Hash
	archs := map[string]bool{}
	for _, m := range im.Manifests {
		archs[m.Platform.Architecture] = true
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		if len(layers) != 2 {
			t.Errorf("%s has %d layers, want base + app", m.Platform, len(layers))
		}
		d, _ := layers[len(layers)-1].Digest()
		appLayers = append(appLayers, d)
		cf, _ := img.ConfigFile()
		if !contains(cf.Config.Env, "BASE_ARCH="+m.Platform.Architecture) || !contains(cf.Config.Env, "APP_VERSION="+shortSHA) {
			t.Errorf("%s env %v, want the base's and shipper's", m.Platform, cf.Config.Env)
		}
		man, _ := img.Manifest()
		if got := man.Annotations[image.AnnotationBaseName]; got != base {
			t.Errorf("%s base.name = %q, want %q", m.Platform, got, base)
		}
		if got, want := man.Annotations[image.AnnotationBaseDigest], baseDigests[m.Platform.Architecture]; got != want {
			t.Errorf("%s base.digest = %q, want the base's %s manifest %q", m.Platform, got, m.Platform.Architecture, want)
		}
	}
	if !archs["amd64"] || !archs["arm64"] {
		t.Errorf("platforms %v, want amd64 and arm64", archs)
	}
	if appLayers[0] != appLayers[1] {
		t.Errorf("app layers differ per platform (%v): want one shared blob", appLayers)
	}

	// --platform narrows the index.
	s.Platforms = []string{"linux/arm64"}
	one, err := image.Build(ctx, s, opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	im1, err := one.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im1.Manifests) != 1 || im1.Manifests[0].Platform.Architecture != "arm64" {
		t.Errorf("narrowed index %+v, want only linux/arm64", im1.Manifests)
	}
	s.Platforms = []string{"linux/s390x"}
	if _, err := image.Build(ctx, s, opts(reg)); err == nil {
		t.Error("a platform the base lacks gave no error")
	}
}

// TestPlatformContexts: a binary per architecture in one index: the arm64
// image's app layer comes from its own context, the amd64 one from
// --context; a context for a platform the image lacks is refused.
func TestPlatformContexts(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ctx := context.Background()
	base := pushTwoPlatformBase(t, reg)
	arm := t.TempDir()
	if err := os.WriteFile(arm+"/arch", []byte("arm64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec(appTree(t))
	s.Base, s.PlatformContexts = base, map[string]string{"linux/arm64": arm}
	art, err := image.Build(ctx, s, opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer art.Close()
	im, err := art.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		img, err := art.Index.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		files := layerFiles(t, layers[len(layers)-1])
		_, hasArch := files["app/arch"]
		if want := m.Platform.Architecture == "arm64"; hasArch != want || len(files) < 2 {
			t.Errorf("%s app layer %v: app/arch present %t, want %t", m.Platform, keys(files), hasArch, want)
		}
	}
	s.PlatformContexts = map[string]string{"linux/s390x": arm}
	if _, err := image.Build(ctx, s, opts(reg)); err == nil || !strings.Contains(err.Error(), "does not have") {
		t.Errorf("a context for a platform the base lacks: %v, want refused", err)
	}
}

// layerFiles lists the entries of a layer, by name.
func layerFiles(t *testing.T, l v1.Layer) map[string]bool {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = true
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
