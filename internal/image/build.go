package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Scratch is the base that means "no base": the app layer alone.
const Scratch = "scratch"

// OCI annotation and label keys shipper sets.
const (
	AnnotationRevision   = "org.opencontainers.image.revision"
	AnnotationSource     = "org.opencontainers.image.source"
	AnnotationCreated    = "org.opencontainers.image.created"
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// Spec describes the image of one commit.
type Spec struct {
	// Context is the app directory; Workdir where it lands (default /app).
	Context, Workdir string
	// Base is a registry reference or Scratch (the default).
	Base string
	// Platforms narrows a multi-platform base ("linux/amd64"); for Scratch
	// it says which platforms to produce (default linux/amd64).
	Platforms []string
	// Ignore holds .dockerignore patterns that go before the context's
	// own .dockerignore, which can re-include what they exclude with "!":
	// Detect's defaults for the app's kind.
	Ignore []string
	// PlatformContexts replaces Context for the platforms it names
	// ("linux/arm64": a directory holding the arm64 build), so one index
	// carries a binary per architecture. Each must name a platform the
	// image has.
	PlatformContexts map[string]string

	Entrypoint, Cmd []string
	User            string
	Port            int
	Env             []string // KEY=VALUE
	UID, GID        int      // owner of the app's files (default 0:0)

	// SHA is the full commit SHA; ShortSHA its short form. APP_VERSION and
	// COMMIT_SHA are set from them.
	SHA, ShortSHA string
	// Source is the project URL (CI_PROJECT_URL).
	Source string
	// Created is the image's and every file's timestamp; see SourceDate.
	Created time.Time
	// Compression of the app layer: gzip at level 1 unless set.
	Compression Compression
}

// Options reach registries: credentials, plain HTTP, logging.
type Options struct {
	// Username and Password, when Username is set, authenticate to every
	// registry (GitLab's CI_REGISTRY_USER and CI_REGISTRY_PASSWORD); else
	// Keychain does, go-containerregistry's DefaultKeychain (Docker's
	// config.json) unless set.
	Username, Password string
	Keychain           authn.Keychain
	// Insecure allows plain HTTP to registries that are not on loopback
	// (go-containerregistry already uses HTTP for 127.0.0.1 and localhost).
	Insecure bool
	Log      *slog.Logger
}

func (o Options) remote(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	switch {
	case o.Username != "":
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: o.Username, Password: o.Password}))
	case o.Keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(o.Keychain))
	default:
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	return opts
}

