"""Advisory file reservations: who is about to edit what, held by a session, never blocking.

A reservation says "session S intends to edit the paths ``pattern`` covers, in
project P, until ``expires_at``". Nobody is stopped from editing: peers see it
(``list_reservations``, ``status``), a reserve that collides with it is told
so, and the git guard refuses a commit that touches it. The rules live here
once; a Store only offers one atomic read-modify-write of a project's set
(:meth:`~oxtail_core.protocols.Store.reservations_update`) and a read.

When a reservation stands (:func:`standing`, evaluated at ``now``):

==========================================  =====================================
holder session                              the reservation
==========================================  =====================================
``now >= expires_at``                       ended (its TTL)
has a live server                           stands; an orphan clock is cleared
no live server, not seen so before          the orphan clock starts now, then:
no live server for ``< grace_ms``           stands (a restarting server keeps it)
no live server for ``>= grace_ms``          ended (exact liveness, not inactivity);
                                            with a grace of 0, at once
==========================================  =====================================

"Live server" is exact: a registry entry of that session whose process runs
with its registered start time. The orphan clock is stamped the first time a
step sees the holder without a live server, so the grace counts from that
observation (a server's death time is not recorded anywhere else).

Two reservations conflict when they have different holders, at least one is
exclusive and some path matches both patterns (:func:`oxtail_core.wildmatch.overlaps`,
an exact test). Reserving is per pattern: each requested pattern is granted
unless it conflicts with a standing reservation of another session; a
granted pattern you already held is renewed (new TTL, exclusivity, reason).
Your own reservations never conflict with each other.

Everything here is pure (the stores import it for the record); the flows that
read the registry and call the store are in :mod:`oxtail_core.reserving`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
from attrs import validators as v

from oxtail_core.ids import canonical_session_id, same_session_id
from oxtail_core.wildmatch import MAX_PATTERN_CHARS, compile_pattern, matches, overlaps

TTL_MIN_S = 60
TTL_MAX_S = 86_400
TTL_DEFAULT_S = 3_600
PATHS_MAX = 100
REASON_MAX_CHARS = 200
GRACE_DEFAULT_MS = 10_000
"""How long a holder session may have no live server before its reservations end (a restart window)."""
GRACE_ENV = "OXTAIL_RESERVATION_GRACE_MS"


def grace_from_env(env: Mapping[str, str]) -> int:
    """``OXTAIL_RESERVATION_GRACE_MS`` (digits, milliseconds, 0 allowed); anything else is the default."""
    raw = (env.get(GRACE_ENV) or "").strip()
    return int(raw) if raw.isdigit() else GRACE_DEFAULT_MS


__all__ = [
    "GRACE_DEFAULT_MS",
    "MAX_PATTERN_CHARS",
    "Conflict",
    "Reservation",
    "ReserveResult",
    "blocking",
    "check_patterns",
    "conflicts",
    "covering",
    "grace_from_env",
    "release_step",
    "reserve_step",
    "standing",
    "sweep",
    "sweep_step",
]


def _opt_str(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"'{attribute.name}' must be a string or None, got {value!r}")


def _int(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{attribute.name}' must be an integer, got {value!r}")


def _pattern(instance: Any, attribute: Any, value: Any) -> None:
    """A pattern the matcher accepts (PatternError is a ValueError): a record read back from a file
    someone edited by hand is then no record, instead of an error at every later match."""
    if not isinstance(value, str):
        raise TypeError(f"'pattern' must be a string, got {value!r}")
    compile_pattern(value)


def _opt_int(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _int(instance, attribute, value)


@attrs.frozen(cache_hash=True)  # immutable; the file store's encode memo hashes every record per step
class Reservation:
    """One session's hold on one pattern in one project (the project is the store's key).

    ``holder_tmux`` and ``client_type`` are what the holder's server said when
    it reserved (for peers to read, never a keystroke target). Times are epoch
    milliseconds. ``orphaned_at``: when a step first saw the holder without a
    live server (None while it has one).
    """

    pattern: str = attrs.field(validator=_pattern)
    holder_session_id: str = attrs.field(validator=v.instance_of(str))
    exclusive: bool = attrs.field(validator=v.instance_of(bool))
    reserved_at: int = attrs.field(validator=_int)
    expires_at: int = attrs.field(validator=_int)
    reason: str | None = attrs.field(default=None, validator=_opt_str)
    holder_tmux: str | None = attrs.field(default=None, validator=_opt_str)
    client_type: str = attrs.field(default="unknown", validator=v.instance_of(str))
    orphaned_at: int | None = attrs.field(default=None, validator=_opt_int)

    def held_by(self, session_id: str) -> bool:
        return same_session_id(self.holder_session_id, session_id)

    def to_json(self) -> dict[str, Any]:
        """The stored shape (a store keeps a list of these per project)."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Reservation:
        """Raises TypeError / ValueError for anything that is not a stored reservation."""
        if not isinstance(data, dict):
            raise TypeError("a reservation is a JSON object")
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: val for k, val in data.items() if k in names})

    def view(self) -> dict[str, Any]:
        """What peers see (``list_reservations``, a reserve's conflicts, ``status``)."""
        return {
            "pattern": self.pattern,
            "holder_session_id": self.holder_session_id,
            "holder_tmux": self.holder_tmux,
            "client_type": self.client_type,
            "reason": self.reason,
            "exclusive": self.exclusive,
            "expires_at": self.expires_at,
        }


