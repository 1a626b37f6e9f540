"""The base of the Hypothesis race machines: a stepped store over a real one, and the global invariants.

A machine subclasses :class:`RaceMachine`, publishes its peers in ``__init__`` and adds rules
that :meth:`~RaceMachine.launch` real core operations as actors; the inherited ``step`` and
``burst`` rules interleave them one store call at a time, and every step is followed by the
global checks (G1: nothing appended is lost; G2: nothing is in two places, appended or
delivered twice; R1: mail waiting for a claimed session is in its ledger). A machine takes a
:class:`~oxtail_core.testing.stores.StoreFactory`, so the same machine runs on every backend.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oxtail_core.context import Context
from oxtail_core.memory import MemoryHost, RecordingWaker
from oxtail_core.messaging import read_messages
from oxtail_core.model import ClientInfo, Envelope, RegistryEntry
from oxtail_core.protocols import Batch, Holder, InboxId, Store
from oxtail_core.results import Messages
from oxtail_core.routing import process_inbox, publish, session_inbox
from oxtail_core.settings import Settings
from oxtail_core.testing.stepping import (
    CORE_ID_MODULES,
    Actor,
    Scheduler,
    StepClock,
    SteppedStore,
    StuckActor,
    deterministic_ids,
)
from oxtail_core.testing.stores import StoreFactory, id_modules, memory_factory

# Observation ------------------------------------------------------------------------------
PEEK_HOLDER = Holder(pid=999_999_999)


def peek(store: Store, inbox: InboxId) -> tuple[Envelope, ...]:
    """The messages waiting in ``inbox``, read through the protocol without changing anything
    (a ``take`` whose selector chooses nothing)."""
    seen: list[Envelope] = []

    def select(messages: Sequence[Envelope]) -> list[int]:
        seen.extend(messages)
        return []

    assert store.take(inbox, select, PEEK_HOLDER) is None
    return tuple(seen)


def in_flight_ids(store: Store, inbox: InboxId) -> set[str] | None:
    """Ids in unsettled batches of ``inbox`` if the store can show them, else None."""
    view = getattr(store, "in_flight", None)
    if view is None:
        return None
    return {e.id for batch in view(inbox) for e in batch.envelopes}


def drain_all(store: Store, inbox: InboxId, is_alive: Callable[[Holder], bool]) -> list[Envelope]:
    """Recover dead holders' batches, then take and settle everything left (the final check of a run)."""
    store.recover(inbox, is_alive)
    batch = store.take(inbox, lambda msgs: list(range(len(msgs))), PEEK_HOLDER)
    if batch is None:
        return []
    store.settle(batch)
    return list(batch.envelopes)


# Peers --------------------------------------------------------------------------------------
def sid(n: int) -> str:
    """A UUID-shaped session id (addressable by id)."""
    return f"00000000-0000-4000-8000-{n:012d}"


def entry(
    pid: int,
    session_id: str | None,
    *,
    started_at: int = 1_800_000_000,
    tmux_pane: str | None = None,
    tmux_session: str | None = None,
    client_type: str = "claude-code",
) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=started_at,
        client=ClientInfo(type=client_type, session_id=session_id, cwd="/proj"),  # type: ignore[arg-type]
        tmux_pane=tmux_pane,
        tmux_session=tmux_session,
    )


