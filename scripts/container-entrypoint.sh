#!/bin/sh
# Entry point of the testbed's own container image (see ../Dockerfile): make the container
# look like the VM the testbed normally runs on, then run the given command.
#  - /sys writable (Docker mounts it read-only unless --privileged; we need it for interfaces)
#  - Open vSwitch started (no systemd in the container; userspace datapath chosen at run time)
set -eu
if grep -qE '^sysfs /sys sysfs ro' /proc/mounts; then
    mount -o remount,rw /sys 2>/dev/null || echo "entrypoint: /sys stays read-only" >&2
fi
if ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    # the database first, then userspace TSO (read once, at the daemon's start), then the daemon
    ctl=/usr/share/openvswitch/scripts/ovs-ctl
    $ctl --no-ovs-vswitchd start --system-id=random >/dev/null 2>&1 || $ctl --no-ovs-vswitchd start >&2
    [ "${TESTBED_OVS_TSO:-1}" = 0 ] || ovs-vsctl --no-wait --timeout=10 set Open_vSwitch . other_config:userspace-tso-enable=true
    $ctl --no-ovsdb-server start --system-id=random >/dev/null 2>&1 || $ctl --no-ovsdb-server start >&2
fi
exec "$@"
