"""build_image's cache decision and clean-up, with the engine and debootstrap faked
(no root, no Docker needed)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.images import builder, docker_cli, rootfs
from testbed.images.errors import ImageBuildError
from testbed.images.spec import LABEL_INPUTS, ExtraFile, ImageSpec

SPEC = ImageSpec(name="testbed/unit:bookworm", packages=("iproute2",), mirror="http://m.example/debian")


class Stop(Exception):
    pass


@pytest.fixture
def engine(monkeypatch):
    """A fake engine holding at most one image per tag."""
    images: dict[str, dict] = {}
    monkeypatch.setattr(docker_cli, "inspect_image", lambda ref: images.get(ref))
    monkeypatch.setattr(builder, "host_arch", lambda: "amd64")
    return images


def test_matching_label_is_a_cache_hit(engine):
    digest = builder.spec_inputs_hash(SPEC)
    engine[SPEC.name] = {"Id": "sha256:abc", "Config": {"Labels": {LABEL_INPUTS: digest}}}
    events: list[str] = []
    res = builder.build_image(SPEC, on_event=events.append)
    assert res.cached and res.image_id == "sha256:abc" and res.inputs_hash == digest
    assert res.seconds < 1
    assert any("up to date" in e for e in events)


@pytest.mark.parametrize("labels", [None, {}, {LABEL_INPUTS: "0" * 64}])
def test_missing_or_stale_image_is_rebuilt(engine, monkeypatch, labels):
    if labels is not None:
        engine[SPEC.name] = {"Id": "sha256:old", "Config": {"Labels": labels}}

    def refuse():
        raise Stop

    monkeypatch.setattr(rootfs, "require_tools", refuse)
    with pytest.raises(Stop):
        builder.build_image(SPEC)


def test_force_rebuilds_even_when_cached(engine, monkeypatch):
    engine[SPEC.name] = {"Id": "sha256:abc", "Config": {"Labels": {LABEL_INPUTS: builder.spec_inputs_hash(SPEC)}}}
    monkeypatch.setattr(rootfs, "require_tools", lambda: (_ for _ in ()).throw(Stop()))
    with pytest.raises(Stop):
        builder.build_image(SPEC, force=True)


def test_temp_dir_is_removed_when_debootstrap_fails(engine, monkeypatch, tmp_path):
    monkeypatch.setattr(rootfs, "require_tools", lambda: None)

    def failing_debootstrap(root: Path, *a, **kw):
        (root / "etc").mkdir()
        raise ImageBuildError("debootstrap failed (exit 1)")

    monkeypatch.setattr(rootfs, "debootstrap", failing_debootstrap)
    with pytest.raises(ImageBuildError, match="debootstrap failed"):
        builder.build_image(SPEC, workdir=tmp_path)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_mirror_override_order(monkeypatch):
    monkeypatch.setenv(builder.MIRROR_ENV, "http://env.example/debian/")
    assert builder.resolve_mirror(SPEC) == "http://m.example/debian"
    no_mirror = ImageSpec(name="testbed/unit:bookworm", packages=("iproute2",))
    assert builder.resolve_mirror(no_mirror) == "http://env.example/debian"


def test_extra_files_are_written_with_mode_and_never_through_symlinks(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    rootfs.write_extra_files(root, [ExtraFile("/usr/local/bin/hello", b"#!/bin/sh\n", 0o755)])
    f = root / "usr/local/bin/hello"
    assert f.read_bytes() == b"#!/bin/sh\n" and (f.stat().st_mode & 0o777) == 0o755

    (root / "escape").symlink_to(outside)
    with pytest.raises(ImageBuildError, match="outside the image root"):
        rootfs.write_extra_files(root, [ExtraFile("/escape/x", b"")])
    (root / "etc" / "motd").symlink_to(outside / "motd")
    rootfs.write_extra_files(root, [ExtraFile("/etc/motd", b"hi")])
    assert not (outside / "motd").exists() and not (root / "etc/motd").is_symlink()


def test_remove_tree_deletes_plain_directories(tmp_path):
    d = tmp_path / "t"
    (d / "a" / "b").mkdir(parents=True)
    (d / "a" / "b" / "f").write_text("x")
    assert rootfs.mounts_below(d) == []
    rootfs.remove_tree(d)
    assert not d.exists()
    rootfs.remove_tree(d)  # already gone: fine


@pytest.mark.skipif(not os.path.exists("/proc/self/mountinfo"), reason="needs Linux /proc")
def test_mounts_below_sees_real_mounts():
    assert "/proc" in rootfs.mounts_below(Path("/"))


@pytest.mark.parametrize(
    "line,shown",
    [
        ("I: Retrieving libc6 2.36-9+deb12u10", False),
        ("I: Validating iproute2 6.1.0-3", False),
        ("I: Unpacking libc6:amd64...", False),
        ("I: Configuring apt...", False),
        ("I: Unpacking the base system...", True),
        ("I: Configuring the base system...", True),
        ("I: Installing core packages...", True),
        ("I: Base system installed successfully.", True),
        ("W: Failure trying to run: chroot ...", True),
    ],
)
def test_debootstrap_chatter_filter(line, shown):
    assert (rootfs._QUIET.match(line) is None) is shown
