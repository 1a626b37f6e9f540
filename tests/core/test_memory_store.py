"""MemoryStore keeps the Store contract (the same tests every backend runs, oxtail_core.testing)."""

from __future__ import annotations

import pytest

from oxtail_core.testing import StoreContract, StoreFactory, memory_factory


class TestMemoryStoreContract(StoreContract):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return memory_factory
