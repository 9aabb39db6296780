"""Errors raised while building node images.

`ImageBuildError` is a plain `Exception` for now; it will be re-parented onto the
project's `TestbedError` so the CLI maps it to an exit code like any other failure.
"""
from __future__ import annotations


class ImageBuildError(Exception):
    """Building, importing or querying a node image failed.

    The message says what was being done and, where a command failed, ends with
    the last lines it printed, so the caller can show it without a traceback.
    """

    __test__ = False


class ImageSpecError(ImageBuildError):
    """An `ImageSpec` is invalid (bad tag, package or file name); nothing was run."""
