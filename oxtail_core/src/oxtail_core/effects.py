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
import contextvars
import functools
from collections.abc import Callable, Generator, Hashable
from typing import Any, TypeVar, cast

import attrs

from oxtail_core.errors import AskAborted, Cancelled
from oxtail_core.protocols import Clock, InboxId, Store, WakeRelay

T = TypeVar("T")
R = TypeVar("R")


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


@attrs.frozen
class WaitForWake:
    """Wait until the relay reported on wake request ``req``, or the clock reaches ``until_ms``.

    Only a flow on a store with the relay protocol (:class:`~oxtail_core.protocols.WakeRelay`)
    yields it: the sender's wait for another host is never a block inside a store call.
    """

    req: str
    until_ms: int


Effect = Sleep | WaitForMail | WaitForWake
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


async def run_async(
    flow: Flow[T], store: Store, clock: Clock, *, abandon: Callable[[T], None] | None = None
) -> T:
    """Drive ``flow`` on asyncio without ever blocking the event loop.

    Each synchronous segment of the flow (its start, and every resume after
    a wait) runs in a worker thread: those are the Store, Waker and Host calls
    (lock waits, file rewrites, tmux). The waits themselves are awaited on the
    loop, never in the pool (see :meth:`Clock.ablock`).

    A task cancellation lands at the next wait, as :class:`Cancelled` thrown
    into the flow, so the flow puts back what it holds. A cancellation that
    arrives while a segment runs waits for that segment (a generator cannot be
    interrupted mid-step); if the segment was the last, the finished result
    is handed to ``abandon`` (to put back what it holds) before the
    cancellation propagates.
    """
    step = await _off_loop(_advance, flow, _START)
    while True:
        outcome, cancelled = step
        if isinstance(outcome, _Done):
            if cancelled is not None:
                if abandon is not None:
                    await _off_loop(abandon, outcome.value)
                raise cancelled
            return outcome.value  # type: ignore[no-any-return]
        if cancelled is not None:
            await _off_loop(_cancel, flow)
            raise cancelled
        try:
            result = await _perform_async(outcome, store, clock)
        except asyncio.CancelledError:
            await _off_loop(_cancel, flow)
            raise
        step = await _off_loop(_advance, flow, result)


@attrs.frozen
class _Done:
    """A flow segment that ran to the end of the flow, with the flow's return value."""

    value: Any


_START = object()


def _advance(flow: Flow[Any], sent: Any) -> Effect | _Done:
    """One synchronous segment: start or resume ``flow`` up to its next wait, or to its end.

    StopIteration cannot cross a thread's future, hence the :class:`_Done` wrapper.
    """
    try:
        return next(flow) if sent is _START else flow.send(sent)
    except StopIteration as stop:
        return _Done(stop.value)


async def _off_loop(fn: Callable[..., R], *args: Any) -> tuple[R, asyncio.CancelledError | None]:
    """Run ``fn(*args)`` in a worker thread and wait for it *to finish*, even through a cancellation.

    Returns the result and the cancellation that arrived meanwhile (None if
    none did); the caller decides what it means once the step is done, and
    re-raises *that* exception: a cancel scope (anyio's, asyncio's timeout)
    recognizes its own cancellation by the exception it delivered, so a fresh
    one would escape the scope that asked for it.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    future = loop.run_in_executor(None, functools.partial(context.run, fn, *args))
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            return await asyncio.shield(future), cancelled
        except asyncio.CancelledError as exc:
            if future.cancelled():
                raise
            cancelled = exc


async def call_async(fn: Callable[..., R], *args: Any, abandon: Callable[[R], None] | None = None) -> R:
    """Run one synchronous core operation (no waits) off the event loop.

    A cancellation waits for the operation to finish, hands its result to
    ``abandon`` (to put back what it took), then propagates.
    """
    result, cancelled = await _off_loop(fn, *args)
    if cancelled is not None:
        if abandon is not None:
            await _off_loop(abandon, result)
        raise cancelled
    return result


async def finish_async(fn: Callable[..., R], *args: Any) -> R:
    """Run a last step (settling what was handed on) off the loop; a cancellation meanwhile is too late.

    Once messages are settled they can no longer be put back, so the result
    is returned even if the task was cancelled while settling: losing it is
    the one outcome that is never acceptable.
    """
    result, _ = await _off_loop(fn, *args)
    return result


def _cancel(flow: Flow[Any]) -> None:
    # The flow puts back what it holds and re-raises; the caller re-raises its own cancellation.
    with contextlib.suppress(Cancelled, AskAborted, StopIteration):
        flow.throw(Cancelled())


def _waiter(effect: WaitForMail | WaitForWake, store: Store) -> Callable[[float], bool]:
    """The blocking wait ``effect`` asks for, as ``wait(seconds)`` for :meth:`Clock.block`."""
    if isinstance(effect, WaitForWake):
        relay = cast(WakeRelay, store)  # only a relay-capable store's flows yield it
        return lambda seconds: relay.wait_for_wake(effect.req, seconds)
    return lambda seconds: store.wait_for_change(effect.inboxes, effect.token, seconds)


def _perform(effect: Effect, store: Store, clock: Clock) -> bool | None:
    if isinstance(effect, Sleep):
        clock.sleep(effect.ms)
        return None
    remaining = effect.until_ms - clock.now_ms()
    if remaining <= 0:
        return False
    return clock.block(_waiter(effect, store), remaining)


async def _perform_async(effect: Effect, store: Store, clock: Clock) -> bool | None:
    if isinstance(effect, Sleep):
        await clock.asleep(effect.ms)
        return None
    remaining = effect.until_ms - clock.now_ms()
    if remaining <= 0:
        return False
    return await clock.ablock(_waiter(effect, store), remaining)
