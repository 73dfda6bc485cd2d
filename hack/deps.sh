#!/usr/bin/env bash
# deps.sh installs the Debian packages a make target needs, when missing,
# so `make test` and `make demo` work on a fresh machine of this kind.
#
#   hack/deps.sh test|node|bench|image|runtimes|npm|browser...
#   hack/deps.sh --list [set...]      print the packages of the sets (of all)
set -euo pipefail

declare -A sets=(
  # postgresql: testenv.StartPostgres runs its 15 binaries (initdb, postgres).
  [test]="docker-registry postgresql make git ca-certificates"
  # ipset: kube-router's firewall, the node's NetworkPolicy enforcer.
  [node]="containerd runc containernetworking-plugins iptables ipset kmod iproute2 rsync"
  [bench]="time"
  [image]="busybox-static ca-certificates"
  # The interpreters testenv.RuntimeBase builds the sample apps' bases from.
  [runtimes]="nodejs php8.2-cli python3 ruby ruby-webrick"
  # What hack/gitlab-ci-local.sh builds re2's native module with (npm and
  # the Node.js headers come with the machine's Node.js).
  [npm]="g++ make python3"
  # testenv.StartBrowser drives Debian's headless Chromium (the gate's
  # browser tests); DejaVu gives its screenshots a font to draw text with.
  [browser]="chromium fonts-dejavu-core"
)
list=false
if [ "${1:-}" = --list ]; then
  list=true; shift
  [ $# -gt 0 ] || set -- "${!sets[@]}"
fi
want=""
for s in "$@"; do
  [ -n "${sets[$s]:-}" ] || { echo "deps.sh: unknown set $s (${!sets[*]})" >&2; exit 2; }
  want+=" ${sets[$s]}"
done
if $list; then
  echo $want | tr ' ' '\n' | sort -u | tr '\n' ' '; echo; exit 0
fi
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=" $p"
done
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing Debian packages:$missing; install them as root (apt-get install$missing)" >&2
  exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Installing docker-registry or containerd must not start system services:
# the tests start their own. policy-rc.d forbids service starts meanwhile.
had_policy=false; [ -e /usr/sbin/policy-rc.d ] && had_policy=true
$had_policy || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
trap '$had_policy || rm -f /usr/sbin/policy-rc.d' EXIT
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