def records_of(data: Any) -> list[Reservation]:
    """The records of a stored reservation list (decoded JSON): anything that is not a list is none,
    and an item that is not a valid record is skipped (a file or key another process wrote)."""
    out = []
    for item in data if isinstance(data, list) else []:
        try:
            out.append(Reservation.from_json(item))
        except (TypeError, ValueError):
            continue
    return out


Standing = Literal["stands", "expired", "abandoned"]


def standing(
    r: Reservation, now_ms: int, live: frozenset[str], grace_ms: int
) -> tuple[Standing, Reservation]:
    """The table of the module docstring: whether ``r`` stands at ``now_ms``, and ``r`` with its
    orphan clock brought up to date. ``live``: the session ids that have a live server."""
    return _standing(r, now_ms, _keys(live), grace_ms)


def _keys(live: Iterable[str]) -> frozenset[str]:
    """Session ids in their canonical form: ``held_by`` against all of them is one set lookup
    (:func:`~oxtail_core.ids.same_session_id` is equality of canonical forms)."""
    return frozenset(k for k in map(_key, live) if k is not None)


def _standing(
    r: Reservation, now_ms: int, live_keys: frozenset[str], grace_ms: int
) -> tuple[Standing, Reservation]:
    if now_ms >= r.expires_at:
        return "expired", r
    if _key(r.holder_session_id) in live_keys:
        return "stands", r if r.orphaned_at is None else attrs.evolve(r, orphaned_at=None)
    since = now_ms if r.orphaned_at is None else r.orphaned_at
    if now_ms - since >= grace_ms:
        return "abandoned", r
    return "stands", r if r.orphaned_at == since else attrs.evolve(r, orphaned_at=since)


def sweep(
    records: Iterable[Reservation], now_ms: int, live: frozenset[str], grace_ms: int
) -> list[Reservation]:
    """The reservations that still stand, orphan clocks updated (what every step starts from)."""
    keys = _keys(live)
    kept = []
    for r in records:
        state, updated = _standing(r, now_ms, keys, grace_ms)
        if state == "stands":
            kept.append(updated)
    return kept


def conflicts(a: Reservation, b: Reservation) -> bool:
    """Different holders, one of them exclusive, and a path both patterns cover."""
    return _conflict(a, _key(a.holder_session_id), b, _key(b.holder_session_id))


_KEYS: dict[str, str] = {}
"""Canonical forms already computed: a step asks for each record's holder, and holders are few."""


def _key(session_id: str) -> str | None:
    """The canonical form ``held_by`` compares (None: an empty id, which is nobody's)."""
    if not session_id:
        return None
    key = _KEYS.get(session_id)
    if key is None:
        if len(_KEYS) >= 4096:
            _KEYS.clear()
        key = _KEYS[session_id] = canonical_session_id(session_id)
    return key


def _conflict(a: Reservation, a_key: str | None, b: Reservation, b_key: str | None) -> bool:
    """:func:`conflicts` with both holders' :func:`_key` known (a step computes each once)."""
    if a_key is not None and a_key == b_key:
        return False
    return (a.exclusive or b.exclusive) and overlaps(a.pattern, b.pattern)


