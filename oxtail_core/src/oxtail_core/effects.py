"""Effects: what a flow asks its driver to do, and the two drivers that do it.

Flows (ask, send with a wake, reply) are generators. Everything they do to the
world is a call on a protocol, except waiting: a flow *yields* a wait and the
driver performs it. So the same flow runs under a blocking driver and under
asyncio, and a test can run it on a fake clock where waiting costs nothing.
Cancellation is thrown into the flow as :class:`~oxtail_core.errors.Cancelled`
at the wait it was suspended in, so the flow itself decides what to put back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator, Hashable, Sequence
from typing import Any, TypeVar

import attrs

from oxtail_core.errors import AskAborted, Cancelled
from oxtail_core.protocols import Clock, InboxId, Store

T = TypeVar("T")


@attrs.frozen
class Sleep:
    """Pause for ``ms`` milliseconds (the Codex keystroke gap)."""

    ms: float


@attrs.frozen
class WaitForMail:
    """Wait until one of ``inboxes`` changes from ``token``, or the clock reaches ``until_ms``."""

    inboxes: tuple[InboxId, ...]
    token: Hashable
    until_ms: int


Effect = Sleep | WaitForMail
Flow = Generator[Effect, Any, T]


def run(flow: Flow[T], store: Store, clock: Clock) -> T:
    """Drive ``flow`` to completion, blocking the calling thread at each wait.

    A KeyboardInterrupt during a wait is thrown into the flow as Cancelled so
    it can put back what it holds; then the interrupt propagates.
    """
    try:
        effect = next(flow)
        while True:
            try:
                result = _perform(effect, store, clock)
            except KeyboardInterrupt:
                _cancel(flow)
                raise
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(flow: Flow[T], store: Store, clock: Clock) -> T:
    """Drive ``flow`` on asyncio; a task cancellation is thrown into the flow as Cancelled."""
    try:
        effect = next(flow)
        while True:
            try:
                result = await _perform_async(effect, store, clock)
            except asyncio.CancelledError:
                _cancel(flow)
                raise
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _cancel(flow: Flow[Any]) -> None:
    # The flow puts back what it holds and re-raises; the caller re-raises its own cancellation.
    with contextlib.suppress(Cancelled, AskAborted, StopIteration):
        flow.throw(Cancelled())


def _waiter(store: Store, inboxes: Sequence[InboxId], token: Hashable) -> Any:
    return lambda seconds: store.wait_for_change(inboxes, token, seconds)


def _perform(effect: Effect, store: Store, clock: Clock) -> bool | None:
    if isinstance(effect, Sleep):
        clock.sleep(effect.ms)
        return None
    remaining = effect.until_ms - clock.now_ms()
    if remaining <= 0:
        return False
    return clock.block(_waiter(store, effect.inboxes, effect.token), remaining)


async def _perform_async(effect: Effect, store: Store, clock: Clock) -> bool | None:
    if isinstance(effect, Sleep):
        await clock.asleep(effect.ms)
        return None
    remaining = effect.until_ms - clock.now_ms()
    if remaining <= 0:
        return False
    return await clock.ablock(_waiter(store, effect.inboxes, effect.token), remaining)
