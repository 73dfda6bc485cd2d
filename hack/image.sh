#!/usr/bin/env bash
# image.sh builds shipper's GitLab job image with shipper itself, no Docker:
# the static binary in /usr/local/bin on a base built here from Debian's
# busybox-static (/bin/sh, cat and the other applets a job script uses, 2 MB),
# or on the image BASE names, with the machine's CA bundle (Debian's
# ca-certificates) for HTTPS registries. It is reproducible on a machine: the
# same commit gives the same digest (Go builds are; file times are the
# commit's, owners and modes fixed); another Go, busybox or CA bundle
# version gives another.
#
#   IMAGE=registry.example.com/tools/shipper hack/image.sh   # make image IMAGE=...
#   BASE=alpine:3.22 IMAGE=... hack/image.sh                 # on another base
#
# On a BASE it builds for ARCHS (default "amd64 arm64"; the base must have
# them all): one index, a binary per architecture. The busybox base built
# here is this machine's architecture only (linux/amd64).
#
# It pushes <IMAGE>:<short sha> and <IMAGE>:<version> and prints the
# reference with its digest. Registry credentials: SHIPPER_REGISTRY_USER and
# SHIPPER_REGISTRY_PASSWORD (CI_REGISTRY_USER/PASSWORD in GitLab), else the
# Docker config.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022            # the same modes whatever the caller's (GitLab's Docker executor: 0000)
unset SOURCE_DATE_EPOCH # the commit's time, always

: "${IMAGE:?IMAGE= names the repository to push the job image to, e.g. IMAGE=registry.example.com/tools/shipper}"
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
sha=$(git rev-parse HEAD)
when=$(git log -1 --format=%cI)

root=$(mktemp -d)
trap 'rm -rf "$root" "$root.arch"' EXIT
mkdir -p "$root/usr/local/bin" "$root.arch"
base=scratch
platforms=(--platform linux/amd64)
if [ -n "${BASE:-}" ]; then
  base=$BASE
  platforms=()
  for arch in ${ARCHS:-amd64 arm64}; do
    platforms+=(--platform "linux/$arch")
    [ "$arch" = amd64 ] && continue
    mkdir -p "$root.arch/$arch/usr/local/bin"
    GOARCH=$arch make --no-print-directory build VERSION="$version" >&2
    install -m 0755 bin/shipper "$root.arch/$arch/usr/local/bin/shipper"
    install -m 0755 bin/shipper-gate "$root.arch/$arch/usr/local/bin/shipper-gate"
    platforms+=(--platform-context "linux/$arch=$root.arch/$arch")
  done
else
  [ -x /bin/busybox ] || { echo "image.sh: /bin/busybox is missing: hack/deps.sh image (apt-get install busybox-static)" >&2; exit 1; }
  mkdir -p "$root/bin" "$root/tmp" "$root/etc/ssl/certs"
  cp /bin/busybox "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  file=/etc/ssl/certs/ca-certificates.crt
  [ -f $file ] || { echo "image.sh: $file is missing: apt-get install ca-certificates" >&2; exit 1; }
  install -m 0644 $file "$root$file"
  # The applets a GitLab job's shell and scripts use.
  for a in sh cat env echo printf test [ true false ls mkdir rm cp mv ln chmod touch pwd id \
           basename dirname readlink head tail grep sed tr cut sort uniq wc tee xargs find date sleep \
           tar gzip; do
    ln -s busybox "$root/bin/$a"
  done
  chmod 0777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\n' > "$root/etc/group"
fi
make --no-print-directory build VERSION="$version" >&2 # this machine's (amd64), last: it runs package
install -m 0755 bin/shipper "$root/usr/local/bin/shipper"
# The gate of protected previews (deploy --protect): their pods run it
# from this image (SHIPPER_GATE_IMAGE=$CI_JOB_IMAGE).
install -m 0755 bin/shipper-gate "$root/usr/local/bin/shipper-gate"
# Files are owned by root (uid 0) as in any base image; a job runs as root.
bin/shipper package --context "$root" --workdir / --base "$base" "${platforms[@]}" \
  --cmd /bin/sh --env PATH=/usr/local/bin:/usr/bin:/bin \
  --image "$IMAGE" --sha "$sha" --commit-time "$when" --tag "$version" \
  --source "${SHIPPER_SOURCE_URL:-https://github.com/shipper-dev/shipper}" "$@"
