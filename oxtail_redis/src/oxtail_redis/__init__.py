"""oxtail-redis: the Store protocol on a Redis server, for agents on several machines.

``RedisStore(url, team)`` is the whole :class:`~oxtail_core.protocols.Store`; see docs/redis.md.

The names below load on first use (module ``__getattr__``): the hook's hot path imports
``oxtail_redis.keys``, ``.url`` and ``.resp``, which are standard library only, and must not pay
for redis-py (124-152 ms) by importing this package.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from oxtail_redis.store import RedisStore
    from oxtail_redis.url import RedisTarget, parse_url

__all__ = ["RedisStore", "RedisTarget", "parse_url"]
_HOMES = {
    "RedisStore": "oxtail_redis.store",
    "RedisTarget": "oxtail_redis.url",
    "parse_url": "oxtail_redis.url",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'oxtail_redis' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
