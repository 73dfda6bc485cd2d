#!/usr/bin/env bash
# check-installs.sh runs the quick installs of make test, make e2e and
# make demo as a new machine would, in minutes, so that an install that
# works only from a warm cache is caught before it lands (make demo once
# failed on a new machine after 22 minutes: gitlab-ci-local was installed
# without re2's native module, and every warm cache still held a good one).
#
#   hack/check-installs.sh [npm] [go] [apt]     (default: all three)
#
#   npm  hack/gitlab-ci-local.sh into an empty tools cache with an empty
#        npm cache; the tool must start; then an install broken on purpose
#        (re2's native module removed) must be noticed and installed again.
#   go   hack/tools.sh etcd helm crane kube-router (the small Go tools) into an empty
#        tools cache; each must start. Go's own build and module caches are
#        kept: they are content-addressed and checked against go.sum, so
#        they make the build faster but cannot stand in for a missing step.
#        The Kubernetes components and Traefik (10 minutes each, cold) are
#        left to make test and make e2e.
#   apt  every package of hack/deps.sh's sets, resolved by apt as for a
#        machine with nothing installed (a simulation: nothing changes).
#
# CI runs it first (.ci/run). Nothing outside a temporary folder is written.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(npm go apt)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/shipper-check-installs.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export SHIPPER_CACHE_DIR=$scratch/cache npm_config_cache=$scratch/npm-cache
unset XDG_CACHE_HOME

fail() { echo "check-installs: FAIL: $*" >&2; exit 1; }

check_npm() {
  "$root/hack/deps.sh" npm
  local bin got want
  want=$(sed -n 's/^ *"gitlab-ci-local": "\([0-9.]*\)"$/\1/p' "$root/tools/gitlab-ci-local/package.json")
  bin=$("$root/hack/gitlab-ci-local.sh") || fail "hack/gitlab-ci-local.sh from an empty cache"
  got=$("$bin" --version) || fail "gitlab-ci-local installed from an empty cache does not start"
  [ "$got" = "$want" ] || fail "gitlab-ci-local --version is $got, want $want"
  echo "check-installs: npm: gitlab-ci-local $got installed from an empty cache and starts"
  # A cached install that does not start is installed again.
  find "$(dirname "$(dirname "$bin")")/re2" -name '*.node' -delete
  "$bin" --version >/dev/null 2>&1 && fail "gitlab-ci-local still starts without re2's native module: the check below proves nothing"
  bin=$("$root/hack/gitlab-ci-local.sh") || fail "hack/gitlab-ci-local.sh over a broken install"
  got=$("$bin" --version) || fail "a broken cached install was not installed again"
  echo "check-installs: npm: a broken cached install is installed again and starts"
}

check_go() {
  local c d
  "$root/hack/tools.sh" etcd helm crane kube-router || fail "hack/tools.sh etcd helm crane kube-router into an empty cache"
  for c in etcd helm crane kube-router; do
    d=$("$root/hack/tools.sh" --dir "$c")
    [ -x "$d/$c" ] || fail "$c not in $d after hack/tools.sh"
  done
  echo "check-installs: go: etcd, helm, crane and kube-router built into an empty cache; each starts"
}

check_apt() {
  local pkgs status=$scratch/dpkg-status out
  pkgs=$("$root/hack/deps.sh" --list)
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q >/dev/null || fail "apt-get update"
  elif ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
    echo "check-installs: apt: skipped: no package lists and not root (apt-get update needs root)"
    return
  fi
  : >"$status"
  # shellcheck disable=SC2086
  if ! out=$(apt-get -s -q -o Dir::State::status="$status" install --no-install-recommends $pkgs 2>&1); then
    echo "$out" | tail -n 20 >&2
    fail "hack/deps.sh's packages do not resolve on a machine with nothing installed"
  fi
  echo "check-installs: apt: all $(wc -w <<<"$pkgs") packages of hack/deps.sh resolve from nothing ($(grep -c '^Inst ' <<<"$out") to install)"
}

for c in "${checks[@]}"; do
  case $c in
  npm | go | apt)
    start=$SECONDS
    "check_$c"
    echo "check-installs: $c took $((SECONDS - start))s" ;;
  *) echo "check-installs: unknown check $c (npm, go, apt)" >&2; exit 2 ;;
  esac
done
