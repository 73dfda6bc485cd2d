#!/usr/bin/env bash
# gitlab-ci-local.sh installs gitlab-ci-local (a GitLab CI interpreter, from
# npm) into the tools cache once, and prints the path of its binary. make e2e
# runs the example pipeline through it (e2e/gitlab_test.go); it runs the
# jobs' scripts with the shell executor, which needs rsync.
#
# Cache: ${SHIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipper}/npm/gitlab-ci-local-<version>/
set -euo pipefail
version=4.60.0 # runs on Node 20
cache=${SHIPPER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shipper}
dir=$cache/npm/gitlab-ci-local-$version
bin=$dir/node_modules/.bin/gitlab-ci-local
# Installed only when its package.json says this version: a partial install
# is done again.
if ! grep -q "\"version\": \"$version\"" "$dir/node_modules/gitlab-ci-local/package.json" 2>/dev/null; then
  command -v npm >/dev/null || { echo "gitlab-ci-local.sh: npm (Node.js 20) is needed to install gitlab-ci-local" >&2; exit 1; }
  mkdir -p "$dir"
  echo "gitlab-ci-local.sh: installing gitlab-ci-local@$version into $dir" >&2
  # No install scripts (this runs as root under make e2e): gitlab-ci-local
  # needs none of them with the shell executor.
  npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error "gitlab-ci-local@$version" >&2
fi
echo "$bin"
