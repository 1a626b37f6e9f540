"""RedisStore: the unchanged Store contract (``oxtail_core.testing.StoreContract``) and the
reservation contract, on a real redis-server."""

from __future__ import annotations

import pytest

from oxtail_core.testing import StoreContract, StoreFactory
from oxtail_core.testing.reservations import ReservationContract


class TestRedisStoreContract(StoreContract, ReservationContract):
    @pytest.fixture
    def store_factory(self, redis_store_factory: StoreFactory) -> StoreFactory:
        return redis_store_factory
