// Package image builds a commit's app into a reproducible OCI image and
// pushes it to a registry with go-containerregistry, without a daemon.
// It knows nothing of Helm or Kubernetes.
// The builder arrives with the image packaging issue.
package image
