#!/usr/bin/env bash
# Make sure a Docker engine is installed and answering, and that debootstrap
# (used by testbed/images to build node images locally) is installed.
#
# Idempotent: a second run finds everything in place and only says so.
# Works as root on a Debian/Ubuntu host with or without systemd, on cgroup v1
# or v2, and inside a privileged container (docker-in-docker).
#
# When this script starts dockerd itself it uses
#     --bridge=none --iptables=false --ip-masq=false
# so the engine creates no docker0 bridge and touches no NAT/iptables rules:
# containers are attached to the emulated network only by the testbed, and no
# emulated node gets a route to the host's real network.
#
# Environment (all optional):
#   TESTBED_DOCKERD_LOG      log file          (default /var/log/testbed-dockerd.log)
#   TESTBED_DOCKERD_PIDFILE  dockerd pidfile   (default /run/testbed-dockerd.pid)
#   TESTBED_DOCKERD_TIMEOUT  seconds to wait   (default 60)
#
# Prints exactly one line on success, e.g.
#   docker-engine: started dockerd (pid 1234, --bridge=none --iptables=false --ip-masq=false), engine 20.10.24, storage overlay2, cgroup v1, in 2.1 s
set -euo pipefail

LOG=${TESTBED_DOCKERD_LOG:-/var/log/testbed-dockerd.log}
PIDFILE=${TESTBED_DOCKERD_PIDFILE:-/run/testbed-dockerd.pid}
TIMEOUT=${TESTBED_DOCKERD_TIMEOUT:-60}
DOCKERD_FLAGS=(--bridge=none --iptables=false --ip-masq=false)

die() { echo "docker-engine: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and starts dockerd)"

installed=()
action=""

# ---------------------------------------------------------------- packages
missing_packages() {
    local pkgs=()
    command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
    command -v docker >/dev/null 2>&1 || pkgs+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || pkgs+=(debootstrap)
    # de-duplicate
    printf '%s\n' "${pkgs[@]}" | awk 'NF && !seen[$0]++'
}

apt_install() {
    # Keep dpkg from starting the docker service with its default flags
    # (docker0 bridge + iptables NAT) during installation: we start it below
    # with our own flags. Only add a policy-rc.d if none exists.
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    # shellcheck disable=SC2064
    trap "[ $own_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d" EXIT

    local apt_opts=(-y -q --no-install-recommends)
    # apt-get update only when apt does not know the packages yet, or when
    # the install fails (stale lists pointing at files the mirror dropped).
    local need_update=0 p
    for p in "$@"; do
        apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || need_update=1
    done
    if [ $need_update -eq 1 ]; then
        apt-get update -q >/dev/null || die "apt-get update failed"
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "$@" >/dev/null; then
        [ $need_update -eq 1 ] && die "apt-get install $* failed"
        apt-get update -q >/dev/null || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "$@" >/dev/null \
            || die "apt-get install $* failed"
    fi

    if [ $own_policy -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    trap - EXIT
}

mapfile -t to_install < <(missing_packages)
if [ ${#to_install[@]} -gt 0 ]; then
    apt_install "${to_install[@]}"
    installed=("${to_install[@]}")
fi

# ---------------------------------------------------------------- helpers
docker_ok() { timeout 10 docker info >/dev/null 2>&1; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

cgroup_version() {
    if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = "cgroup2fs" ]; then echo v2; else echo v1; fi
}

in_container() {
    [ -e /.dockerenv ] || [ -e /run/.containerenv ] && return 0
    grep -qa 'container=' /proc/1/environ 2>/dev/null && return 0
    return 1
}

# cgroup v2 inside a container: the container's root cgroup holds our
# processes, so controllers cannot be delegated to children ("no internal
# processes" rule) and dockerd fails to create container cgroups. Move every
# process into a child cgroup and enable the controllers for the subtree,
# as docker's own dind script does. Only done when enabling fails.
prepare_cgroup_v2_nesting() {
    [ "$(cgroup_version)" = v2 ] || return 0
    in_container || return 0
    local root=/sys/fs/cgroup
    [ -w "$root/cgroup.subtree_control" ] || return 0
    local ctrls
    ctrls=$(sed -e 's/ / +/g' -e 's/^/+/' <"$root/cgroup.controllers")
    [ -n "$ctrls" ] && [ "$ctrls" != "+" ] || return 0
    if echo "$ctrls" >"$root/cgroup.subtree_control" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$root/init"
    xargs -rn1 <"$root/cgroup.procs" >"$root/init/cgroup.procs" 2>/dev/null || true
    echo "$ctrls" >"$root/cgroup.subtree_control" 2>/dev/null \
        || echo "docker-engine: warning: could not delegate cgroup v2 controllers" >&2
}

wait_for_docker() {
    local pid=${1:-} deadline=$((SECONDS + TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        docker_ok && return 0
        if [ -n "$pid" ] && ! pid_alive "$pid"; then
            die "dockerd (pid $pid) exited during start-up; last log lines:
$(tail -n 20 "$LOG" 2>/dev/null)"
        fi
        sleep 0.5
    done
    die "docker info still failing after ${TIMEOUT}s; see $LOG"
}

engine_summary() {
    docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null \
        || echo "engine (version unknown)"
}

# ---------------------------------------------------------------- engine
t0=$SECONDS
if docker_ok; then
    action="engine already running"
else
    oldpid=$(cat "$PIDFILE" 2>/dev/null || true)
    if pid_alive "$oldpid" && grep -qa dockerd "/proc/$oldpid/cmdline" 2>/dev/null; then
        # Ours, still starting (or stuck): wait instead of starting a second one.
        wait_for_docker "$oldpid"
        action="waited for dockerd (pid $oldpid) that was starting"
    elif [ ${#installed[@]} -eq 0 ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] \
        && systemctl cat docker.service >/dev/null 2>&1 && ! in_container; then
        # A systemd host whose docker service was set up before us: start the
        # user's service with its own configuration rather than a second
        # engine (the testbed gives every node --network none anyway).
        systemctl start docker.service || die "systemctl start docker failed"
        wait_for_docker ""
        action="started docker.service via systemd"
    else
        prepare_cgroup_v2_nesting
        mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
        echo "=== $(date -Is) docker-engine.sh: dockerd ${DOCKERD_FLAGS[*]} --pidfile=$PIDFILE" >>"$LOG"
        # setsid + nohup: detach from this shell's session so the engine
        # outlives the script; all output goes to the log.
        setsid nohup dockerd "${DOCKERD_FLAGS[@]}" --pidfile="$PIDFILE" \
            </dev/null >>"$LOG" 2>&1 &
        pid=$!
        wait_for_docker "$pid"
        action="started dockerd (pid $pid, ${DOCKERD_FLAGS[*]}, log $LOG)"
    fi
fi

prefix=""
[ ${#installed[@]} -gt 0 ] && prefix="installed ${installed[*]}; "
echo "docker-engine: ${prefix}${action}, $(engine_summary), in $((SECONDS - t0)) s"
