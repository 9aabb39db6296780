"""Progress events: the library reports, the CLI renders (the library never prints)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Something the user may want to see. `total` > 0 means a countable stage."""

    kind: str  # 'stage' | 'progress' | 'done' | 'info' | 'warning'
    stage: str
    message: str = ""
    done: int = 0
    total: int = 0
    failed: int = 0  # a 'done' stage with this many failed checks (rendered as a failure, not a tick)


EventSink = Callable[[Event], None]


def ignore(_: Event) -> None:
    """Default sink for library users who do not care about progress."""


class Emitter:
    """Small helper so engine code reads `emit.stage('links', total=n)`."""

    def __init__(self, sink: EventSink | None):
        self._sink = sink or ignore

    @property
    def sink(self) -> EventSink:
        """The raw callback, to hand on to code that takes an `on_event`."""
        return self._sink

    def stage(self, stage: str, message: str = "", total: int = 0) -> None:
        self._sink(Event("stage", stage, message, 0, total))

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        self._sink(Event("progress", stage, message, done, total))

    def done(self, stage: str, message: str = "", failed: int = 0) -> None:
        self._sink(Event("done", stage, message, failed=failed))

    def info(self, message: str, stage: str = "") -> None:
        self._sink(Event("info", stage, message))

    def warning(self, message: str, stage: str = "") -> None:
        self._sink(Event("warning", stage, message))
