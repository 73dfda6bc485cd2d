#!/usr/bin/env bash
# tools.sh builds the third-party binaries that shipper's tests and local
# cluster run, from Go modules pinned under tools/, into a cache outside the
# repository. A binary that is already cached is not rebuilt.
#
#   hack/tools.sh [component...]     (default: the test harness's set)
#   hack/tools.sh --dir component    prints the cache directory of a component
#
# Cache: ${SHIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipper}/bin/<module>-<version>/
# internal/testenv computes the same path; keep the two in step.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SHIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipper}

# component -> tools module directory, module path, package
declare -A mod pkg
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  mod[$c]=kubernetes; pkg[$c]=k8s.io/kubernetes/cmd/$c
done
mod[etcd]=etcd; pkg[etcd]=go.etcd.io/etcd/server/v3
mod[helm]=helm; pkg[helm]=helm.sh/helm/v3/cmd/helm
mod[crane]=crane; pkg[crane]=github.com/google/go-containerregistry/cmd/crane
mod[traefik]=traefik; pkg[traefik]=./cmd/traefik
mod[kube-router]=kube-router; pkg[kube-router]=./cmd/kube-router
# Built inside a writable copy of their own module (tools/<dir>/README.md):
# tools dir -> module path.
declare -A copied=([traefik]=github.com/traefik/traefik/v3 [kube-router]=github.com/cloudnativelabs/kube-router/v2)

# main module of each tools directory, whose version names the cache folder
declare -A modpath=([kubernetes]=k8s.io/kubernetes [etcd]=go.etcd.io/etcd/server/v3 [helm]=helm.sh/helm/v3 [crane]=github.com/google/go-containerregistry)

version() { # tools-dir
  if [ -f "$root/tools/$1/version" ]; then cat "$root/tools/$1/version"; return; fi
  (cd "$root/tools/$1" && go list -m -f '{{.Version}}' "${modpath[$1]}")
}

bindir() { # component
  local m=${mod[$1]}
  echo "$cache/bin/$m-$(version "$m")"
}

ldflags() { # tools-dir version
  case $1 in
  kubernetes)
    local v=$2 major minor f=""
    major=${v#v}; major=${major%%.*}
    minor=${v#v*.}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      f+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    echo "-s -w$f" ;;
  helm)
    echo "-s -w -X helm.sh/helm/v3/internal/version.version=$2" ;;
  kube-router)
    echo "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$2" ;;
  *) echo "-s -w" ;;
  esac
}

# starts COMPONENT PATH: the binary at PATH runs and reports a version. A
# cached binary that does not (truncated, built for another machine, a
# library gone) is built again instead of failing a test later.
starts() {
  local args=(--version)
  case $1 in
  helm) args=(version --short) ;;
  crane | traefik) args=(version) ;;
  kubectl) args=(version --client) ;;
  esac
  "$2" "${args[@]}" >/dev/null 2>&1
}

if [ "${1:-}" = --dir ]; then
  bindir "$2"; exit 0
fi

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver)

# Group missing components by tools module so one `go build` compiles the
# packages they share once.
declare -A want
for c in "${components[@]}"; do
  [ -n "${mod[$c]:-}" ] || { echo "tools.sh: unknown component $c" >&2; exit 2; }
  d=$(bindir "$c")
  if [ -x "$d/$c" ] && starts "$c" "$d/$c"; then continue; fi
  [ -e "$d/$c" ] && echo "tools.sh: $d/$c does not start; building it again" >&2
  want[${mod[$c]}]+=" $c"
done

for m in "${!want[@]}"; do
  v=$(version "$m")
  out="$cache/bin/$m-$v"
  pkgs=()
  for c in ${want[$m]}; do pkgs+=("${pkg[$c]}"); done
  echo "tools.sh: building${want[$m]} ($m $v) into $out" >&2
  tmp=$(mktemp -d "$cache/tmp.XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache/tmp.XXXXXX"; })
  start=$SECONDS
  if [ -n "${copied[$m]:-}" ]; then
    src=$(go mod download -json "${copied[$m]}@$v" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    cp -r "$src" "$tmp/src" && chmod -R u+w "$tmp/src"
    (cd "$tmp/src" && CGO_ENABLED=0 go build -trimpath -ldflags "$(ldflags "$m" "$v")" -o "$tmp/" "${pkgs[@]}")
  else
    (cd "$root/tools/$m" && CGO_ENABLED=0 go build -trimpath -ldflags "$(ldflags "$m" "$v")" -o "$tmp/" "${pkgs[@]}")
  fi
  # go build names a binary after the last element of its package path, or
  # the one before a major-version suffix (etcd/server/v3 -> "server");
  # rename to the component name, then move into place so a killed build
  # never leaves a half-written binary in the cache.
  mkdir -p "$out"
  for c in ${want[$m]}; do
    p=${pkg[$c]}; b=${p##*/}
    [[ $b =~ ^v[0-9]+$ ]] && { p=${p%/*}; b=${p##*/}; }
    starts "$c" "$tmp/$b" || { echo "tools.sh: the $c just built does not start: $tmp/$b" >&2; exit 1; }
    mv "$tmp/$b" "$out/$c"
  done
  rm -rf "$tmp"
  echo "tools.sh: built${want[$m]} in $((SECONDS - start))s" >&2
done
