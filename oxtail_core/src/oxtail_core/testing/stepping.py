"""Deterministic interleaving of real core code at Store-call granularity.

Each *actor* runs one real core operation (``send_message`` driven to its end,
``read_messages`` then ``settle``, ``ask_peer``...) in its own thread. Every
Store method an actor calls goes through :class:`SteppedStore`, which parks the
thread *before* the call until the :class:`Scheduler` grants that actor one
step. Exactly one thread runs at a time (the test's main thread waits while an
actor runs), so a schedule -- a sequence of "advance actor X by one store call"
-- fully determines the run, and Hypothesis can choose and shrink it.

- :meth:`Scheduler.spawn` starts an actor and runs it up to its first store call;
- :meth:`Scheduler.step` performs that one parked call and runs on to the next;
- :meth:`Scheduler.abandon` crashes an actor: it is never granted again;
- :meth:`Scheduler.close` releases every parked thread with :class:`Abandoned`,
  so no thread outlives a test.

Store calls made from the main thread (set-up, invariant checks) are not gated.
"""

from __future__ import annotations

import importlib
import itertools
import math
import sys
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol

import attrs

from oxtail_core.context import Context
from oxtail_core.effects import _perform
from oxtail_core.errors import AskAborted, Cancelled
from oxtail_core.protocols import Store, WakeRelay


def _protocol_methods(protocol: type) -> frozenset[str]:
    """The public methods a Protocol class declares, its own and its protocol bases'
    (what a store must implement)."""
    return frozenset(
        name
        for cls in protocol.__mro__
        if getattr(cls, "_is_protocol", False) and cls is not Protocol
        for name, value in vars(cls).items()
        if not name.startswith("_") and callable(value)
    )


STORE_METHODS = _protocol_methods(Store) | _protocol_methods(WakeRelay)
"""Every method of the :class:`~oxtail_core.protocols.Store` protocol and of its optional relay face
(:class:`~oxtail_core.protocols.WakeRelay`): the calls that are one step each."""

STEP_TIMEOUT_S = 20.0


class Abandoned(BaseException):
    """Raised inside a parked actor when the test ends; not an Exception, so core code never catches it."""


class StuckActor(AssertionError):
    """An actor ran for too long without reaching a store call (a livelock or a real block)."""


@attrs.define(eq=False)
class Actor:
    """One thread running one operation. ``status``: running, parked, done, failed, crashed, abandoned."""

    name: str
    status: str = "new"
    next_call: str | None = None
    granted: bool = False
    result: Any = None
    error: BaseException | None = None
    cancel_requested: bool = False
    calls: int = 0
    thread: threading.Thread | None = None

    @property
    def parked(self) -> bool:
        return self.status == "parked"

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class Scheduler:
    """Hands the single "run" token to one actor thread at a time."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._local = threading.local()
        self._closed = False
        self.actors: list[Actor] = []

    # Called from actor threads -------------------------------------------------------
    def current(self) -> Actor | None:
        return getattr(self._local, "actor", None)

    def gate(self, label: str) -> None:
        """Park the calling actor before its next store call until it is granted a step."""
        actor = self.current()
        if actor is None:
            return
        with self._cv:
            if self._closed:
                raise Abandoned()
            actor.status = "parked"
            actor.next_call = label
            actor.granted = False
            self._cv.notify_all()
            while not actor.granted and not self._closed:
                self._cv.wait()
            if self._closed:
                raise Abandoned()
            actor.status = "running"
            actor.calls += 1

    # Called from the test's main thread -----------------------------------------------
    def spawn(self, name: str, fn: Callable[[], Any]) -> Actor:
        """Start ``fn`` in a new actor thread and run it up to its first store call (or its end)."""
        actor = Actor(name)

        def body() -> None:
            self._local.actor = actor
            with self._cv:
                while not actor.granted and not self._closed:
                    self._cv.wait()
                if self._closed:
                    actor.status = "abandoned"
                    self._cv.notify_all()
                    return
            outcome, result, error = "done", None, None
            try:
                result = fn()
            except Abandoned:
                outcome = "abandoned"
            except BaseException as exc:  # noqa: BLE001 - reported by the test, never lost
                outcome, error = "failed", exc
            with self._cv:
                actor.result, actor.error, actor.status = result, error, outcome
                self._cv.notify_all()

        actor.thread = threading.Thread(target=body, name=f"actor-{name}", daemon=True)
        self.actors.append(actor)
        actor.thread.start()
        self._grant(actor)
        return actor

    def step(self, actor: Actor) -> None:
        """Perform the store call ``actor`` is parked at, then run it to its next one (or its end)."""
        if not actor.parked:
            raise RuntimeError(f"actor {actor.name} is {actor.status}, not parked")
        self._grant(actor)

    def abandon(self, actor: Actor) -> None:
        """Crash ``actor`` where it stands: it is never granted again (released only by close)."""
        if actor.parked:
            actor.status = "crashed"

    def _grant(self, actor: Actor) -> None:
        with self._cv:
            actor.granted = True
            actor.status = "running"
            self._cv.notify_all()
            if not self._cv.wait_for(lambda: actor.status != "running", timeout=STEP_TIMEOUT_S):
                raise StuckActor(f"actor {actor.name} did not reach a store call within {STEP_TIMEOUT_S}s")

    def run_to_end(self, actor: Actor, max_steps: int = 500) -> None:
        """Step ``actor`` until it finishes (used to quiesce a run before the final checks)."""
        for _ in range(max_steps):
            if not actor.parked:
                return
            self.step(actor)
        raise StuckActor(f"actor {actor.name} did not finish within {max_steps} store calls")

    def close(self) -> None:
        """Release every parked or crashed thread with Abandoned and wait for them all."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for actor in self.actors:
            if actor.thread is not None:
                actor.thread.join(timeout=STEP_TIMEOUT_S)
                if actor.thread.is_alive():  # pragma: no cover - would be a harness bug
                    raise StuckActor(f"actor {actor.name} did not exit")


