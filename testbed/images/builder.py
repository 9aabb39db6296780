"""Build node images locally: debootstrap a root file system, `docker import` it.

No container registry is reachable on the machines the testbed runs on, so
images cannot be pulled; they are made from Debian packages instead, which is
also reproducible from the package list alone. A build is skipped when an image
with the same tag already carries the same inputs hash (see `spec.py`).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testbed.images import docker_cli, rootfs
from testbed.images.docker_cli import ImageInfo
from testbed.images.errors import ImageBuildError
from testbed.images.mirror import find_mirror
from testbed.images.spec import LABEL_INPUTS, ImageSpec, docker_changes, inputs_hash

WORKDIR = Path("/var/tmp")
IMPORT_TIMEOUT_S = 600
MIRROR_ENV = "TESTBED_DEBIAN_MIRROR"  # overrides the mirror found in apt's config

EventSink = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """What `build_image` produced (or found already built)."""

    image_id: str
    tag: str
    cached: bool  # True: an image with these exact inputs existed, nothing was built
    seconds: float
    inputs_hash: str


def resolve_mirror(spec: ImageSpec) -> str:
    """The spec's mirror, else $TESTBED_DEBIAN_MIRROR, else the one apt uses here."""
    return (spec.mirror or os.environ.get(MIRROR_ENV) or find_mirror(spec.suite)).rstrip("/")


def host_arch() -> str:
    """Debian architecture name of this machine (what debootstrap installs by default)."""
    if shutil.which("dpkg"):
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386"}.get(machine, machine)


def spec_inputs_hash(spec: ImageSpec) -> str:
    """The inputs hash `build_image` would use for `spec` on this machine."""
    return inputs_hash(spec, resolve_mirror(spec), host_arch())


def build_image(
    spec: ImageSpec,
    force: bool = False,
    on_event: EventSink | None = None,
    *,
    workdir: Path = WORKDIR,
) -> BuildResult:
    """Make sure image `spec.name` exists and matches `spec`; build it if not.

    Returns at once (cached=True) when an image with that tag carries the same
    inputs hash, unless `force`. Otherwise debootstraps into a temporary
    directory under `workdir` (always removed), runs the spec's post-steps in a
    chroot and imports the tree with `docker import`. Needs root and a running
    engine; raises ImageBuildError otherwise. Concurrent builds of the same tag
    (another process) wait for each other and the second one finds the cache.
    """
    started = time.monotonic()
    emit: EventSink = on_event or (lambda _msg: None)
    mirror = resolve_mirror(spec)
    arch = host_arch()
    digest = inputs_hash(spec, mirror, arch)

    def result(image_id: str, cached: bool) -> BuildResult:
        return BuildResult(image_id, spec.name, cached, time.monotonic() - started, digest)

    if not force:
        hit = _cached_image_id(spec.name, digest)
        if hit:
            emit(f"{spec.name}: up to date (inputs {digest[:12]}), nothing to build")
            return result(hit, cached=True)

    rootfs.require_tools()
    with _build_lock(workdir, spec.name, emit):
        if not force:  # someone may have built it while we waited for the lock
            hit = _cached_image_id(spec.name, digest)
            if hit:
                emit(f"{spec.name}: built meanwhile by another process (inputs {digest[:12]})")
                return result(hit, cached=True)
        previous = docker_cli.inspect_image(spec.name)
        emit(f"{spec.name}: building (inputs {digest[:12]}, {spec.suite}/{arch}, mirror {mirror})")
        tmp = Path(tempfile.mkdtemp(prefix="testbed-image-", dir=workdir))
        finished = False
        try:
            root = tmp / "rootfs"
            root.mkdir()
            rootfs.debootstrap(root, spec.suite, mirror, spec.packages, spec.variant, emit)
            rootfs.write_extra_files(root, spec.extra_files)
            rootfs.run_post_steps(root, spec.post_steps, emit)
            emit(f"{spec.name}: importing root file system into docker")
            image_id = _import_tree(root, spec.name, docker_changes(spec, digest))
            finished = True
        finally:
            try:
                rootfs.remove_tree(tmp)
            except (ImageBuildError, OSError) as exc:
                if finished:
                    raise ImageBuildError(f"built {spec.name} but could not clean up: {exc}") from exc
                emit(f"warning: {exc}")  # don't hide the error that got us here
        _drop_previous(previous, image_id, emit)
    built = result(image_id, cached=False)
    emit(f"{spec.name}: built {image_id[:19]} in {built.seconds:.1f} s")
    return built


