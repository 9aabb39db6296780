"""`testbed images build|list`: the node images, built locally from Debian packages (no registry)."""
from __future__ import annotations

import click
from rich.table import Table

from testbed.cli import render
from testbed.errors import BuildError


@click.group("images")
def images() -> None:
    """Build or list the testbed's node images (debootstrap + docker import, cached by inputs)."""


@images.command("build")
@click.option("--force", is_flag=True, help="Rebuild even when an image with the same inputs exists.")
@click.option("-q", "--quiet", is_flag=True, help="Only the result line.")
def images_build(force: bool, quiet: bool) -> None:
    """Build testbed/node:bookworm if its inputs changed (about a minute cold, instant when cached)."""
    from testbed.engine.docker_node import check_engine
    from testbed.images import NODE_IMAGE, ImageBuildError, build_image

    check_engine()
    say = (lambda _m: None) if quiet else (lambda msg: render.err_console.print(f"[dim]{msg}[/]"))
    try:
        r = build_image(NODE_IMAGE, force=force, on_event=say)
    except ImageBuildError as exc:
        raise BuildError(str(exc)) from exc
    how = "up to date (cached)" if r.cached else "built"
    render.console.print(f"[green]{r.tag}[/] {how}: {r.image_id[:19]} in {r.seconds:.2f}s (inputs {r.inputs_hash[:12]})")


@images.command("list")
def images_list() -> None:
    """Images the testbed built, and whether each matches its current inputs."""
    from testbed.engine.docker_node import check_engine
    from testbed.images import NODE_IMAGE, is_up_to_date, list_images

    check_engine()
    t = Table(title="testbed images")
    for col in ("tag", "id", "inputs", "size", "created", "current"):
        t.add_column(col)
    current = NODE_IMAGE.name
    fresh = is_up_to_date(NODE_IMAGE)
    for info in list_images():
        tags = ", ".join(info.tags) or "<untagged>"
        mark = ("[green]yes[/]" if fresh else "[yellow]stale: run `testbed images build`[/]") if current in info.tags else ""
        t.add_row(tags, info.image_id[7:19], (info.inputs_hash or "")[:12], f"{info.size_bytes / 1e6:.0f} MB",
                  info.created[:19], mark)
    render.console.print(t)


def register(cli: click.Group) -> None:
    cli.add_command(images)
