"""A docker node next to namespace nodes: connectivity, exec, environment, limits (live), cleanup."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.engine.testbed import Testbed
from testbed.images import NODE_IMAGE, build_image

from tests.helpers import leftovers

from .conftest import HERE, TESTBED, cli, labelled

TOPO = HERE / "one-docker.yaml"


def _read(tb, node: str, *files: str) -> list[str]:
    r = tb.node(node).run(["cat", *files])
    assert r.returncode == 0, f"cannot read {files} in {node}: {r.stderr}"
    return r.stdout.split()


def _cgroup(tb, node: str) -> dict[str, float | int | None]:
    """The CPU and memory limits in force for `node`, read from its own cgroup files:
    {"cpus": quota/period or None if unlimited, "memory": bytes or None if unlimited}."""
    v2 = tb.node(node).run(["test", "-e", "/sys/fs/cgroup/cgroup.controllers"]).returncode == 0
    # the container's hierarchy is the host's kind (Docker does not mix them)
    assert v2 == Path("/sys/fs/cgroup/cgroup.controllers").exists()
    if v2:
        # cpu.max: "<quota> <period>" or "max <period>"; memory.max: bytes or "max"
        quota, period, memory = _read(tb, node, "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/memory.max")
        return {"cpus": None if quota == "max" else int(quota) / int(period),
                "memory": None if memory == "max" else int(memory)}
    # v1: cfs_quota_us is -1 when unlimited; memory.limit_in_bytes is a huge page-rounded
    # LONG_MAX then (9223372036854771712), i.e. anything at or above 2**62
    quota, period, memory = _read(tb, node, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                                  "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
                                  "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    return {"cpus": None if int(quota) < 0 else int(quota) / int(period),
            "memory": None if int(memory) >= 2**62 else int(memory)}


def test_docker_node_in_the_network(state_dir, record_property):
    with Testbed.from_file(TOPO) as tb:
        rid = tb.run_id
        rec = tb.manifest.nodes["vdi-01"]
        assert rec.runtime == "docker" and rec.container == f"tb{rid}-vdi-01"
        assert labelled(rid) == [rec.container]
        assert f"container {rec.container}" in leftovers(rid, state_dir)  # the helper sees it
        record_property("containers_s", round(tb.timings["containers_s"], 2))
        vdi, emr = tb.node("vdi-01"), tb.node("emr")
        # both ways, to a namespace node and back
        assert vdi.run(["ping", "-c3", "-W2", emr.ip]).returncode == 0
        assert emr.run(["ping", "-c3", "-W2", vdi.ip]).returncode == 0
        assert tb.node("tablet").run(["ping", "-c2", "-W2", "vdi-01"]).returncode == 0  # hosts file in namespaces
        assert vdi.run(["ping", "-c2", "-W2", "emr"]).returncode == 0  # ... and in the container
        # commands see the container: its file system, hostname and environment
        assert vdi.cmd("echo $TESTBED_ROLE").strip() == "vdi"
        assert "bookworm" in vdi.run(["cat", "/etc/os-release"]).stdout
        assert vdi.run(["hostname"]).stdout.strip() == "vdi-01"
        marker = vdi.run(["cat", "/proc/1/cmdline"]).stdout  # pid 1 of the container's pid namespace
        assert "docker-init" in marker or "sleep" in marker
        # the testbed's own agents (host interpreter path) run inside the container
        r = vdi.run([sys.executable, "-c", "import scapy.all, traffic.sink; print('ok')"])
        assert r.stdout.strip() == "ok", r.stderr
        # `testbed exec` from another process: same container, same environment, in its cgroups
        env = dict(os.environ)
        r = subprocess.run([*TESTBED, "exec", "vdi-01", "--", "sh", "-c",
                            "echo $TESTBED_ROLE; cat /etc/hostname; cat /proc/self/cgroup"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "vdi" and lines[1] == "vdi-01"
        cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", rec.container], capture_output=True,
                             text=True).stdout.strip()
        assert any(cid in ln for ln in lines[2:] if ":memory:" in ln or ln.startswith("0::")), r.stdout
    assert labelled(rid) == []
    assert leftovers(rid, state_dir) == []


def test_limits_in_effect_and_changed_live(state_dir, record_property):
    with Testbed.from_file(TOPO) as tb:
        before = _cgroup(tb, "vdi-01")
        assert before["cpus"] == pytest.approx(0.5)
        assert before["memory"] == 256 * 2**20
        # limits are felt: a busy loop in the node gets about half a CPU
        r = tb.node("vdi-01").run([sys.executable, "-c", (
            "import time, resource\n"
            "t=time.monotonic()\n"
            "while time.monotonic()-t<2: pass\n"
            "u=resource.getrusage(resource.RUSAGE_SELF)\n"
            "print((u.ru_utime+u.ru_stime)/(time.monotonic()-t))")])
        share = float(r.stdout)
        record_property("cpu_share_at_0_5", round(share, 2))
        assert share < 0.7, share
        env = {**os.environ}
        out = subprocess.run([*TESTBED, "node", "set", "vdi-01", "cpus=1.5", "memory=512m"], capture_output=True,
                             text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        assert "cpus 1.5" in out.stdout and "512m" in out.stdout
        after = _cgroup(tb, "vdi-01")
        assert after["cpus"] == pytest.approx(1.5)
        assert after["memory"] == 512 * 2**20
        # and lowered again, through the library
        from testbed.engine import runtimes

        rec = tb.manifest.nodes["vdi-01"]
        assert runtimes.new(rec.runtime).set_limits(rec, ["memory=128m"])["memory"] == 128 * 2**20
        assert _cgroup(tb, "vdi-01")["memory"] == 128 * 2**20
        bad = subprocess.run([*TESTBED, "node", "set", "emr", "cpus=1"], capture_output=True, text=True, env=env)
        assert bad.returncode == 2 and "namespace node" in bad.stderr


def test_clean_after_sigkill_removes_containers(state_dir):
    proc = subprocess.Popen([*TESTBED, "up", "--quiet", str(TOPO)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        rid = None
        while time.monotonic() < deadline:
            runs = json.loads(cli("status", "--json").stdout)
            if runs and runs[0]["state"] == "up":
                rid = runs[0]["run_id"]
                break
            assert proc.poll() is None, "testbed up exited"
            time.sleep(0.3)
        assert rid, "not up in 120 s"
        assert len(labelled(rid)) == 1
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert len(labelled(rid)) == 1  # survives its owner
        out = cli("clean").stdout
        assert rid in out
        assert labelled(rid) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        cli("clean", check=False)


def test_clean_removes_labelled_containers_without_manifest_only(state_dir):
    """A container labelled by a run whose manifest is gone is removed; unlabelled ones never are."""
    ours = subprocess.run(["docker", "run", "-d", "--network", "none", "--label",
                           "org.medalliance.testbed.run=ffff", "--name", "tbffff-orphan", NODE_IMAGE.name,
                           "sleep", "60"], capture_output=True, text=True, timeout=60)
    other = subprocess.run(["docker", "run", "-d", "--network", "none", "--name", f"not-ours-{os.getpid()}",
                            NODE_IMAGE.name, "sleep", "60"], capture_output=True, text=True, timeout=60)
    try:
        assert ours.returncode == 0 and other.returncode == 0, ours.stderr + other.stderr
        out = cli("clean").stdout
        assert "tbffff-orphan" in out
        assert labelled("ffff") == []
        assert subprocess.run(["docker", "inspect", f"not-ours-{os.getpid()}"], capture_output=True).returncode == 0
    finally:
        subprocess.run(["docker", "rm", "-f", "tbffff-orphan", f"not-ours-{os.getpid()}"], capture_output=True)


def test_unknown_image_is_a_clear_error(state_dir, write_topo):
    path = write_topo(image="no-such/image:1")
    r = cli("up", "--quiet", str(path), check=False, timeout=120)
    assert r.returncode == 2 and "not in the local Docker engine" in r.stderr


@pytest.fixture
def write_topo(tmp_path):
    def write(image: str):
        text = TOPO.read_text().replace("runtime: docker", f"runtime: docker\n    image: {image}")
        p = tmp_path / "topo.yaml"
        p.write_text(text)
        return p
    return write


def test_startup_cost_and_image_cache(state_dir, record_property):
    """Measured: the cached image check, and a docker node's extra start-up time over a namespace node."""
    cached = build_image(NODE_IMAGE)
    assert cached.cached and cached.seconds < 5
    record_property("image_cached_build_s", round(cached.seconds, 3))
    from testbed.engine.mn import DockerHost, TbHost, new_net
    from testbed.engine import docker_node

    net = new_net()
    t0 = time.monotonic()
    h = net.addHost("tbfffeh00", cls=TbHost)
    ns_s = time.monotonic() - t0
    spec = docker_node.ContainerSpec(name="tbfffe-measure", run_id="fffe", node="measure", image=NODE_IMAGE.name)
    try:
        t0 = time.monotonic()
        c = docker_node.start_container(spec)
        d = net.addHost("tbfffeh01", cls=DockerHost, container=c, image=c.image)
        docker_s = time.monotonic() - t0
        assert d.cmd("hostname").strip() == "measure"
    finally:
        for node in net.hosts:
            node.stop()  # Mininet: SIGHUP the shell, close its pty
        docker_node.remove_containers(["tbfffe-measure"])
    record_property("namespace_node_s", round(ns_s, 3))
    record_property("docker_node_s", round(docker_s, 3))
    print(f"\nnamespace node {ns_s:.3f} s, docker node {docker_s:.3f} s (+{docker_s - ns_s:.3f} s), "
          f"image cache check {cached.seconds:.3f} s")
