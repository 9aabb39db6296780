"""Node images for the testbed, built locally from Debian packages.

No registry is reachable where the testbed runs, so `build_image` makes each
image with debootstrap + `docker import`, and reuses it while its inputs (suite,
mirror, packages, recipe version, extra files) are unchanged. The library never
prints; pass `on_event` to receive progress messages.

    from testbed.images import NODE_IMAGE, build_image
    result = build_image(NODE_IMAGE, on_event=print)
"""
from testbed.images.builder import (
    BuildResult,
    build_image,
    host_arch,
    image_exists,
    is_up_to_date,
    list_images,
    resolve_mirror,
    spec_inputs_hash,
)
from testbed.images.docker_cli import ImageInfo
from testbed.images.errors import ImageBuildError, ImageSpecError
from testbed.images.mirror import DEFAULT_MIRROR, find_mirror
from testbed.images.spec import (
    LABEL_INPUTS,
    NODE_IMAGE,
    NODE_PACKAGES,
    ExtraFile,
    ImageSpec,
    inputs_hash,
    node_image_spec,
)

__all__ = [
    "BuildResult",
    "DEFAULT_MIRROR",
    "ExtraFile",
    "ImageBuildError",
    "ImageInfo",
    "ImageSpec",
    "ImageSpecError",
    "LABEL_INPUTS",
    "NODE_IMAGE",
    "NODE_PACKAGES",
    "build_image",
    "find_mirror",
    "host_arch",
    "image_exists",
    "inputs_hash",
    "is_up_to_date",
    "list_images",
    "node_image_spec",
    "resolve_mirror",
    "spec_inputs_hash",
]
