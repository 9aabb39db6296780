#!/bin/sh
# Entry point of the testbed's own container image (see ../Dockerfile): make the container
# look like the VM the testbed normally runs on, then run the given command.
#  - /sys writable (Docker mounts it read-only unless --privileged; we need it for interfaces)
#  - Open vSwitch started, with userspace TSO (scripts/ovs-start.sh; no systemd in the container)
set -eu
if grep -qE '^sysfs /sys sysfs ro' /proc/mounts; then
    mount -o remount,rw /sys 2>/dev/null || echo "entrypoint: /sys stays read-only" >&2
fi
sh "$(dirname "$0")/ovs-start.sh"
exec "$@"
