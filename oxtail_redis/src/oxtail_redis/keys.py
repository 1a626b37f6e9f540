"""Key names: every key of a team is ``<prefix>:{<team>}:<suffix>``, and no suffix is a caller string.

The braces are a Redis Cluster hash tag: all of one team's keys sit in one slot, so a script
that touches several of them works on a cluster too. ``<team>`` and ``<prefix>`` are validated
(no braces, colons or glob characters); suffixes are fixed names plus ``hash32`` of caller text
(session ids, projects) or ids the store minted (hex16). Caller strings only ever appear as hash
*fields*, never in a key name.

Standard library only (no ``re``, no attrs, nothing of the core but the stdlib-only naming
rules): the hook's hot path names the activity marker, the inbox and its in-flight hash by
these rules before every tool call, without importing the store.
"""

from __future__ import annotations

import os

from oxtail_core.naming import hash32

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the hook's hot path imports this module
if TYPE_CHECKING:
    from collections.abc import Mapping

    from oxtail_core.protocols import InboxId

TEAM_PATTERN = "^[a-z0-9][a-z0-9_-]{0,62}$"
PREFIX_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
DEFAULT_PREFIX = "oxt"
PREFIX_ENV = "OXTAIL_REDIS_PREFIX"
_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_team(text: object) -> bool:
    """``text`` matches :data:`TEAM_PATTERN` (checked without ``re``)."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= 63
        and text[0] in _LOWER_DIGITS
        and (_LOWER_DIGITS | {"_", "-"}).issuperset(text)
    )


def is_prefix(text: object) -> bool:
    """``text`` matches :data:`PREFIX_PATTERN` (checked without ``re``)."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= 32
        and text[0] in _ALNUM
        and (_ALNUM | {"_", ".", "-"}).issuperset(text)
    )


def prefix_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """``OXTAIL_REDIS_PREFIX``, or ``oxt`` when it is unset or empty."""
    return environ.get(PREFIX_ENV) or DEFAULT_PREFIX


def session_stem(session_id: str) -> str:
    """A session inbox's stem, ``s-<hash32(session id)>`` (the session id already canonical)."""
    return "s-" + hash32(session_id)


def inbox_stem(inbox: InboxId) -> str:
    """``s-<hash32(session id)>`` or ``p-<hash32(process key)>``: the FsStore's inbox names."""
    return f"{'s' if inbox.kind == 'session' else 'p'}-{hash32(inbox.key)}"


class _Names:
    """A frozen record of key names (a plain slotted class: attrs would cost the hook its budget)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **names: str) -> None:
        if set(names) != set(self.__slots__):
            raise TypeError(f"{type(self).__name__} needs exactly {', '.join(self.__slots__)}")
        for name, value in names.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable ({name})")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({shown})"


class InboxKeys(_Names):
    """The keys of one inbox (table in docs/redis.md)."""

    __slots__ = ("events", "flights", "head", "lines", "quarantine", "recent", "taken", "waiting")

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


class LedgerKeys(_Names):
    """The keys of one session's received ledger."""

    __slots__ = ("ids", "lines", "open")
    ids: str
    """LIST of message ids, oldest first (each id once)."""
    lines: str
    """HASH id -> ledger line (envelope plus obligation once closed)."""
    open: str
    """SET of the ids that are open obligations (never pruned)."""


class Keys:
    """The key names of one team under one prefix."""

    def __init__(self, team: str, prefix: str = DEFAULT_PREFIX) -> None:
        if not is_team(team):
            from oxtail_core.errors import StoreError

            raise StoreError(f"invalid team namespace {team!r}: want {TEAM_PATTERN}")
        if not is_prefix(prefix):
            from oxtail_core.errors import StoreError

            raise StoreError(f"invalid key prefix {prefix!r}: want {PREFIX_PATTERN}")
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
        return self.inbox_of_stem(inbox_stem(inbox))

    def inbox_of_stem(self, stem: str) -> InboxKeys:
        """The keys of the inbox named ``stem`` (:func:`session_stem` for a session's)."""
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

    def activity(self, session_id: str) -> str:
        """The STRING holding a session's activity marker (written by the store and by the hook)."""
        return self.hashed("act", session_id)

    def hashed(self, name: str, text: str) -> str:
        """``<name>:<hash32(text)>``: one key per caller string, named by its hash."""
        return f"{self.base}{name}:{hash32(text)}"

    def indexed(self, name: str) -> tuple[str, str]:
        """A record hash and its gc index (ZSET by time): ``<name>`` and ``<name>i``."""
        return self.base + name, self.base + name + "i"