def image_exists(tag: str) -> bool:
    """Whether the engine has an image called `tag` (whoever built it)."""
    return docker_cli.inspect_image(tag) is not None


def is_up_to_date(spec: ImageSpec) -> bool:
    """Whether `build_image(spec)` would return a cached image without building."""
    return _cached_image_id(spec.name, spec_inputs_hash(spec)) is not None


def list_images() -> list[ImageInfo]:
    """Every image in the engine that the testbed built (carries the inputs label)."""
    ids = docker_cli.image_ids_with_label(LABEL_INPUTS)
    return [ImageInfo.from_inspect(d, LABEL_INPUTS) for d in docker_cli.inspect_images(ids)]


def _cached_image_id(tag: str, digest: str) -> str | None:
    info = docker_cli.inspect_image(tag)
    if info is None:
        return None
    labels = (info.get("Config") or {}).get("Labels") or {}
    return info["Id"] if labels.get(LABEL_INPUTS) == digest else None


@contextmanager
def _build_lock(workdir: Path, tag: str, emit: EventSink) -> Iterator[None]:
    """An exclusive lock per tag, so two processes never build the same image at once."""
    name = hashlib.sha256(tag.encode()).hexdigest()[:16]
    path = workdir / f"testbed-image-{name}.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            emit(f"{tag}: waiting for another build of the same image to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _import_tree(root: Path, tag: str, changes: list[str]) -> str:
    """`tar -C root -c . | docker import --change ... - tag`; returns the image ID."""
    docker = docker_cli.docker_binary()
    import_cmd = [docker, "import"]
    for change in changes:
        import_cmd += ["--change", change]
    import_cmd += ["-", tag]
    with tempfile.TemporaryFile() as tar_err:
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."],
            stdout=subprocess.PIPE,
            stderr=tar_err,
        )
        try:
            imp = subprocess.Popen(
                import_cmd, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            assert tar.stdout is not None
            tar.stdout.close()  # docker import holds the only reader now
            try:
                out, err = imp.communicate(timeout=IMPORT_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                imp.kill()
                imp.communicate()
                raise ImageBuildError(f"docker import of {tag} timed out after {IMPORT_TIMEOUT_S} s") from exc
            tar_rc = tar.wait(timeout=60)
        finally:
            if tar.poll() is None:
                tar.kill()
                tar.wait()
        tar_err.seek(0)
        tar_msg = tar_err.read().decode(errors="replace").strip()
    if tar_rc != 0:
        raise ImageBuildError(f"tar of {root} failed (exit {tar_rc}): {tar_msg[-2000:]}")
    if imp.returncode != 0:
        raise ImageBuildError(f"docker import of {tag} failed: {err.strip()[-2000:]}")
    image_id = out.strip().splitlines()[-1] if out.strip() else ""
    if not image_id.startswith("sha256:"):
        info = docker_cli.inspect_image(tag)
        if info is None:
            raise ImageBuildError(f"docker import of {tag} printed no image ID: {out!r}")
        image_id = info["Id"]
    return image_id


def _drop_previous(previous: dict | None, new_id: str, emit: EventSink) -> None:
    """Remove the image the tag pointed to before, if we built it and nothing uses it."""
    if previous is None or previous["Id"] == new_id:
        return
    labels = (previous.get("Config") or {}).get("Labels") or {}
    if LABEL_INPUTS not in labels:
        return  # not ours: leave it alone
    try:
        docker_cli.run_docker(["image", "rm", previous["Id"]])
        emit(f"removed the previous build {previous['Id'][:19]}")
    except ImageBuildError:
        emit(f"kept the previous build {previous['Id'][:19]} (still used by a container or another tag)")
