// Package image builds a commit's app into a reproducible OCI image and
// pushes it with go-containerregistry, without a daemon, the way ko and
// `crane append` do. It knows nothing of Helm or Kubernetes.
//
//	Build(ctx, Spec, Options) -> *Artifact
//	  buildLayer: context dir -> .dockerignore filter -> sorted tar with fixed
//	              owner and mtime -> parallel gzip -> temp file (digests
//	              computed while writing; nothing held in memory)
//	  assemble:   base (Scratch, an image, or an index: the layer is appended
//	              to each platform, one shared blob) -> mutate.Append ->
//	              config (entrypoint, cmd, workdir, user, port, env with
//	              APP_VERSION and COMMIT_SHA) -> OCI labels and annotations
//	Push(ctx, art, repo, tag, extra, Options) -> "repo:tag@sha256:..."
//	Resolve(ctx, ref, Options) -> "repo:tag@sha256:..."
//
// Only remote touches the network. Errors about the input are *InputError;
// a registry's "not found" or "credentials refused" is *RegistryError.
package image