@attrs.frozen
class Conflict:
    """A requested pattern that was not granted, and one standing reservation that stopped it."""

    pattern: str
    held: Reservation

    def view(self) -> dict[str, Any]:
        return {**self.held.view(), "pattern": self.pattern}


@attrs.frozen
class ReserveResult:
    """What a reserve did: the patterns now held (granted or renewed) and what stopped the others."""

    granted: tuple[str, ...]
    conflicts: tuple[Conflict, ...]
    expires_at: int | None

    def view(self) -> dict[str, Any]:
        return {
            "granted": list(self.granted),
            "conflicts": [c.view() for c in self.conflicts],
            "expires_at": self.expires_at,
        }


def reserve_step(
    wanted: Sequence[Reservation], now_ms: int, live: frozenset[str], grace_ms: int
) -> Callable[[Sequence[Reservation]], tuple[list[Reservation], ReserveResult]]:
    """The atomic step of a reserve (all of ``wanted`` share one holder): sweep, then grant each
    pattern no standing reservation of another session conflicts with."""

    def step(current: Sequence[Reservation]) -> tuple[list[Reservation], ReserveResult]:
        kept = sweep(current, now_ms, live, grace_ms)
        keyed = [(r, _key(r.holder_session_id)) for r in kept]
        granted: list[Reservation] = []
        stopped: list[Conflict] = []
        for want in wanted:
            mine = _key(want.holder_session_id)
            clash = [r for r, key in keyed if _conflict(want, mine, r, key)]
            if clash:
                stopped.extend(Conflict(want.pattern, r) for r in clash)
            else:
                granted.append(want)
        replaced = {(g.holder_session_id, g.pattern) for g in granted}
        out = [r for r in kept if (r.holder_session_id, r.pattern) not in replaced] + granted
        expires = granted[0].expires_at if granted else None
        return out, ReserveResult(tuple(g.pattern for g in granted), tuple(stopped), expires)

    return step


def release_step(
    holder: str, patterns: Sequence[str] | None, now_ms: int, live: frozenset[str], grace_ms: int
) -> Callable[[Sequence[Reservation]], tuple[list[Reservation], list[str]]]:
    """The atomic step of a release: drop ``holder``'s reservations of ``patterns`` (None: all of
    them); returns the patterns released (standing ones only: an ended one was already gone)."""
    wanted = None if patterns is None else set(patterns)

    def step(current: Sequence[Reservation]) -> tuple[list[Reservation], list[str]]:
        kept = sweep(current, now_ms, live, grace_ms)
        gone = [r for r in kept if r.held_by(holder) and (wanted is None or r.pattern in wanted)]
        return [r for r in kept if r not in gone], [r.pattern for r in gone]

    return step


def sweep_step(
    now_ms: int, live: frozenset[str], grace_ms: int
) -> Callable[[Sequence[Reservation]], tuple[list[Reservation], list[Reservation]]]:
    """The atomic step of a listing or a gc: ended reservations go, orphan clocks are stamped."""

    def step(current: Sequence[Reservation]) -> tuple[list[Reservation], list[Reservation]]:
        kept = sweep(current, now_ms, live, grace_ms)
        return kept, kept

    return step


def check_patterns(patterns: Sequence[str]) -> list[str]:
    """The patterns, de-duplicated in order; raises PatternError for the first malformed one."""
    out: list[str] = []
    for p in patterns:
        compile_pattern(p)
        if p not in out:
            out.append(p)
    return out


def covering(records: Iterable[Reservation], path_or_pattern: str) -> list[Reservation]:
    """The reservations whose pattern shares a path with ``path_or_pattern`` (itself a pattern)."""
    compile_pattern(path_or_pattern)
    return [r for r in records if overlaps(path_or_pattern, r.pattern)]


def blocking(records: Iterable[Reservation], path: str, committer: str | None) -> list[Reservation]:
    """The exclusive reservations of other sessions that cover ``path`` (what the git guard refuses)."""
    return [
        r
        for r in records
        if r.exclusive and (committer is None or not r.held_by(committer)) and matches(r.pattern, path)
    ]
