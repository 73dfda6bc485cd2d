#!/usr/bin/env bash
# gitlab-ci-local.sh installs gitlab-ci-local (a GitLab CI interpreter, from
# npm) into the tools cache once, and prints the path of its binary. make e2e
# and make demo run the example pipeline through it (e2e/gitlab_test.go),
# with its shell executor, which needs rsync.
#
#   hack/gitlab-ci-local.sh            install when needed, print the binary
#
# What is installed is tools/gitlab-ci-local/package-lock.json, with `npm ci`:
# the same versions on every machine. Install scripts are not run (this runs
# as root under make e2e); the one package that needs its script, re2, has a
# native module, built here with node-gyp against this machine's Node.js
# headers and no download (its script would first fetch a prebuilt binary
# from GitHub). A package with an install script this file does not know is
# an error, so a new dependency cannot slip in half-installed.
#
# The cache folder is named after the lock file and this script: changing
# either installs anew instead of trusting an install made the old way (an
# install from an older script hid a missing re2 build on warm machines).
# A cached install is used only when `gitlab-ci-local --version` answers
# with the locked version; otherwise it is installed again.
#
# Cache: ${SHIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipper}/npm/gitlab-ci-local-<version>-<hash>/
# npm's own cache is npm's (npm_config_cache); hack/check-installs.sh runs
# this with both empty.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tools/gitlab-ci-local
cache=${SHIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipper}
version=$(sed -n 's/^ *"gitlab-ci-local": "\([0-9.]*\)"$/\1/p' "$src/package.json")
[ -n "$version" ] || { echo "gitlab-ci-local.sh: no gitlab-ci-local version in $src/package.json" >&2; exit 1; }
hash=$(cat "$src/package-lock.json" "$0" | sha256sum | cut -c1-12)
dir=$cache/npm/gitlab-ci-local-$version-$hash
bin=$dir/node_modules/.bin/gitlab-ci-local

# works DIR: the install in DIR starts and is the locked version.
works() {
  local got
  got=$("$1/node_modules/.bin/gitlab-ci-local" --version 2>/dev/null) && [ "$got" = "$version" ]
}

if works "$dir"; then
  echo "$bin"
  exit 0
fi

command -v npm >/dev/null || { echo "gitlab-ci-local.sh: npm (Node.js 20) is needed to install gitlab-ci-local" >&2; exit 1; }
node=$(readlink -f "$(command -v node)")
nodedir=$(dirname "$(dirname "$node")")
[ -f "$nodedir/include/node/node.h" ] || {
  echo "gitlab-ci-local.sh: Node.js headers not found in $nodedir/include/node (re2's native module is built against them): install the Node.js development headers for $("$node" --version)" >&2
  exit 1
}
for t in make g++ python3; do
  command -v $t >/dev/null || { echo "gitlab-ci-local.sh: $t is needed to build re2's native module (hack/deps.sh npm installs it)" >&2; exit 1; }
done

mkdir -p "$cache/npm"
# One install at a time: two tests or makes starting together wait here,
# and the second finds the first's install.
exec 9>"$cache/npm/.gitlab-ci-local.lock"
flock 9
if works "$dir"; then
  echo "$bin"
  exit 0
fi

echo "gitlab-ci-local.sh: installing gitlab-ci-local@$version into $dir" >&2
start=$SECONDS
tmp=$(mktemp -d "$cache/npm/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$tmp/"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)

# The packages whose install scripts were skipped: re2 is built here, any
# other is refused.
scripted=$(cd "$tmp" && node -e '
  const lock = require("./package-lock.json");
  for (const [p, m] of Object.entries(lock.packages)) if (m.hasInstallScript) console.log(p);')
for p in $scripted; do
  case $p in
  node_modules/re2)
    # node-gyp from re2's own dependencies, offline: --nodedir points at the
    # installed headers, so nothing is downloaded.
    gyp=$tmp/node_modules/node-gyp/bin/node-gyp.js
    [ -f "$gyp" ] || gyp=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js
    echo "gitlab-ci-local.sh: building re2's native module" >&2
    if ! (cd "$tmp/$p" && "$node" "$gyp" rebuild -j "$(nproc)" --nodedir="$nodedir" --loglevel=warn) >"$tmp/re2-build.log" 2>&1; then
      tail -n 30 "$tmp/re2-build.log" >&2
      echo "gitlab-ci-local.sh: building re2's native module failed (above)" >&2
      exit 1
    fi ;;
  *)
    echo "gitlab-ci-local.sh: $p has an install script this file does not run: decide how to install it (tools/gitlab-ci-local/package-lock.json)" >&2
    exit 1 ;;
  esac
done

if ! works "$tmp"; then
  echo "gitlab-ci-local.sh: the install does not start:" >&2
  "$tmp/node_modules/.bin/gitlab-ci-local" --version >&2 || true
  exit 1
fi
# Into place in one rename: a killed install never looks finished.
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "gitlab-ci-local.sh: installed in $((SECONDS - start))s" >&2
echo "$bin"
