package image_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// A zstd layer goes through the registry with OCI's zstd media type, its
// files read back whole, and is reproducible; gzip at another level gives
// another layer of the same files.
func TestZstdLayerRoundTrip(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	ctx := context.Background()
	dir := appTree(t)
	build := func(c image.Compression) (string, *image.Artifact) {
		t.Helper()
		s := spec(dir)
		s.Compression = c
		art, err := image.Build(ctx, s, image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { art.Close() })
		d, _ := art.Digest()
		return d.String(), art
	}
	zd, art := build(image.Compression{Algorithm: image.Zstd})
	if again, _ := build(image.Compression{Algorithm: image.Zstd}); again != zd {
		t.Errorf("zstd builds differ: %s, %s", zd, again)
	}
	// One core, as a small CI runner has: the same bytes.
	procs := runtime.GOMAXPROCS(1)
	one, _ := build(image.Compression{Algorithm: image.Zstd})
	g1, _ := build(image.Compression{})
	runtime.GOMAXPROCS(procs)
	if one != zd {
		t.Errorf("zstd at GOMAXPROCS 1 gives %s, at %d %s", one, procs, zd)
	}
	gd, _ := build(image.Compression{})
	g9, _ := build(image.Compression{Algorithm: image.Gzip, Level: 9})
	if g1 != gd {
		t.Errorf("gzip at GOMAXPROCS 1 gives %s, at %d %s", g1, procs, gd)
	}
	if zd == gd || gd == g9 {
		t.Errorf("zstd %s, gzip-1 %s, gzip-9 %s: each compression should give its own image", zd, gd, g9)
	}
	got, err := image.Push(ctx, art, reg.Repository("group/zstd"), shortSHA, nil, opts(reg))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(got)
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayerZStd {
		t.Fatalf("layers %+v, want one %s", m.Layers, types.OCILayerZStd)
	}
	_, contents := layerEntries(t, img)
	if !strings.Contains(contents["app/static/index.html"], "<h1>") {
		t.Errorf("the zstd layer read back lacks app/static/index.html: %v", contents)
	}
}

func TestCompressionBadInput(t *testing.T) {
	for _, c := range []image.Compression{{Algorithm: "brotli"}, {Algorithm: image.Gzip, Level: 10}, {Algorithm: image.Zstd, Level: 5}} {
		s := spec(appTree(t))
		s.Compression = c
		_, err := image.Build(context.Background(), s, image.Options{})
		var bad interface{ BadInput() bool }
		if err == nil || !errors.As(err, &bad) || !strings.Contains(err.Error(), "compression") {
			t.Errorf("%+v: %v, want bad input naming the flag", c, err)
		}
	}
}
