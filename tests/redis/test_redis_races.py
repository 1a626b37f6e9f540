"""Every race machine of tests/core, unchanged, on RedisStore (a real redis-server).

The machines take their store factory as an argument (``store_params()`` gives them memory and
fs); here each one is called with the Redis factory instead, so the same schedules, invariants
and budgets (``budget()`` gives a non-memory store a fifth of the examples) run on Redis.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from oxtail_core.testing import StoreFactory
from tests.core import (
    test_races_ask,
    test_races_cancel,
    test_races_claim,
    test_races_crash,
    test_races_delivery,
    test_races_ledger,
    test_races_obligations,
    test_races_pending,
    test_races_reservations,
    test_races_wake,
)

pytestmark = pytest.mark.races

MACHINES: dict[str, tuple[ModuleType, str]] = {
    "ask": (test_races_ask, "test_ask_timeout_vs_late_reply"),
    "cancel": (test_races_cancel, "test_cancel_never_loses_the_reply"),
    "claim": (test_races_claim, "test_claim_merge_vs_concurrent_send"),
    "crash": (test_races_crash, "test_crashed_reader_batch_is_redelivered"),
    "delivery": (test_races_delivery, "test_delivery_drain_reply"),
    "ledger": (test_races_ledger, "test_every_store_follows_the_ledger_rules_for_records_closes_and_pruning"),
    "obligations": (
        test_races_obligations,
        "test_concurrent_closes_have_one_winner_and_the_requester_sees_each_completion_once_per_drain",
    ),
    "receipts": (
        test_races_obligations,
        "test_a_receipt_exists_iff_its_batch_was_settled_even_when_the_reader_dies",
    ),
    "pending": (test_races_pending, "test_replies_race_one_pending_ask"),
    "reservations": (
        test_races_reservations,
        "test_reservations_never_conflict_and_end_exactly_when_the_rules_say",
    ),
    "wake": (test_races_wake, "test_strict_wakes_dedupe_and_rate_limit"),
}
"""Each machine's test function (called with the Redis factory), by its module and name."""


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_race_machine_keeps_its_invariants_on_the_redis_store(
    machine: str, redis_store_factory: StoreFactory
) -> None:
    module, name = MACHINES[machine]
    getattr(module, name)(redis_store_factory)
