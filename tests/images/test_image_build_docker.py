"""Build the real node image, reuse it, and run a container from it.

Needs root, a running Docker engine (scripts/docker-engine.sh) and the Debian
mirror. The cold build takes about a minute; the image is left in place for the
rest of the suite, which then finds it cached.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from testbed.images import LABEL_INPUTS, NODE_IMAGE, build_image, image_exists, list_images

RUN_LABEL = "org.medalliance.testbed.run=helper-test"


def _engine_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("docker") is None or shutil.which("debootstrap") is None:
        return "docker/debootstrap missing (run scripts/docker-engine.sh)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "Docker engine not running (run scripts/docker-engine.sh)"
    return None


pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.skipif(_engine_ready() is not None, reason=str(_engine_ready())),
]


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def node_image(record_testsuite_property):
    """Cold build (forced), then a second build that must come from the cache."""
    events: list[str] = []
    cold = build_image(NODE_IMAGE, force=True, on_event=events.append)
    cached = build_image(NODE_IMAGE, on_event=events.append)
    record_testsuite_property("image_cold_build_seconds", round(cold.seconds, 2))
    record_testsuite_property("image_cached_build_seconds", round(cached.seconds, 3))
    print(f"\nnode image: cold build {cold.seconds:.1f} s, cached build {cached.seconds:.3f} s")
    return cold, cached, events


def test_cold_build_then_cached(node_image):
    cold, cached, events = node_image
    assert not cold.cached
    assert cached.cached
    assert cached.seconds < 5
    assert cached.image_id == cold.image_id and cached.inputs_hash == cold.inputs_hash
    assert any("debootstrap" in e for e in events)
    assert image_exists(NODE_IMAGE.name)
    listed = {i.image_id: i for i in list_images()}
    assert listed[cold.image_id].inputs_hash == cold.inputs_hash
    assert NODE_IMAGE.name in listed[cold.image_id].tags
    assert not [p for p in os.listdir("/var/tmp") if p.startswith("testbed-image-") and not p.endswith(".lock")]


def test_container_has_the_node_tools(node_image):
    name = f"tb-helper-test-{uuid.uuid4().hex[:8]}"
    try:
        run = docker("run", "-d", "--name", name, "--network", "none", "--label", RUN_LABEL, NODE_IMAGE.name)
        assert run.returncode == 0, run.stderr
        labels = docker("inspect", "-f", "{{json .Config.Labels}}", name).stdout
        assert LABEL_INPUTS in labels
        for cmd, expect in [
            (["ip", "-V"], "iproute2"),
            (["iperf3", "--version"], "iperf 3"),
            (["python3", "-c", "import scapy; print('scapy', scapy.__version__)"], "scapy"),
        ]:
            res = docker("exec", name, *cmd)
            assert res.returncode == 0, f"{cmd}: {res.stderr}"
            assert expect in res.stdout + res.stderr
        # --network none: only loopback inside.
        links = docker("exec", name, "ip", "-o", "link").stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    finally:
        docker("rm", "-f", name)
    assert docker("inspect", name).returncode != 0


def test_engine_script_is_a_noop_when_the_engine_runs():
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "docker-engine.sh")
    res = subprocess.run(["bash", script], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and "engine already running" in lines[0], res.stdout
