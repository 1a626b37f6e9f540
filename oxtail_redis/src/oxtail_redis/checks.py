"""What a store checks about its Redis when it opens (design note §7.4): reachable, durable, never evicting.

oxtail keeps its guarantees only as long as Redis keeps what it acknowledged (docs/redis.md,
"Guarantees, plainly"). Two server settings decide that, and ``INFO`` reports both (it is in the
ACL the docs give; ``CONFIG GET`` is not):

=========================  ===================  =================================================
``INFO`` field             want                 otherwise
=========================  ===================  =================================================
``maxmemory_policy``       ``noeviction``       refuse to open (Redis may delete inboxes silently),
                                                unless ``OXTAIL_STORE_ALLOW_EVICTION=1``
``aof_enabled``            ``1``                open, with a warning (a Redis restart loses mail)
``aof_last_write_status``  ``ok``               open, with a warning (the last AOF write failed)
=========================  ===================  =================================================

The probe is one round trip of the standard-library client (:mod:`oxtail_redis.resp`), so an
unreachable server is one clear :class:`StoreError` naming the URL with its password masked.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from oxtail_core.errors import StoreError
from oxtail_redis.resp import Client, ReplyError, RespError
from oxtail_redis.url import RedisTarget

ALLOW_EVICTION_ENV = "OXTAIL_STORE_ALLOW_EVICTION"
SAFE_POLICY = "noeviction"


@attrs.frozen
class Durability:
    """What ``INFO persistence`` and ``INFO memory`` said, and what that means for oxtail."""

    aof_enabled: bool
    aof_last_write_status: str
    maxmemory_policy: str

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per durability risk that does not stop the store from opening."""
        found = []
        if not self.aof_enabled:
            found.append("Redis has appendonly off: a Redis restart loses all mail (set appendonly yes)")
        if self.aof_enabled and self.aof_last_write_status != "ok":
            status = self.aof_last_write_status
            found.append(f"Redis's last AOF write failed ({status}): acknowledged mail may be lost")
        if self.maxmemory_policy != SAFE_POLICY:
            found.append(
                f"Redis's maxmemory-policy is {self.maxmemory_policy}: it may evict inboxes"
                f" (accepted with {ALLOW_EVICTION_ENV}=1)"
            )
        return tuple(found)


def parse_info(text: str) -> dict[str, str]:
    """``INFO``'s ``field:value`` lines (section headers and blank lines skipped)."""
    fields = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and not line.startswith("#"):
            fields[name.strip()] = value.strip()
    return fields


def probe(target: RedisTarget, timeout_s: float = 2.0) -> Durability:
    """Ask the server (PING, INFO persistence, INFO memory); StoreError if it cannot be asked."""
    where = target.masked()
    try:
        with Client(target, timeout_s) as client:
            pong, persistence, memory = client.pipeline(
                [("PING",), ("INFO", "persistence"), ("INFO", "memory")]
            )
    except RespError as exc:
        raise StoreError(f"cannot use the Redis store: {exc}") from None
    for reply in (pong, persistence, memory):
        if isinstance(reply, ReplyError):
            raise StoreError(f"the Redis store at {where} refused its start-up checks: {reply.message}")
    if not isinstance(persistence, bytes) or not isinstance(memory, bytes):
        raise StoreError(f"the Redis store at {where} answered INFO with something that is not text")
    info = parse_info(persistence.decode("utf-8", "replace") + "\n" + memory.decode("utf-8", "replace"))
    return Durability(
        aof_enabled=info.get("aof_enabled") == "1",
        aof_last_write_status=info.get("aof_last_write_status", "unknown"),
        maxmemory_policy=info.get("maxmemory_policy", "unknown"),
    )


def require(durability: Durability, where: str, env: Mapping[str, str]) -> None:
    """Refuse a store whose Redis may evict keys, unless the user said ``OXTAIL_STORE_ALLOW_EVICTION=1``."""
    if durability.maxmemory_policy != SAFE_POLICY and env.get(ALLOW_EVICTION_ENV, "").strip() != "1":
        raise StoreError(
            f"the Redis store at {where} has maxmemory-policy {durability.maxmemory_policy}: it may evict"
            f" inboxes; set maxmemory-policy noeviction (or {ALLOW_EVICTION_ENV}=1 to accept the risk)"
        )