func (o Options) nameOpts() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// SourceDate is the timestamp of a reproducible build: SOURCE_DATE_EPOCH
// (seconds) when set, else the commit time (RFC 3339, as GitLab's
// CI_COMMIT_TIMESTAMP), else the Unix epoch.
func SourceDate(sourceDateEpoch, commitTime string) (time.Time, error) {
	if sourceDateEpoch != "" {
		s, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil || s < 0 {
			return time.Time{}, &InputError{Path: "SOURCE_DATE_EPOCH=" + sourceDateEpoch, Err: errors.New("must be whole seconds since 1970")}
		}
		return time.Unix(s, 0).UTC(), nil
	}
	if commitTime != "" {
		t, err := time.Parse(time.RFC3339, commitTime)
		if err != nil {
			return time.Time{}, &InputError{Path: "commit time " + commitTime, Err: errors.New("must be RFC 3339, like 2026-11-25T19:44:38+00:00")}
		}
		return t.UTC().Truncate(time.Second), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// Artifact is a built image or multi-platform index, backed by a
// temporary layer file until Close.
type Artifact struct {
	// Image or Index is set.
	Image v1.Image
	Index v1.ImageIndex
	layer *fileLayer
	// platformLayers are the layers of Spec.PlatformContexts, by platform.
	platformLayers map[string]*fileLayer
}

// Digest is the digest of the image manifest or index.
func (a *Artifact) Digest() (v1.Hash, error) {
	if a.Index != nil {
		return a.Index.Digest()
	}
	return a.Image.Digest()
}

// Close removes the temporary layer files.
func (a *Artifact) Close() error {
	var first error
	for _, l := range a.platformLayers {
		if err := l.remove(); err != nil && first == nil {
			first = err
		}
	}
	if a.layer != nil {
		if err := a.layer.remove(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Build turns the spec into an image: the base plus one layer holding the
// context under the workdir. A multi-platform base gives an index with the
// same layer blob appended to each platform.
func Build(ctx context.Context, s Spec, o Options) (*Artifact, error) {
	if err := s.defaults(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(s.Context); err != nil || !st.IsDir() {
		return nil, &InputError{Path: s.Context, Err: errors.New("build context must be a readable directory")}
	}
	if err := s.Compression.check(); err != nil {
		return nil, err
	}
	start := time.Now()
	layer, err := buildLayer(layerSpec{dir: s.Context, workdir: s.Workdir, uid: s.UID, gid: s.GID, mtime: s.Created, ignore: s.Ignore, compress: s.Compression})
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", s.Context, err)
	}
	o.log().Info("packed app layer", "context", s.Context, "bytes", layer.size, "compression", layer.comp.String(), "digest", layer.digest.String(), "seconds", time.Since(start).Seconds())
	art := &Artifact{layer: layer, platformLayers: map[string]*fileLayer{}}
	for key, dir := range s.PlatformContexts {
		ps, err := parsePlatforms([]string{key})
		if err != nil || len(ps) != 1 {
			art.Close()
			return nil, &InputError{Path: "platform context " + key, Err: errors.New("must be os/arch[/variant]=DIR, like linux/arm64=build/arm64")}
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			art.Close()
			return nil, &InputError{Path: dir, Err: errors.New("build context of " + key + " must be a readable directory")}
		}
		l, err := buildLayer(layerSpec{dir: dir, workdir: s.Workdir, uid: s.UID, gid: s.GID, mtime: s.Created, ignore: s.Ignore, compress: s.Compression})
		if err != nil {
			art.Close()
			return nil, fmt.Errorf("packing %s: %w", dir, err)
		}
		art.platformLayers[platformKey(ps[0])] = l
		o.log().Info("packed app layer", "platform", key, "context", dir, "bytes", l.size, "digest", l.digest.String())
	}
	if err := assemble(ctx, s, o, art); err != nil {
		art.Close()
		return nil, err
	}
	return art, nil
}

func (s *Spec) defaults() error {
	if s.Workdir == "" {
		s.Workdir = "/app"
	}
	if !strings.HasPrefix(s.Workdir, "/") {
		return &InputError{Path: "workdir " + s.Workdir, Err: errors.New("must be an absolute path")}
	}
	if s.Base == "" {
		s.Base = Scratch
	}
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return &InputError{Path: "env " + e, Err: errors.New("must be KEY=VALUE")}
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		return &InputError{Path: "port " + strconv.Itoa(s.Port), Err: errors.New("must be 1 to 65535")}
	}
	s.Created = s.Created.UTC().Truncate(time.Second)
	return nil
}

// assemble fetches the base and appends the layer and config.
func assemble(ctx context.Context, s Spec, o Options, art *Artifact) error {
	platforms, err := parsePlatforms(s.Platforms)
	if err != nil {
		return err
	}
	if s.Base == Scratch {
		if len(platforms) == 0 {
			platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}}
		}
		var imgs []platformImage
		for _, p := range platforms {
			base, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
				OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, RootFS: v1.RootFS{Type: "layers"},
			})
			if err != nil {
				return err
			}
			imgs = append(imgs, platformImage{img: base, platform: p})
		}
		return finish(s, art, imgs, "", v1.Hash{})
	}

	ref, err := name.ParseReference(s.Base, o.nameOpts()...)
	if err != nil {
		return &InputError{Path: "base " + s.Base, Err: err}
	}
	desc, err := remote.Get(ref, o.remote(ctx)...)
	if err != nil {
		return fmt.Errorf("fetching base image %s: %w", s.Base, describe(err))
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if len(platforms) > 0 && !anyMatch(platforms, p) {
			return &InputError{Path: "base " + s.Base, Err: fmt.Errorf("is %s only, not %v", p.String(), s.Platforms)}
		}
		return finish(s, art, []platformImage{{img: img, platform: p, baseDigest: desc.Digest}}, baseName(ref), v1.Hash{})
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	var imgs []platformImage
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || !m.MediaType.IsImage() {
			continue // attestations and other non-runnable entries
		}
		if len(platforms) > 0 && !anyMatch(platforms, *m.Platform) {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return err
		}
		imgs = append(imgs, platformImage{img: img, platform: *m.Platform, baseDigest: m.Digest})
	}
	if len(imgs) == 0 {
		return &InputError{Path: "base " + s.Base, Err: fmt.Errorf("has no image for platforms %v", s.Platforms)}
	}
	return finish(s, art, imgs, baseName(ref), desc.Digest)
}

// platformKey is p as os/arch[/variant], the key of PlatformContexts.
func platformKey(p v1.Platform) string {
	k := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		k += "/" + p.Variant
	}
	return k
}

type platformImage struct {
	img        v1.Image
	platform   v1.Platform
	baseDigest v1.Hash
}

// finish appends the layer and config to every platform image, and wraps
// them in an index when there is more than one, or the base was an index.
func finish(s Spec, art *Artifact, imgs []platformImage, base string, indexDigest v1.Hash) error {
	var out []platformImage
	used := map[string]bool{}
	for _, pi := range imgs {
		layer := art.layer
		if l, ok := art.platformLayers[platformKey(pi.platform)]; ok {
			layer, used[platformKey(pi.platform)] = l, true
		}
		img, err := appendApp(s, layer, pi.img, base, pi.baseDigest)
		if err != nil {
			return err
		}
		out = append(out, platformImage{img: img, platform: pi.platform})
	}
	for key := range art.platformLayers {
		if !used[key] {
			return &InputError{Path: "platform context " + key, Err: errors.New("names a platform the image does not have (see --platform and the base's platforms)")}
		}
	}
	if len(out) == 1 && indexDigest == (v1.Hash{}) {
		art.Image = out[0].img
		return nil
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range out {
		p := pi.platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pi.img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	ann := annotations(s, base, indexDigest)
	art.Index = mutate.Annotations(idx, ann).(v1.ImageIndex)
	return nil
}
