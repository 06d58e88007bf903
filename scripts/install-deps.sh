#!/usr/bin/env bash
# Installs the system tools that mirra's integration tests and bench drive: NBD clients nobody
# here wrote (libnbd's nbdinfo/nbdcopy/nbdsh/nbdfuse, QEMU's qemu-img, fio's nbd engine), the
# reference server (nbdkit), the bench's QEMU quorum peer (qemu-storage-daemon) and a font for
# the bench's charts. Meant for root on a bare Debian 12; idempotent: it asks apt
# only for what is missing and runs `apt-get update` at most once, only when it must install.
# Exits non-zero when a package cannot be installed or a tool is still missing afterwards.
#
# --bench-peers also installs the bench's single-host Ceph peer (`ceph-rbd`): about 400 MB of
# packages that only `mirra bench` uses, so the test suite never asks for them. Installing them
# starts no daemon and writes no cluster configuration; the bench builds its own, in its work
# directory, and passes it explicitly (-c / CEPH_CONF), never /etc/ceph.
set -euo pipefail

usage() { printf 'usage: %s [--bench-peers]\n' "$0"; }
bench_peers=0
for arg in "$@"; do
  case $arg in
    --bench-peers) bench_peers=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

# Each entry is "package:command", where the command proves the package is usable. nbdfuse is
# a virtual package in Debian 12, provided by libnbd-bin, so it is checked by its command.
# python3-libnbd is nbdsh (the tests drive TRIM, WRITE_ZEROES, FUA and FLUSH through it).
wanted=(
  "fio:fio"
  "libnbd-bin:nbdinfo"
  "libnbd-bin:nbdcopy"
  "libnbd-bin:nbdfuse"
  "python3-libnbd:nbdsh"
  "nbdkit:nbdkit"
  "qemu-utils:qemu-img"
  # mirra bench's qemu-quorum peer: Debian 12 ships qemu-storage-daemon in qemu-system-common.
  "qemu-system-common:qemu-storage-daemon"
  # The bench's PNG charts are rasterised by resvg from system fonts (checked by file).
  "fonts-dejavu-core:DejaVuSans.ttf"
  # promtool checks the daemon's Prometheus metrics in the tests; the server itself scrapes a
  # three-node cluster and runs the Piraeus alerts (test/integration/prometheus_cluster.test.ts).
  "prometheus:promtool"
  "prometheus:prometheus"
  "coreutils:stat"
  # node-gyp builds mirra's native addon (fallocate for TRIM/WRITE_ZEROES) at npm install.
  "python3:python3"
  "make:make"
  "g++:g++"
)
# ceph-rbd: a monitor, a manager and OSDs, the `ceph`/`rbd` tools and monmaptool (ceph-base, a
# dependency of ceph-mon). fio's rbd engine uses librbd1, which Debian's fio already depends on.
readonly bench_peer_packages=(
  "ceph-mon:ceph-mon"
  "ceph-mgr:ceph-mgr"
  "ceph-osd:ceph-osd"
  "ceph-common:ceph"
  "ceph-common:rbd"
  "ceph-base:monmaptool"
)
if [[ $bench_peers -eq 1 ]]; then
  wanted+=("${bench_peer_packages[@]}")
fi

log() { printf 'install-deps: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (it calls apt-get install)" >&2
  exit 1
fi

# The command check alone is not enough for nbdsh: it runs `python3 -m nbd`, and a python3 from
# pyenv earlier in PATH lacks Debian's module, so the tests call /usr/bin/python3 directly.
is_present() {
  local package=$1 command=$2
  if [[ $package == python3-libnbd ]]; then
    /usr/bin/python3 -c 'import nbd' >/dev/null 2>&1
  elif [[ $package == fonts-dejavu-core ]]; then
    [[ -f /usr/share/fonts/truetype/dejavu/$command ]]
  else
    command -v "$command" >/dev/null 2>&1
  fi
}

missing=()
for entry in "${wanted[@]}"; do
  package=${entry%%:*}
  command=${entry#*:}
  # Quiet when present: only what is missing is worth a line.
  if is_present "$package" "$command"; then
    :
  elif [[ " ${missing[*]-} " != *" $package "* ]]; then
    log "missing: $command ($package)"
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "nothing to install (${#wanted[@]} tools present)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -q
log "apt-get install ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"

status=0
for entry in "${wanted[@]}"; do
  package=${entry%%:*}
  command=${entry#*:}
  if ! is_present "$package" "$command"; then
    log "still missing after install: $command ($package)" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && log "installed: ${missing[*]}"
exit "$status"
