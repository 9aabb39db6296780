# The testbed itself in a container, for CI runners whose jobs run in a privileged container.
#
# No registry is reachable, so the base is the testbed's own node image, built locally from
# Debian packages (`testbed images build`). Python packages come from a wheelhouse made on the
# host by the host's own pip (its index, proxy and CA settings), so the build needs no PyPI
# access; apt needs host networking (dockerd runs with --bridge=none). All in one:
#
#   scripts/build-runner-image.sh            # -> testbed/runner:local
#   docker run --rm --privileged --network none testbed/runner:local testbed run topologies/minimal.yaml
#
# `--privileged` fails on hosts whose capability bounding set lacks a capability (on our CI VMs,
# CAP_SYS_RESOURCE: "unable to apply caps"); then give every capability the host has instead:
#   --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined
#   --security-opt apparmor=unconfined --security-opt systempaths=unconfined --device /dev/net/tun
# (tests/docker/test_privileged_container.py picks whichever works, and says which.)
# --network none is enough and keeps emulated traffic off the host's network: the testbed only
# needs loopback (controller) and the namespaces it creates itself.
ARG BASE=testbed/node:bookworm
FROM ${BASE}

RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      openvswitch-switch mininet iperf3 iputils-ping ethtool tcpdump iproute2 net-tools procps \
      util-linux kmod python3-venv python3-pip libtcmalloc-minimal4 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/testbed
COPY build/wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install -q --no-cache-dir --no-index --find-links /tmp/wheelhouse \
      'medalliance-testbed[dev]' \
 && rm -rf /tmp/wheelhouse
COPY topologies ./topologies
COPY schemas ./schemas
COPY scripts ./scripts

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/opt/testbed/scripts/container-entrypoint.sh"]
CMD ["testbed", "doctor"]
