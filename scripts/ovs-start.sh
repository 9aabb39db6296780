#!/bin/sh
# Open vSwitch up, with userspace TSO and a thread-caching allocator. Used by scripts/setup.sh and the
# container entrypoint; quiet unless it restarts the daemon.
#
# - Userspace TSO (testbed/netdev.py: TCP crosses the userspace switches as 64 KB frames, ~10x faster).
#   ovs-vswitchd reads the setting once, when it starts, so it is set between the database and the daemon.
#   TESTBED_OVS_TSO=0 leaves the setting alone (every interface then runs offloads off).
# - tcmalloc (libtcmalloc-minimal4, preloaded). Every turn of the daemon's main loop polls each veth port
#   for frames, and each poll allocates and frees a batch of 32 packet buffers (about 1.6 KB each: above
#   glibc's per-thread cache, so each goes through its bins). A turn is what a frame waits for at every
#   pass through the switches. Measured with 37 bridges and 120 ports, as the reference alliance has:
#   the daemon's CPU 350 -> 170 ticks and the round trip across one bridge 2.2 -> 0.9 ms.
#   TESTBED_OVS_MALLOC=glibc runs the daemon with glibc's allocator.
# A daemon already running without either is restarted (its bridges stay in the database, ovs-ctl
# restores their flows).
set -eu
ctl=/usr/share/openvswitch/scripts/ovs-ctl
pidfile=/var/run/openvswitch/ovs-vswitchd.pid
tso_wanted() {
    [ "${TESTBED_OVS_TSO:-1}" != 0 ] && [ "$(ovs-vsctl --timeout=3 get Open_vSwitch . \
        other_config:userspace-tso-enable 2>/dev/null)" != '"true"' ]
}
tcmalloc=""
if [ "${TESTBED_OVS_MALLOC:-tcmalloc}" != glibc ]; then
    for lib in /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4; do
        if [ -e "$lib" ]; then tcmalloc=$lib; break; fi
    done
fi
# the running daemon's allocator differs from the one wanted
malloc_wrong() {
    has=no
    if [ -r "$pidfile" ] && grep -q libtcmalloc "/proc/$(cat "$pidfile")/maps" 2>/dev/null; then has=yes; fi
    if [ -n "$tcmalloc" ]; then [ $has = no ]; else [ $has = yes ]; fi
}
vswitchd() {  # ovs-ctl with the allocator in the daemon's environment
    if [ -n "$tcmalloc" ]; then LD_PRELOAD="$tcmalloc" $ctl "$@"; else env -u LD_PRELOAD $ctl "$@"; fi
}
if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    $ctl --no-ovs-vswitchd start --system-id=random >/dev/null 2>&1 || $ctl --no-ovs-vswitchd start >&2
    # --no-wait: no ovs-vswitchd yet to acknowledge the change
    if tso_wanted; then ovs-vsctl --no-wait --timeout=10 set Open_vSwitch . other_config:userspace-tso-enable=true; fi
    vswitchd --no-ovsdb-server start --system-id=random >/dev/null 2>&1 || vswitchd --no-ovsdb-server start >&2
elif tso_wanted || malloc_wrong; then
    if tso_wanted; then
        echo "ovs-start: enabling userspace TSO: restarting ovs-vswitchd (bridges kept, flows restored)" >&2
        ovs-vsctl --timeout=10 set Open_vSwitch . other_config:userspace-tso-enable=true
    else
        echo "ovs-start: restarting ovs-vswitchd with ${tcmalloc:-glibc's allocator} (bridges kept, flows restored)" >&2
    fi
    vswitchd --no-ovsdb-server restart >/dev/null
fi
ovs-vsctl --timeout=10 show >/dev/null
