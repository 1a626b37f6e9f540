"""One redis-server per test session (tests/redis/server.py), killed at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oxtail_core.testing import StoreFactory
from tests.redis.server import redis_factory, start_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_store_factory(redis_url: str) -> StoreFactory:
    return redis_factory(redis_url)
