"""oxtail-redis: the Store protocol on a Redis server, for agents on several machines.

``RedisStore(url, team)`` is the whole :class:`~oxtail_core.protocols.Store`; see docs/redis.md.
"""

from oxtail_redis.store import RedisStore
from oxtail_redis.url import RedisTarget, parse_url

__all__ = ["RedisStore", "RedisTarget", "parse_url"]
