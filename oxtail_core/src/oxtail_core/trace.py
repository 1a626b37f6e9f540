"""Trace events: what happened and why, for ``diagnose`` and for people debugging a lost wake.

The core emits events through a :class:`Tracer`; tracing is best effort and
never changes behavior, so a failing tracer is swallowed.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol


class Tracer(Protocol):
    """Receives trace events (names and fields as in the reference's trace file)."""

    def emit(self, event: str, **fields: Any) -> None: ...


class NullTracer:
    """Discards every event."""

    def emit(self, event: str, **fields: Any) -> None:
        return None


class ListTracer:
    """Keeps events in memory; handy in tests and embedded orchestrators."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    def named(self, event: str) -> list[dict[str, Any]]:
        """The fields of every recorded event called ``event``."""
        return [f for e, f in self.events if e == event]


def safe_emit(tracer: Tracer, event: str, **fields: Any) -> None:
    """Emit, swallowing any tracer failure: tracing must never affect behavior."""
    with contextlib.suppress(Exception):
        tracer.emit(event, **fields)
