#!/bin/sh
# Open vSwitch up, with userspace TSO (testbed/netdev.py: TCP crosses the userspace switches as 64 KB
# frames, ~10x faster). ovs-vswitchd reads the setting once, when it starts, so it is set between the
# database and the daemon; a daemon already running without it is restarted (its bridges stay in the
# database, ovs-ctl restores their flows). TESTBED_OVS_TSO=0 leaves the setting alone (every interface
# then runs offloads off). Used by scripts/setup.sh and the container entrypoint; quiet unless it restarts.
set -eu
ctl=/usr/share/openvswitch/scripts/ovs-ctl
tso_wanted() {
    [ "${TESTBED_OVS_TSO:-1}" != 0 ] && [ "$(ovs-vsctl --timeout=3 get Open_vSwitch . \
        other_config:userspace-tso-enable 2>/dev/null)" != '"true"' ]
}
if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    $ctl --no-ovs-vswitchd start --system-id=random >/dev/null 2>&1 || $ctl --no-ovs-vswitchd start >&2
    # --no-wait: no ovs-vswitchd yet to acknowledge the change
    if tso_wanted; then ovs-vsctl --no-wait --timeout=10 set Open_vSwitch . other_config:userspace-tso-enable=true; fi
    $ctl --no-ovsdb-server start --system-id=random >/dev/null 2>&1 || $ctl --no-ovsdb-server start >&2
elif tso_wanted; then
    echo "ovs-start: enabling userspace TSO: restarting ovs-vswitchd (bridges kept, flows restored)" >&2
    ovs-vsctl --timeout=10 set Open_vSwitch . other_config:userspace-tso-enable=true
    $ctl --no-ovsdb-server restart >/dev/null
fi
ovs-vsctl --timeout=10 show >/dev/null
