"""The inputs hash decides when a node image is rebuilt: it must move with every
input and with nothing else."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.images.errors import ImageSpecError
from testbed.images.spec import (
    LABEL_INPUTS,
    NODE_IMAGE,
    ExtraFile,
    ImageSpec,
    docker_changes,
    inputs_hash,
)

MIRROR = "http://deb.debian.org/debian"
REPO = Path(__file__).resolve().parents[2]


def spec(**kw) -> ImageSpec:
    base = dict(name="testbed/node:bookworm", packages=("iproute2", "iperf3", "python3"))
    base.update(kw)
    return ImageSpec(**base)


def h(s: ImageSpec, mirror: str = MIRROR, arch: str = "amd64") -> str:
    return inputs_hash(s, mirror, arch)


def test_hash_is_a_sha256_hex_digest():
    assert re.fullmatch(r"[0-9a-f]{64}", h(spec()))


def test_hash_is_the_same_for_separately_built_equal_specs():
    a = spec(env=(("LANG", "C.UTF-8"), ("TZ", "UTC")), extra_files=(ExtraFile("/etc/motd", b"hi\n"),))
    b = spec(env=(("LANG", "C.UTF-8"), ("TZ", "UTC")), extra_files=(ExtraFile("/etc/motd", b"hi\n"),))
    assert a is not b and h(a) == h(b)
    assert h(a) != h(spec())  # ... and the env/files made a difference


# Computes the hash in a fresh interpreter; the packages are given in another order there.
_OTHER_PROCESS = """
from testbed.images.spec import ExtraFile, ImageSpec, inputs_hash
s = ImageSpec(name="testbed/node:bookworm", packages=("python3", "iperf3", "iproute2"),
              extra_files=(ExtraFile("/usr/local/bin/x", b"#!/bin/sh\\n", 0o755), ExtraFile("/etc/motd", b"hi\\n")))
print(inputs_hash(s, "http://deb.debian.org/debian", "amd64"))
"""


def test_hash_is_stable_across_processes_and_hash_seeds():
    """The digest is stored in image labels and compared by later runs: it must not
    depend on set/dict iteration order (PYTHONHASHSEED) or on the process."""
    here = h(spec(extra_files=(ExtraFile("/etc/motd", b"hi\n"), ExtraFile("/usr/local/bin/x", b"#!/bin/sh\n", 0o755))))
    seen = set()
    for seed in ("0", "1", "12345"):
        r = subprocess.run([sys.executable, "-c", _OTHER_PROCESS], capture_output=True, text=True, timeout=60,
                           cwd=REPO, env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        seen.add(r.stdout.strip())
    assert seen == {here}


def test_package_order_and_duplicates_do_not_matter():
    a = spec(packages=("python3", "iproute2", "iperf3"))
    b = spec(packages=["iperf3", "iproute2", "python3", "iperf3"])
    assert a.packages == ("iperf3", "iproute2", "python3")
    assert a == b
    assert h(a) == h(b)


@pytest.mark.parametrize(
    "packages",
    [
        ("iproute2", "iperf3"),  # one removed
        ("iproute2", "iperf3", "python3", "tcpdump"),  # one added
        ("iproute2", "iperf3", "python3-minimal"),  # one replaced
    ],
)
def test_hash_changes_when_packages_change(packages):
    assert h(spec(packages=packages)) != h(spec())


@pytest.mark.parametrize(
    "change",
    [
        dict(suite="trixie"),
        dict(recipe_version=2),
        dict(variant="buildd"),
        dict(cmd=("/bin/sh",)),
        dict(env=(("LANG", "C"),)),
        dict(post_steps=()),
        dict(extra_files=(ExtraFile("/etc/motd", b"hello\n"),)),
    ],
)
def test_hash_changes_with_every_other_input(change):
    assert h(spec(**change)) != h(spec())


def test_hash_changes_with_mirror_and_arch_but_not_a_trailing_slash():
    assert h(spec(), mirror="http://ftp.de.debian.org/debian") != h(spec())
    assert h(spec(), arch="arm64") != h(spec())
    assert h(spec(), mirror=MIRROR + "/") == h(spec())


def test_extra_files_count_by_content_and_mode_not_by_order():
    f1 = ExtraFile("/etc/motd", b"hello\n")
    f2 = ExtraFile("/usr/local/bin/x", b"#!/bin/sh\n", 0o755)
    assert h(spec(extra_files=(f1, f2))) == h(spec(extra_files=(f2, f1)))
    assert h(spec(extra_files=(f1,))) != h(spec(extra_files=(ExtraFile("/etc/motd", b"bye\n"),)))
    assert h(spec(extra_files=(f1,))) != h(spec(extra_files=(dataclasses.replace(f1, mode=0o600),)))


def test_image_name_is_not_an_input():
    # The tag only names the result; two tags with equal inputs hold equal images.
    assert h(spec(name="testbed/other:x")) == h(spec())


@pytest.mark.parametrize(
    "kw",
    [
        dict(name="Testbed/Node:bookworm"),
        dict(name="testbed/node"),  # no tag
        dict(packages=("iproute2", "rm -rf /")),
        dict(packages="iproute2"),
        dict(suite="../etc"),
        dict(recipe_version=0),
        dict(post_steps=((),)),
        dict(env=(("BAD NAME", "x"),)),
        dict(extra_files=(ExtraFile("/a", b""), ExtraFile("/a", b"x"))),
    ],
)
def test_invalid_specs_are_refused(kw):
    with pytest.raises(ImageSpecError):
        spec(**kw)


@pytest.mark.parametrize("path", ["etc/motd", "/etc/../../x", "/"])
def test_extra_file_paths_must_stay_in_the_image(path):
    with pytest.raises(ImageSpecError):
        ExtraFile(path, b"")


def test_docker_changes_carry_the_hash_and_the_command():
    digest = h(spec())
    changes = docker_changes(spec(), digest)
    assert f"LABEL {LABEL_INPUTS}={digest}" in changes
    cmd = [c for c in changes if c.startswith("CMD ")]
    assert len(cmd) == 1 and json.loads(cmd[0][4:]) == ["sleep", "infinity"]
    assert any(c.startswith("ENV PATH=") for c in changes)


def test_node_image_has_the_tools_nodes_need():
    assert NODE_IMAGE.name == "testbed/node:bookworm"
    for pkg in ("iproute2", "iputils-ping", "iperf3", "ethtool", "tcpdump", "procps",
                "netcat-openbsd", "python3", "python3-scapy", "ca-certificates", "openssl"):
        assert pkg in NODE_IMAGE.packages