# A base state machine ----------------------------------------------------------------------------
def budget(factory: StoreFactory | None, max_examples: int, steps: int) -> settings:
    """Settings for one machine on one store: any store but the MemoryStore gets a fifth of the
    examples (the interleavings are the core's; those runs show the store behaves the same under them)."""
    if factory is not memory_factory:
        max_examples = max(6, max_examples // 5)
    return race_settings(max_examples, steps)


def race_settings(max_examples: int, steps: int, *, shrink: bool = True) -> settings:
    """Explicit, small budgets (on top of whatever profile the lead's conftest loaded).

    ``shrink=False`` is for the planted-bug tests: they only need *a* failing
    schedule, fast (the minimal ones are quoted in docs/races.md), and they
    draw fresh randomness on every attempt (see :func:`caught_within`).
    """
    if shrink:
        return settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=False,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def caught_within(attempts: int, run: Callable[[], None], marker: str) -> None:
    """Run a machine against planted buggy code until it fails with ``marker`` (or give up, failing).

    A search is random and the actors are threads, so one fixed-seed search
    can miss a bug another one finds; a few fresh searches make the proof
    that the machine *can* catch it reliable.
    """
    for _ in range(attempts):
        try:
            run()
        except AssertionError as exc:
            assert marker in str(exc), f"failed for another reason: {exc}"
            return
    raise AssertionError(f"the planted bug ({marker}) was not caught in {attempts} searches")


def _brief(value: Any) -> str:
    """A short, deterministic rendering of store-call arguments and results for failure logs."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_brief(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    if isinstance(value, InboxId):
        return f"{value.kind[0]}:{value.key[-4:]}"
    if isinstance(value, Envelope):
        extra = f" req={value.request_id}" if value.request_id else ""
        extra += f" re={value.reply_to}" if value.reply_to else ""
        return f"<{value.id}{extra}>"
    if isinstance(value, Batch):
        return f"batch[{', '.join(e.id for e in value.envelopes)}]"
    if callable(value):
        return "fn"
    if isinstance(value, RegistryEntry):
        return f"entry({value.server_pid})"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


class RaceMachine(RuleBasedStateMachine):
    """Shared machinery: a stepped store over a real one, actors, and the global invariants.

    Bookkeeping comes from the store itself (the SteppedStore listener), so it
    records what really happened in the order it happened:

    - ``appended``: every message id whose ``append`` returned (G1 is about these);
    - ``flight``: batches taken by actors and not yet settled/restored/recovered;
    - ``delivered``: ids in batches an actor settled (handed to its caller), in order.

    Subclasses publish peers in ``__init__`` (via :meth:`join`) and add rules.
    The ``step`` rule advances one parked actor by one store call; teardown
    runs every live actor to its end, recovers and drains every inbox, and
    checks that each appended id was delivered exactly once overall.
    """

    SETTINGS = Settings()
    QUANTUM_MS = 100

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__()
        self._closed = False
        self._unpatch_ids = deterministic_ids((*CORE_ID_MODULES, *id_modules(factory)))
        self.inner, self._cleanup = factory()
        self.sched = Scheduler()
        self.store = SteppedStore(self.inner, self.sched, self._observe)
        self.clock = StepClock(quantum_ms=self.QUANTUM_MS)
        self.host = MemoryHost()
        self.waker = RecordingWaker()
        self.main_ctx = self.context(stepped=False)
        self.me: dict[str, RegistryEntry] = {}
        self.former: list[RegistryEntry] = []  # identities a peer had before (restarts, claims)
        self.ctxs: dict[str, Context] = {}
        self.slots: dict[str, tuple[Actor, Callable[[Any], None]]] = {}
        self.appended: dict[str, InboxId] = {}
        self.append_calls: Counter[str] = Counter()
        self.flight: dict[str, Batch] = {}
        self.delivered: list[str] = []
        self.envelopes: dict[str, Envelope] = {}
        self.taken_by: dict[str, list[str]] = {}
        self.log: list[str] = []
        self.ledger_failed: set[str] = set()
        self.broken = False
        attach = getattr(self.inner, "attach_scheduler", None)
        if attach is not None:
            attach(self.sched)

    # Set-up -----------------------------------------------------------------------------------
    def context(self, *, stepped: bool = True) -> Context:
        return Context(
            store=self.store if stepped else self.inner,
            waker=self.waker,
            clock=self.clock,
            host=self.host,
            settings=self.SETTINGS,
        )

    def join(self, name: str, pid: int, session_id: str | None, **kw: Any) -> RegistryEntry:
        """Publish a peer (main thread, not stepped) and give it its own Context (own debounce)."""
        me = entry(pid, session_id, **kw)
        publish(self.main_ctx, me)
        self.me[name] = me
        self.ctxs[name] = self.context()
        return me

    def inboxes(self) -> list[InboxId]:
        """Every inbox a message of this run can be in."""
        out: list[InboxId] = []
        for me in [*self.me.values(), *self.former]:
            for inbox in ([session_inbox(me.session_id)] if me.session_id else []) + [process_inbox(me)]:
                if inbox not in out:
                    out.append(inbox)
        return out

    # Bookkeeping ---------------------------------------------------------------------------------
    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        self.log.append(
            f"t={self.clock.now_ms() % 100_000} {actor}: {method}{_brief(args)} -> {_brief(result)}"
        )
        if method == "ledger_record!":  # an injected failure: delivery goes on without a handle (R2)
            self.ledger_failed.add(args[1].id)
        elif method == "append" and result is not False:  # a guarded append may refuse
            for env in args[1]:
                self.append_calls[env.id] += 1
                self.appended.setdefault(env.id, args[0])
                self.envelopes[env.id] = env
        elif method == "take" and result is not None:
            self.flight[result.batch_id] = result
            for env in result.envelopes:
                self.taken_by.setdefault(env.id, []).append(actor)
        elif method == "settle":
            batch = self.flight.pop(args[0].batch_id, None)
            if batch is not None:
                self.delivered.extend(e.id for e in batch.envelopes)
        elif method == "restore":
            batch = self.flight.get(args[0].batch_id)
            if batch is not None:
                ids = args[1] if len(args) > 1 and args[1] is not None else [e.id for e in batch.envelopes]
                rest = tuple(e for e in batch.envelopes if e.id not in set(ids))
                if rest:
                    self.flight[batch.batch_id] = attrs.evolve(batch, envelopes=rest)
                else:
                    del self.flight[batch.batch_id]
        elif method == "recover":
            inbox, alive = args[0], args[1]
            for bid, batch in list(self.flight.items()):
                if batch.inbox == inbox and not alive(batch.holder):
                    del self.flight[bid]

    def flight_ids(self) -> set[str]:
        return {e.id for b in self.flight.values() for e in b.envelopes}

    # Actors -------------------------------------------------------------------------------------
    def reader(self, who: str) -> Callable[[], Messages]:
        """An operation for ``who`` as it is now: one real ``read_messages``, settled at once."""
        ctx, me = self.ctxs[who], self.me[who]

        def op() -> Messages:
            got = read_messages(ctx, me)
            if got.batch is not None:
                ctx.store.settle(got.batch)
            return got

        return op

    def launch(self, slot: str, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> Actor:
        """Start ``fn`` as actor ``slot`` (one operation per slot at a time)."""
        assert slot not in self.slots
        actor = self.sched.spawn(slot, fn)
        self.slots[slot] = (actor, on_done)
        self._finish_if_done(slot)
        return actor

    def free(self, slot: str) -> bool:
        return slot not in self.slots

    def parked(self) -> list[str]:
        return sorted(s for s, (a, _) in self.slots.items() if a.parked)

    def _finish_if_done(self, slot: str) -> None:
        actor, on_done = self.slots[slot]
        if actor.status == "failed":
            self.broken = True
            raise AssertionError(f"actor {slot} raised {actor.error!r}") from actor.error
        if actor.status == "done":
            del self.slots[slot]
            try:
                on_done(actor.result)
            except BaseException:
                self.broken = True
                raise

    def advance(self, slot: str) -> None:
        actor, _ = self.slots[slot]
        self.sched.step(actor)
        self._finish_if_done(slot)

    def crash_slot(self, slot: str, pid: int) -> None:
        """The process running ``slot`` dies mid-operation: its thread is never resumed, its pid is dead."""
        actor, _ = self.slots.pop(slot)
        self.sched.abandon(actor)
        self.host.kill(pid)

    @precondition(lambda self: bool(self.parked()))
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """Advance one parked actor by one store call."""
        slot = data.draw(st.sampled_from(self.parked()), label="actor")
        self.advance(slot)

    @precondition(lambda self: bool(self.parked()))
    @rule(data=st.data(), n=st.integers(2, 12))
    def burst(self, data: st.DataObject, n: int) -> None:
        """Advance one parked actor by up to ``n`` store calls, checking every invariant after each."""
        slot = data.draw(st.sampled_from(self.parked()), label="actor")
        for _ in range(n):
            if slot not in self.slots or not self.slots[slot][0].parked:
                return
            self.advance(slot)
            self.check(self.all_checks)

    # Invariants ---------------------------------------------------------------------------------
    def check(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException:
            self.broken = True
            raise

    def visible(self) -> dict[str, list[InboxId]]:
        """id -> inboxes it is waiting in now (read through the protocol)."""
        where: dict[str, list[InboxId]] = {}
        for inbox in self.inboxes():
            for env in peek(self.inner, inbox):
                where.setdefault(env.id, []).append(inbox)
        return where

    def owner_sid(self, inbox: InboxId) -> str | None:
        """The claimed session whose ledger must know every id in ``inbox`` (session inboxes only)."""
        return inbox.key if inbox.kind == "session" else None

    @invariant()
    def checks_hold(self) -> None:
        self.check(self.all_checks)

    def all_checks(self) -> None:
        self._global_invariants()
        self.extra_checks()

    def extra_checks(self) -> None:
        """A machine's own invariants (checked after every step, like the global ones)."""

    def _global_invariants(self) -> None:
        where = self.visible()
        flight = self.flight_ids()
        store_flight: set[str] = set()
        for inbox in self.inboxes():
            ids = in_flight_ids(self.inner, inbox)
            if ids is not None:
                store_flight |= ids
        if hasattr(self.inner, "in_flight"):
            missing = flight - store_flight
            assert not missing, f"model in-flight ids missing from the store: {missing}"
        flight |= store_flight
        # G2: an id is in one place at a time, appended once, delivered at most once.
        for mid, inboxes in where.items():
            assert len(inboxes) == 1, f"G2: {mid} waits in several inboxes {inboxes}"
            assert mid not in flight, f"G2: {mid} is both waiting and in flight"
        dup = [m for m, n in Counter(self.delivered).items() if n > 1]
        assert not dup, f"G2: delivered twice: {dup}"
        again = [m for m, n in self.append_calls.items() if n > 1]
        assert not again, f"G2: appended twice: {again}"
        for mid in self.delivered:
            assert mid not in where and mid not in flight, f"G2: {mid} delivered but still in the store"
        # G1: every id whose append returned is waiting, in flight or delivered.
        delivered = set(self.delivered)
        lost = [m for m in self.appended if m not in where and m not in flight and m not in delivered]
        assert not lost, f"G1: lost {lost}"
        # R1: a visible or in-flight id that was appended to a claimed session's inbox resolves
        # in that session's ledger (mail sent to a process inbox before a claim has no ledger line).
        for mid, inboxes in where.items():
            owner = self.owner_sid(self.appended.get(mid, inboxes[0]))
            if owner is not None and mid not in self.ledger_failed:
                assert self.inner.ledger_lookup(owner, mid) is not None, (
                    f"R1: {mid} visible in {owner}'s inbox but not in its ledger"
                )
        for batch in self.flight.values():
            for env in batch.envelopes:
                owner = self.owner_sid(self.appended.get(env.id, batch.inbox))
                if owner is not None and env.id not in self.ledger_failed:
                    assert self.inner.ledger_lookup(owner, env.id) is not None, (
                        f"R1: {env.id} in flight from {owner}'s inbox but not in its ledger"
                    )

    # Teardown -----------------------------------------------------------------------------------
    def quiesce(self) -> None:
        """Run every live actor to its end, in slot order (deterministic)."""
        for _ in range(10):
            live = self.parked()
            if not live:
                return
            for slot in live:
                for _ in range(500):
                    if slot not in self.slots or not self.slots[slot][0].parked:
                        break
                    self.advance(slot)
                    self.all_checks()
                else:
                    raise StuckActor(f"actor {slot} did not finish within 500 store calls")

    def final_reads(self) -> list[str]:
        """Every live peer reads its mail with the real ``read_messages`` until none is left."""
        got: list[str] = []
        for me in self.me.values():
            if not self.host.is_alive(me.server_pid, me.process_start):
                continue
            for _ in range(100):
                batch = read_messages(self.main_ctx, me).batch
                if batch is None:
                    break
                self.inner.settle(batch)
                got.extend(e.id for e in batch.envelopes)
        return got

    def final_checks(self) -> None:
        """Run everything to its end; then each appended id reaches its owner's reads exactly once."""
        self.quiesce()
        self.all_checks()
        read = self.final_reads()
        is_alive = lambda h: self.host.is_alive(h.pid, h.process_start)  # noqa: E731
        drained: list[str] = []
        for inbox in self.inboxes():
            drained.extend(e.id for e in drain_all(self.inner, inbox, is_alive))
        everything = Counter(self.delivered) + Counter(read)
        twice = [m for m, n in (everything + Counter(drained)).items() if n > 1]
        assert not twice, f"G2: delivered more than once overall: {twice}"
        lost = set(self.appended) - set(everything) - set(drained)
        assert not lost, f"G1: lost, not even found by a final recover+drain: {lost}"
        stranded = [m for m in drained if m in self.appended]
        assert not stranded, f"G1: mail its owner's reads can never reach: {stranded}"

    def teardown(self) -> None:
        try:
            if not self.broken:
                self.final_checks()
        finally:
            self.close()

    def close(self) -> None:
        """Release every actor thread, remove the store's files, restore ``new_id`` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.sched.close()
        finally:
            self._cleanup()
            self._unpatch_ids()
