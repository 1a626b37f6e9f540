"""Machine 8 (tests/core/test_races_relay.py), unchanged, on RedisStore (a real redis-server).

Redis times leases, takeovers and request ages by its own clock, so the machine's ticks do not
move them: the runs here check the same invariants under the same interleavings of claims,
withdrawals and crashed relays, with takeovers only of what really sat idle for two seconds.
"""

from __future__ import annotations

import pytest

from oxtail_core.testing import StoreFactory
from tests.core import test_races_relay

pytestmark = pytest.mark.races


def test_the_relay_machine_keeps_its_invariants_on_the_redis_store(redis_store_factory: StoreFactory) -> None:
    test_races_relay.test_relayed_wakes_type_only_under_one_claim_and_report_only_what_happened(
        redis_store_factory
    )