Listener = Callable[[str, str, tuple[Any, ...], Any], None]


class SteppedStore:
    """A Store proxy: each protocol call from an actor thread is one scheduler step.

    ``listener(actor_name, method, args, result)`` is called after every
    successful store call made by an actor, inside that actor's step, so a
    test can record what really happened (an append that returned, a batch
    taken) without racing it.
    """

    def __init__(self, inner: Store, scheduler: Scheduler, listener: Listener | None = None) -> None:
        self.inner = inner
        self.scheduler = scheduler
        self.listener = listener
        self.faults: dict[str, tuple[frozenset[str], BaseException]] = {}

    def inject(self, actor: str, methods: frozenset[str], error: BaseException) -> None:
        """Make ``actor``'s next call of one of ``methods`` raise ``error`` instead of running (once)."""
        self.faults[actor] = (methods, error)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in STORE_METHODS:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.scheduler.gate(name)
            actor = self.scheduler.current()
            fault = self.faults.get(actor.name) if actor is not None else None
            if actor is not None and fault is not None and name in fault[0]:
                del self.faults[actor.name]
                if self.listener is not None:
                    self.listener(actor.name, f"{name}!", args, fault[1])
                raise fault[1]
            result = target(*args, **kwargs)
            actor = self.scheduler.current()
            if actor is not None and self.listener is not None:
                self.listener(actor.name, name, args, result)
            return result

        return call


class StepClock:
    """A shared fake clock for stepped actors.

    ``block`` looks once (``wait(0)``: one store call, hence one step) and, if
    nothing changed, moves time forward by at most ``quantum_ms`` instead of
    waiting, so a waiting flow re-polls at store-call granularity and reaches
    its deadline after a bounded number of steps.
    """

    def __init__(self, start_ms: int = 1_800_000_000_000, quantum_ms: int = 100) -> None:
        self._now = start_ms
        self.quantum_ms = quantum_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: float) -> None:
        self._now += max(math.ceil(ms), 0)

    def sleep(self, ms: float) -> None:
        self.advance(ms)

    async def asleep(self, ms: float) -> None:
        self.advance(ms)

    def block(self, wait: Callable[[float], bool], ms: float) -> bool:
        if wait(0):
            return True
        self.advance(min(ms, self.quantum_ms))
        return False

    async def ablock(self, wait: Callable[[float], bool], ms: float) -> bool:
        return self.block(wait, ms)


def drive(flow: Generator[Any, Any, Any], ctx: Context, actor: Actor) -> Any:
    """Run a flow like :func:`oxtail_core.effects.run`, but on the stepped clock.

    If ``actor.cancel_requested`` is set, :class:`Cancelled` is thrown into the
    flow at its next wait (where a driver's cancellation lands); the flow's
    own exception (AskAborted or Cancelled) is returned as the outcome.
    """
    try:
        effect = next(flow)
        while True:
            result = _perform(effect, ctx.store, ctx.clock)
            if actor.cancel_requested:
                try:
                    flow.throw(Cancelled())
                except (Cancelled, AskAborted) as exc:
                    return exc
                raise AssertionError("the flow swallowed Cancelled")
            effect = flow.send(result)
    except StopIteration as stop:
        return stop.value


CORE_ID_MODULES = ("oxtail_core.memory", "oxtail_core.delivery", "oxtail_core.ask", "oxtail_core.wake")
"""The core modules whose ``new_id`` mints message, request and batch ids."""


def deterministic_ids(modules: Iterable[str] = CORE_ID_MODULES) -> Callable[[], None]:
    """Make message, request and batch ids a counter (hex16) so a schedule replays exactly
    (ids order inbox listings and in-flight files); returns the undo.

    ``modules`` name the modules whose ``new_id`` is replaced: the core ones are imported if
    needed; any other (a store's own, e.g. ``oxtail_fs.store.inbox``) only if already imported.
    """
    counter = itertools.count(0x1000)
    patched: list[tuple[Any, Any]] = []

    def new_id() -> str:
        return f"{next(counter):016x}"

    for name in modules:
        module = sys.modules.get(name)
        if module is None and name.startswith("oxtail_core."):
            module = importlib.import_module(name)
        if module is not None and hasattr(module, "new_id"):
            patched.append((module, module.new_id))
            setattr(module, "new_id", new_id)  # noqa: B010 - a module attribute mypy cannot see

    def undo() -> None:
        for module, original in patched:
            module.new_id = original

    return undo
