#!/usr/bin/env bash
# Install everything the testbed needs on a fresh Debian/Ubuntu machine, idempotently:
# Debian packages, Open vSwitch started (no systemd needed), the Python venv
# (scripts/venv.sh, which alone needs no root: enough for `make unit`).
# Safe to run again: each step checks first and does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(openvswitch-switch mininet iperf3 iputils-ping ethtool tcpdump iproute2 net-tools procps util-linux dcmtk curl openssl)
APT_PKGS+=(graphviz chromium fonts-dejavu-core)  # reports: topology drawings (dot); the HTML report test (chromium)
APT_PKGS+=(tshark)  # an independent dissector of the emulated N3 (GTP-U) in tests/ran
APT_PKGS+=(libtcmalloc-minimal4)  # ovs-vswitchd's allocator (scripts/ovs-start.sh: half the switch daemon's CPU per turn)
APT_PKGS+=(nmap)  # tests: a security tester's scans (SYN/ACK/FIN/Xmas/NULL, --source-port) against the slice rules
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup needs root (apt-get, Open vSwitch, network namespaces)" >&2; exit 3
fi

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d may refuse to start services in containers; that's fine, we start OVS below.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
  say "starting Open vSwitch (userspace/kernel datapath chosen at run time)"
fi
sh scripts/ovs-start.sh

VENV="$VENV" PYTHON="$PYTHON" bash scripts/venv.sh
# Docker engine, for `runtime: docker` nodes and tests/docker (CI runs them, not skips them).
# docker-engine.sh is idempotent; skip even calling it when the engine already answers.
# TESTBED_NO_DOCKER=1 leaves Docker alone (namespace-only machines).
if [ "${TESTBED_NO_DOCKER:-0}" != 1 ]; then
  if ! { command -v debootstrap >/dev/null && timeout 10 docker info >/dev/null 2>&1; }; then
    say "installing/starting the Docker engine (scripts/docker-engine.sh)"
    bash scripts/docker-engine.sh
  fi
fi
say "ready: $VENV/bin/testbed"
