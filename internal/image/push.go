package image

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push writes the artifact to repository under tag, then under each extra
// tag, and returns "repository:tag@sha256:...". Blobs the registry has are
// not uploaded again, and blobs of a base on the same registry are mounted
// (go-containerregistry's remote does both). The manifest goes last, so the
// tag never names a half-pushed image.
func Push(ctx context.Context, art *Artifact, repository, tag string, extraTags []string, o Options) (string, error) {
	repo, err := name.NewRepository(repository, o.nameOpts()...)
	if err != nil {
		return "", &InputError{Path: "repository " + repository, Err: err}
	}
	ref := repo.Tag(tag)
	if ref.TagStr() != tag {
		return "", &InputError{Path: "tag " + tag, Err: fmt.Errorf("is not a valid tag")}
	}
	var extra []name.Tag
	for _, t := range extraTags {
		et := repo.Tag(t)
		if et.TagStr() != t {
			return "", &InputError{Path: "tag " + t, Err: fmt.Errorf("is not a valid tag")}
		}
		extra = append(extra, et)
	}

	progress := make(chan v1.Update, 16)
	done := make(chan struct{})
	go logProgress(o, ref.String(), progress, done)
	var taggable remote.Taggable = art.Image
	if art.Index != nil {
		taggable = art.Index
	}
	// remote.Push closes progress when it returns.
	err = remote.Push(ref, taggable, append(o.remote(ctx), remote.WithProgress(progress))...)
	<-done
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, describe(err))
	}
	for _, et := range extra {
		if err := remote.Tag(et, taggable, o.remote(ctx)...); err != nil {
			return "", fmt.Errorf("tagging %s: %w", et, describe(err))
		}
	}
	d, err := art.Digest()
	if err != nil {
		return "", err
	}
	return ref.String() + "@" + d.String(), nil
}

// logProgress turns go-containerregistry's updates into a log line at most
// every two seconds, and one at the end.
func logProgress(o Options, ref string, ch <-chan v1.Update, done chan<- struct{}) {
	defer close(done)
	var last time.Time
	var u v1.Update
	for u = range ch {
		if time.Since(last) >= 2*time.Second {
			o.log().Info("pushing", "ref", ref, "bytes", u.Complete, "of", u.Total)
			last = time.Now()
		}
	}
	if u.Total > 0 {
		o.log().Info("pushed", "ref", ref, "bytes", u.Complete)
	}
}

// Resolve turns a tag into "repository:tag@sha256:..." so a deploy pins
// the exact image, and fails fast when the image does not exist or the
// credentials are refused.
func Resolve(ctx context.Context, reference string, o Options) (string, error) {
	ref, err := name.ParseReference(reference, o.nameOpts()...)
	if err != nil {
		return "", &InputError{Path: "image " + reference, Err: err}
	}
	desc, err := remote.Head(ref, o.remote(ctx)...)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", reference, describe(err))
	}
	if d, ok := ref.(name.Digest); ok {
		return d.String(), nil
	}
	return ref.Name() + "@" + desc.Digest.String(), nil
}
