"""The obligation ledger's rules (accounting.md §1.4) as a model, against every store backend.

A Hypothesis machine records deliveries (durable or plain, re-recorded with other bodies, under
caps from 0 to 4) and closes them (done or blocked, twice, on plain lines, on absent ids), and
checks every answer against the rules as the spec states them: re-recording an id replaces its
line, moved last, and keeps a stored outcome (A32); pruning drops the oldest lines first and
never an open obligation (A31); a close is a compare-and-set whose first outcome stays (A23);
the open list is newest first. MemoryStore and FsStore run the same machine (tests/support/stores.py).
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from oxtail_core.model import CloseOutcome, Envelope, LedgerRecord, Obligation
from oxtail_core.testing import StoreFactory, race_settings
from oxtail_core.testing.contract import mint
from tests.support.stores import store_params

IDS = st.integers(1, 6)


@attrs.frozen
class Line:
    envelope: Envelope
    obligation: Obligation | None = None

    @property
    def is_open(self) -> bool:
        return self.envelope.action_required and self.obligation is None


class LedgerRules(RuleBasedStateMachine):
    """The spec's rules, stated once more independently of any store, and one store beside them."""

    def __init__(self, factory: StoreFactory) -> None:
        super().__init__()
        self.store: Any
        self.store, self._cleanup = factory()
        self.lines: list[Line] = []

    @rule(n=IDS, variant=st.integers(0, 2), keep=st.integers(0, 4))
    def record(self, n: int, variant: int, keep: int) -> None:
        env = mint(n, f"body {n}.{variant}", action_required=n % 2 == 1, from_session_id="requester")
        same = [line for line in self.lines if line.envelope.id == env.id]
        carried = next((line.obligation for line in same if line.obligation is not None), None)
        lines = [line for line in self.lines if line.envelope.id != env.id] + [Line(env, carried)]
        excess, dropped, kept = len(lines) - keep, 0, []
        for line in lines:
            if dropped < excess and not line.is_open:
                dropped += 1
            else:
                kept.append(line)
        self.lines = kept
        assert self.store.ledger_record("me", env, keep) == dropped

    @rule(n=st.integers(1, 7), state=st.sampled_from(["done", "blocked"]), at=st.integers(0, 3))
    def close(self, n: int, state: str, at: int) -> None:
        outcome = Obligation(state=state, at=at, note=f"{state} {at}")  # type: ignore[arg-type]
        index = next((i for i, line in enumerate(self.lines) if line.envelope.id == mint(n).id), None)
        if index is None:
            expected = CloseOutcome("not-found")
        else:
            line = self.lines[index]
            if not line.envelope.action_required:
                expected = CloseOutcome("not-an-obligation", LedgerRecord(line.envelope, line.obligation))
            elif line.obligation is not None:
                expected = CloseOutcome("already-closed", LedgerRecord(line.envelope, line.obligation))
            else:
                self.lines[index] = Line(line.envelope, outcome)
                expected = CloseOutcome("claimed", LedgerRecord(line.envelope, outcome))
        assert self.store.ledger_close("me", mint(n).id, outcome) == expected

    @invariant()
    def the_store_shows_what_the_rules_say(self) -> None:
        assert self.store.ledger_open("me") == [
            line.envelope for line in reversed(self.lines) if line.is_open
        ]
        for n in range(1, 8):
            newest = next(
                (line.envelope for line in reversed(self.lines) if line.envelope.id == mint(n).id), None
            )
            assert self.store.ledger_lookup("me", mint(n).id) == newest

    def teardown(self) -> None:
        self._cleanup()


@pytest.mark.parametrize("factory", store_params())
def test_every_store_follows_the_ledger_rules_for_records_closes_and_pruning(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: LedgerRules(factory), settings=race_settings(60, 40))
