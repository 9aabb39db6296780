"""The few Docker engine queries and commands the image builder needs, via the CLI.

Why the `docker` CLI and not the Python SDK: the build streams a root file
system of a few hundred MB from `tar` straight into `docker import`, which the
CLI does natively as a pipe (the SDK would need the whole tarball in memory or on
disk first); the CLI is installed with every engine (Debian's docker.io, Docker
CE), honours the user's `DOCKER_HOST`/context exactly as their shell does, and
negotiates the API version with old engines (docker.io 20.10 here) on its own.
Queries ask for JSON (`docker image inspect`), so nothing parses table output.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from testbed.images.errors import ImageBuildError

QUERY_TIMEOUT_S = 60


def docker_binary() -> str:
    path = shutil.which("docker")
    if path is None:
        raise ImageBuildError("the docker CLI is not installed; run scripts/docker-engine.sh")
    return path


def run_docker(args: Sequence[str], timeout: float = QUERY_TIMEOUT_S) -> str:
    """Run `docker ARGS`, return stdout; raise ImageBuildError with stderr on failure."""
    cmd = [docker_binary(), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(f"`docker {' '.join(args)}` timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise ImageBuildError(_failure_message(args, proc.stderr))
    return proc.stdout


def _failure_message(args: Sequence[str], stderr: str) -> str:
    msg = stderr.strip() or "(no output)"
    if "Cannot connect to the Docker daemon" in msg or "permission denied" in msg.lower():
        msg += "\n(is the engine running? start it with scripts/docker-engine.sh, as root)"
    return f"`docker {' '.join(args)}` failed: {msg}"


def inspect_images(refs: Sequence[str]) -> list[dict]:
    """`docker image inspect` of existing references; unknown ones are left out."""
    found: list[dict] = []
    for ref in refs:  # one call per ref: an unknown ref fails the whole call otherwise
        info = inspect_image(ref)
        if info is not None:
            found.append(info)
    return found


def inspect_image(ref: str) -> dict | None:
    """The engine's description of image `ref`, or None if there is no such image."""
    try:
        out = run_docker(["image", "inspect", ref])
    except ImageBuildError as exc:
        if "no such image" in str(exc).lower():
            return None
        raise
    data = json.loads(out)
    return data[0] if data else None


def image_ids_with_label(label: str) -> list[str]:
    """Full IDs of images carrying `label` (any value), newest first, no repeats."""
    out = run_docker(["image", "ls", "--quiet", "--no-trunc", "--filter", f"label={label}"])
    return list(dict.fromkeys(line.strip() for line in out.splitlines() if line.strip()))


@dataclass(frozen=True)
class ImageInfo:
    """A node image present in the engine."""

    image_id: str
    tags: tuple[str, ...]
    inputs_hash: str | None
    labels: dict
    created: str
    size_bytes: int

    @classmethod
    def from_inspect(cls, data: dict, inputs_label: str) -> ImageInfo:
        labels = (data.get("Config") or {}).get("Labels") or {}
        return cls(
            image_id=data["Id"],
            tags=tuple(data.get("RepoTags") or ()),
            inputs_hash=labels.get(inputs_label),
            labels=dict(labels),
            created=data.get("Created", ""),
            size_bytes=int(data.get("Size") or 0),
        )
