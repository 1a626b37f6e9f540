"""Crash points as Hypothesis rules: a crash anywhere inside a store operation, then a restart,
never loses an acknowledged message, never duplicates one, and never leaves a torn record.

A crash is simulated in-process: the store's crash hook raises at the named point, so the
operation stops exactly there with its files as a killed process would leave them, and the
kernel-lock semantics match too (the lock is released as the stack unwinds, as it is on death).
The "process" that crashed is then replaced by a fresh FsStore on the same directory, and every
batch its holder had in flight counts as orphaned. (tests/fs/test_fs_crash.py does the same with
real SIGKILLs.)
"""

from __future__ import annotations

import itertools
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oxtail_core.convert import ShapeError, envelope_from_line
from oxtail_core.model import Envelope
from oxtail_core.protocols import Batch, Holder, InboxId
from oxtail_fs.store.fs_store import CRASH_POINTS, FsStore
from oxtail_fs.store.inbox import unread_bytes

POINTS = tuple(p for p in CRASH_POINTS if not p.startswith("ledger:"))  # the inbox operations
SESSION = InboxId.for_session("aaaaaaaa-0000-4000-8000-000000000001")
PROCESS = InboxId.for_process(4242, 1_800_000_000)
INBOXES = (SESSION, PROCESS)


class Crash(BaseException):
    """Stands for the process dying at a crash point (BaseException: nothing may catch it)."""


class CrashPoints(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = TemporaryDirectory(prefix="oxtail-crashpoints-")
        self.home = Path(self._tmp.name)
        self.armed: str | None = None
        self.generation = 0
        self.store = self._open()
        self.ids = (f"{n:016x}" for n in itertools.count(1))
        self.acknowledged: set[str] = set()
        self.attempted: set[str] = set()
        self.delivered: list[str] = []
        self.in_hand: list[Batch] = []
        self.crashes = 0

    def _hook(self, point: str) -> None:
        if point == self.armed:
            self.armed = None
            raise Crash(point)

    def _open(self) -> FsStore:
        return FsStore(self.home, lock_timeout_s=1.0, crash_hook=self._hook)

    @property
    def holder(self) -> Holder:
        return Holder(pid=10_000 + self.generation, process_start=None)

    def _alive(self, holder: Holder) -> bool:
        return holder.pid == 10_000 + self.generation

    def _run(self, op: object) -> object:
        try:
            return op()  # type: ignore[operator]
        except Crash:
            self.crashes += 1
            self.generation += 1  # the process died: what it held in flight is orphaned
            self.in_hand.clear()
            self.store = self._open()  # restart
            return None

    @rule(point=st.sampled_from(POINTS))
    def arm(self, point: str) -> None:
        self.armed = point

    @rule(inbox=st.sampled_from(INBOXES), n=st.integers(1, 3))
    def append(self, inbox: InboxId, n: int) -> None:
        batch = [Envelope(id=next(self.ids), body=f"body {i} é\n", enqueued_at=1) for i in range(n)]
        self.attempted.update(e.id for e in batch)
        done = self._run(lambda: self.store.append(inbox, batch) or True)
        if done:
            self.acknowledged.update(e.id for e in batch)

    @rule(inbox=st.sampled_from(INBOXES), k=st.integers(1, 3))
    def take(self, inbox: InboxId, k: int) -> None:
        def op() -> Batch | None:
            self.store.recover(inbox, self._alive)
            return self.store.take(inbox, lambda ms: list(range(min(k, len(ms)))), self.holder)

        batch = self._run(op)
        if isinstance(batch, Batch):
            self.in_hand.append(batch)

    @precondition(lambda self: self.in_hand)
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        batch = self.in_hand.pop(data.draw(st.integers(0, len(self.in_hand) - 1)))
        self.store.settle(batch)
        self.delivered.extend(e.id for e in batch.envelopes)

    @precondition(lambda self: self.in_hand)
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        batch = self.in_hand.pop(data.draw(st.integers(0, len(self.in_hand) - 1)))
        self._run(lambda: self.store.restore(batch) or True)

    @rule(forward=st.booleans())
    def merge(self, forward: bool) -> None:
        source, dest = (PROCESS, SESSION) if forward else (SESSION, PROCESS)
        self._run(lambda: self.store.merge(source, dest))

    @invariant()
    def no_torn_record_and_no_duplicate_in_inboxes(self) -> None:
        seen: list[str] = []
        for inbox in INBOXES:
            for batch in self.store.in_flight(inbox):
                seen.extend(e.id for e in batch.envelopes)
        for path in self.home.rglob("*.jsonl"):
            if path.parent.name != "inboxes":
                continue
            for line in unread_bytes(path).splitlines():  # taken lines before the head are not waiting
                if not line.strip():
                    continue
                try:
                    seen.append(envelope_from_line(line).id)
                except ShapeError as exc:  # a torn record must never survive a crash
                    raise AssertionError(f"unparseable line in {path.name}: {line!r}") from exc
        duplicates = {i for i in seen if seen.count(i) > 1}
        assert not duplicates, f"duplicated in inbox/in-flight: {sorted(duplicates)}"

    def teardown(self) -> None:
        try:
            self.armed = None
            self.generation += 1  # everything still in flight is orphaned
            store = self._open()
            for inbox in INBOXES:
                store.recover(inbox, self._alive)
                while True:
                    batch = store.take(inbox, lambda ms: list(range(len(ms))), self.holder)
                    if batch is None:
                        break
                    store.settle(batch)
                    self.delivered.extend(e.id for e in batch.envelopes)
            for ident in self.acknowledged:
                count = self.delivered.count(ident)
                assert count == 1, f"acknowledged {ident} delivered {count} times"
            for ident in self.attempted - self.acknowledged:
                assert self.delivered.count(ident) <= 1, f"crashed append {ident} delivered twice"
            assert set(self.delivered) <= self.attempted
        finally:
            self._tmp.cleanup()


TestCrashPoints = CrashPoints.TestCase
TestCrashPoints.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
