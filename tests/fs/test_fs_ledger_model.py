"""The file ledger against the memory one (the reference semantics), with crashes inside rewrites.

Every rule runs on both stores and compares the answers: ``ledger_record``'s pruned count,
``ledger_close``'s outcome, then, after every step, ``ledger_open`` and ``ledger_lookup`` of every
id. A crash is the crash hook raising at ``ledger:after-temp-write`` (the compaction's line is
appended, the rename not done; a close's rewrite not done): then a crashed close must have changed
nothing, a crashed record must show exactly the open obligations the memory store shows after the
same record (open ones are never pruned, whatever the cap), and the next holder must remove the
temp file. After a crash the memory store is rebuilt from the file, whose pruning is legitimately
one record behind.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from oxtail_core.memory import MemoryStore
from oxtail_core.model import Envelope, Obligation
from oxtail_core.testing.contract import mint
from oxtail_fs.store import ledger
from oxtail_fs.store.fs_store import FsStore

KEEP = 3
IDS = st.integers(1, 6)
ABSENT = "ffffffffffffffff"


class Crash(BaseException):
    """The writer dying at the crash point."""


def envelope(n: int, variant: int) -> Envelope:
    """Odd ids are durable delegations. An id is minted once, so all its copies agree on
    ``action_required`` (a re-delivery may differ in nothing else that matters here)."""
    return mint(n, f"body {n}.{variant}", action_required=n % 2 == 1, from_session_id="requester")


class LedgerAgainstMemory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = TemporaryDirectory(prefix="oxtail-ledger-model-")
        self.home = Path(self._tmp.name)
        self.armed = False
        self.fs = FsStore(self.home, crash_hook=self._hook)
        self.mem = MemoryStore()
        self.crashes = 0

    def _hook(self, point: str) -> None:
        if point == "ledger:after-temp-write" and self.armed:
            self.armed = False
            raise Crash(point)

    def _restart(self) -> None:
        """A new process on the same files; its first locked operation repairs, then we resync."""
        self.crashes += 1
        self.fs = FsStore(self.home, crash_hook=self._hook)
        assert self.fs.ledger_close("me", ABSENT, Obligation(state="done", at=0, note="")).kind == "not-found"
        assert not self._temp().exists()
        self.mem = MemoryStore()
        for raw in ledger.split(self._path().read_bytes()):
            record = ledger.parse(raw)
            assert record is not None
            self.mem.ledger_record("me", record.envelope, 10**9)
            if record.obligation is not None:
                self.mem.ledger_close("me", record.envelope.id, record.obligation)

    def _path(self) -> Path:
        return self.fs._layout.ledger("me")

    def _temp(self) -> Path:
        return self._path().with_name(self._path().name + ".tmp")

    @rule()
    def arm(self) -> None:
        self.armed = True

    @rule(n=IDS, variant=st.integers(0, 1))
    def record(self, n: int, variant: int) -> None:
        env = envelope(n, variant)
        try:
            got = self.fs.ledger_record("me", env, KEEP)
        except Crash:
            self.mem.ledger_record("me", env, KEEP)
            assert {e.id for e in self.fs.ledger_open("me")} == {e.id for e in self.mem.ledger_open("me")}
            assert self.fs.ledger_lookup("me", env.id) == env  # appended before the crash point
            self._restart()
            return
        assert got == self.mem.ledger_record("me", env, KEEP)

    @rule(n=IDS, state=st.sampled_from(["done", "blocked"]), at=st.integers(0, 9))
    def close(self, n: int, state: str, at: int) -> None:
        outcome = Obligation(state=state, at=at, note=f"{state} {at}")  # type: ignore[arg-type]
        mid = mint(n).id
        try:
            got = self.fs.ledger_close("me", mid, outcome)
        except Crash:
            self._restart()  # nothing changed: the memory store did not close it either
            return
        assert got == self.mem.ledger_close("me", mid, outcome)

    @invariant()
    def both_ledgers_answer_alike(self) -> None:
        assert self.fs.ledger_open("me") == self.mem.ledger_open("me")
        for n in range(1, 7):
            assert self.fs.ledger_lookup("me", mint(n).id) == self.mem.ledger_lookup("me", mint(n).id)
        assert not self._temp().exists()

    def teardown(self) -> None:
        self._tmp.cleanup()


TestLedgerAgainstMemory = LedgerAgainstMemory.TestCase
TestLedgerAgainstMemory.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
