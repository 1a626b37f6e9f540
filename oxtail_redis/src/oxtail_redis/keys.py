"""Key names: every key of a team is ``<prefix>:{<team>}:<suffix>``, and no suffix is a caller string.

The braces are a Redis Cluster hash tag: all of one team's keys sit in one slot, so a script
that touches several of them works on a cluster too. ``<team>`` and ``<prefix>`` are validated
(no braces, colons or glob characters); suffixes are fixed names plus ``hash32`` of caller text
(session ids, projects) or ids the store minted (hex16). Caller strings only ever appear as hash
*fields*, never in a key name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import attrs

from oxtail_core.errors import StoreError
from oxtail_core.ids import hash32
from oxtail_core.protocols import InboxId

TEAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
DEFAULT_PREFIX = "oxt"
PREFIX_ENV = "OXTAIL_REDIS_PREFIX"


def prefix_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """``OXTAIL_REDIS_PREFIX``, or ``oxt`` when it is unset or empty."""
    return environ.get(PREFIX_ENV) or DEFAULT_PREFIX


def inbox_stem(inbox: InboxId) -> str:
    """``s-<hash32(session id)>`` or ``p-<hash32(process key)>``: the FsStore's inbox names."""
    return f"{'s' if inbox.kind == 'session' else 'p'}-{hash32(inbox.key)}"


@attrs.frozen
class InboxKeys:
    """The keys of one inbox (table in docs/redis.md)."""

    lines: str
    """LIST of envelope lines, oldest first."""
    head: str
    """Head version: bumped by every change except a pure tail append."""
    events: str
    """STREAM, one entry per change a waiter must see; its last id is the change token."""
    flights: str
    """HASH batch id -> ``%016d`` taken order + batch document."""
    taken: str
    """Taken-order counter."""
    quarantine: str
    """LIST of lines that did not parse."""
    recent: str
    """ZSET of the first envelope id of each recent append (the replay guard)."""
    waiting: str
    """Bytes of the waiting lines, a newline counted for each (what the inbox cap counts)."""


@attrs.frozen
class LedgerKeys:
    ids: str
    """LIST of message ids, oldest first (each id once)."""
    lines: str
    """HASH id -> ledger line (envelope plus obligation once closed)."""
    open: str
    """SET of the ids that are open obligations (never pruned)."""


class Keys:
    """The key names of one team under one prefix."""

    def __init__(self, team: str, prefix: str = DEFAULT_PREFIX) -> None:
        if not TEAM.match(team):
            raise StoreError(f"invalid team namespace {team!r}: want ^[a-z0-9][a-z0-9_-]{{0,62}}$")
        if not PREFIX.match(prefix):
            raise StoreError(f"invalid key prefix {prefix!r}: want ^[A-Za-z0-9][A-Za-z0-9_.-]{{0,31}}$")
        self.team = team
        self.base = f"{prefix}:{{{team}}}:"
        self.pattern = f"{prefix}:\\{{{team}\\}}:*"
        """A SCAN MATCH pattern for every key of the team (braces escaped)."""

    def key(self, name: str) -> str:
        return self.base + name

    def op(self, op_id: str) -> str:
        """Where a mutating script leaves its result for 60 s, so a replayed call returns the same."""
        return self.base + "op:" + op_id

    def inbox(self, inbox: InboxId) -> InboxKeys:
        stem = inbox_stem(inbox)
        k = self.base
        return InboxKeys(
            lines=f"{k}in:{stem}",
            head=f"{k}hver:{stem}",
            events=f"{k}ev:{stem}",
            flights=f"{k}fl:{stem}",
            taken=f"{k}tk:{stem}",
            quarantine=f"{k}q:{stem}",
            recent=f"{k}rid:{stem}",
            waiting=f"{k}wb:{stem}",
        )

    def ledger(self, session_id: str) -> LedgerKeys:
        h = hash32(session_id)
        return LedgerKeys(
            ids=f"{self.base}led:{h}", lines=f"{self.base}ledm:{h}", open=f"{self.base}ledq:{h}"
        )

    def hashed(self, name: str, text: str) -> str:
        """``<name>:<hash32(text)>``: one key per caller string, named by its hash."""
        return f"{self.base}{name}:{hash32(text)}"

    def indexed(self, name: str) -> tuple[str, str]:
        """A record hash and its gc index (ZSET by time): ``<name>`` and ``<name>i``."""
        return self.base + name, self.base + name + "i"
