"""What a node image is made of, and the hash that identifies a build of it.

An image is rebuilt only when one of its inputs changes. The inputs are
everything that decides the image's content: suite, mirror, architecture,
debootstrap variant, the (sorted, de-duplicated) package list, the recipe
version, extra files (by content), post-build steps and the image config
(CMD, ENV). Their SHA-256 is stored on the image as the label
`org.medalliance.testbed.inputs`; an image whose tag and label match is reused.

Bump `recipe_version` when the way an image is built changes in a way the other
inputs do not show (e.g. a bug fix in the builder), to force a rebuild everywhere.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from testbed.images.errors import ImageSpecError

LABEL_INPUTS = "org.medalliance.testbed.inputs"
LABEL_RECIPE = "org.medalliance.testbed.recipe"
LABEL_SUITE = "org.medalliance.testbed.suite"

# Bumped when the meaning of the hashed document changes.
_HASH_FORMAT = 1

_TAG_RE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
)
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_SUITE_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_ENV: tuple[tuple[str, str], ...] = (
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
)

# Run in the new root (via chroot) after debootstrap: drop apt's caches and
# lists, which only make the image bigger (containers have no network to use them).
DEFAULT_POST_STEPS: tuple[tuple[str, ...], ...] = (
    ("apt-get", "clean"),
    ("sh", "-c", "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log"),
)


@dataclass(frozen=True)
class ExtraFile:
    """A file written into the image after debootstrap (before the post-steps)."""

    path: str  # absolute path inside the image
    content: bytes
    mode: int = 0o644

    def __post_init__(self) -> None:
        p = PurePosixPath(self.path)
        if not p.is_absolute() or ".." in p.parts or p == PurePosixPath("/"):
            raise ImageSpecError(f"extra file path must be absolute without '..': {self.path!r}")
        if not isinstance(self.content, bytes):
            raise ImageSpecError(f"extra file {self.path}: content must be bytes")


@dataclass(frozen=True)
class ImageSpec:
    """A node image: Debian `suite` plus `packages`, built by debootstrap.

    `packages` is stored sorted and de-duplicated, so two specs that list the same
    packages in another order are equal and hash the same. `mirror=None` means
    "the mirror this machine's apt uses" (see `testbed.images.mirror`).
    """

    name: str
    packages: tuple[str, ...]
    suite: str = "bookworm"
    recipe_version: int = 1
    variant: str = "minbase"
    mirror: str | None = None
    extra_files: tuple[ExtraFile, ...] = ()
    post_steps: tuple[tuple[str, ...], ...] = DEFAULT_POST_STEPS
    cmd: tuple[str, ...] = ("sleep", "infinity")
    env: tuple[tuple[str, str], ...] = DEFAULT_ENV

    def __post_init__(self) -> None:
        if not _TAG_RE.match(self.name):
            raise ImageSpecError(
                f"image name {self.name!r} is not a lowercase docker reference with a tag "
                "(e.g. 'testbed/node:bookworm')"
            )
        if not _SUITE_RE.match(self.suite):
            raise ImageSpecError(f"invalid suite {self.suite!r}")
        if isinstance(self.packages, str):
            raise ImageSpecError("packages must be a list of names, not one string")
        pkgs = tuple(sorted(set(self.packages)))
        bad = [p for p in pkgs if not _PACKAGE_RE.match(p)]
        if bad:
            raise ImageSpecError(f"invalid Debian package name(s): {', '.join(map(repr, bad))}")
        object.__setattr__(self, "packages", pkgs)
        object.__setattr__(self, "extra_files", tuple(self.extra_files))
        object.__setattr__(self, "post_steps", tuple(tuple(s) for s in self.post_steps))
        object.__setattr__(self, "cmd", tuple(self.cmd))
        object.__setattr__(self, "env", tuple((k, v) for k, v in self.env))
        if any(not step or not all(isinstance(a, str) for a in step) for step in self.post_steps):
            raise ImageSpecError("each post-step must be a non-empty list of strings (an argv)")
        if len({f.path for f in self.extra_files}) != len(self.extra_files):
            raise ImageSpecError("extra files: the same path is given twice")
        bad_env = [k for k, _ in self.env if not _ENV_NAME_RE.match(k)]
        if bad_env:
            raise ImageSpecError(f"invalid environment variable name(s): {bad_env}")
        if not isinstance(self.recipe_version, int) or self.recipe_version < 1:
            raise ImageSpecError("recipe_version must be a positive integer")


def hashed_inputs(spec: ImageSpec, mirror: str, arch: str) -> dict:
    """The document whose hash identifies a build of `spec` (also handy to show)."""
    return {
        "hash_format": _HASH_FORMAT,
        "suite": spec.suite,
        "mirror": mirror.rstrip("/"),
        "arch": arch,
        "variant": spec.variant,
        "packages": list(spec.packages),
        "recipe_version": spec.recipe_version,
        "extra_files": sorted(
            [f.path, hashlib.sha256(f.content).hexdigest(), f.mode] for f in spec.extra_files
        ),
        "post_steps": [list(s) for s in spec.post_steps],
        "cmd": list(spec.cmd),
        "env": [list(kv) for kv in spec.env],
    }


def inputs_hash(spec: ImageSpec, mirror: str, arch: str) -> str:
    """SHA-256 (hex) of every input that decides the image's content."""
    doc = json.dumps(hashed_inputs(spec, mirror, arch), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def docker_changes(spec: ImageSpec, digest: str) -> list[str]:
    """The `docker import --change` instructions: labels, environment, command."""
    changes = [
        f"LABEL {LABEL_INPUTS}={digest}",
        f"LABEL {LABEL_RECIPE}={spec.recipe_version}",
        f"LABEL {LABEL_SUITE}={spec.suite}",
    ]
    changes += [f"ENV {k}={json.dumps(v)}" for k, v in spec.env]
    changes.append("CMD " + json.dumps(list(spec.cmd)))
    return changes


NODE_PACKAGES: tuple[str, ...] = (
    "iproute2",
    "iputils-ping",
    "iperf3",
    "ethtool",
    "tcpdump",
    "procps",
    "netcat-openbsd",
    "net-tools",  # ifconfig: Mininet configures node interfaces with it
    "python3",
    "python3-scapy",
    "ca-certificates",
    "openssl",
)


def node_image_spec(suite: str = "bookworm") -> ImageSpec:
    """The image every emulated node (UE, gNB, UPF, MEC host...) runs by default."""
    return ImageSpec(name=f"testbed/node:{suite}", packages=NODE_PACKAGES, suite=suite)


NODE_IMAGE = node_image_spec()
