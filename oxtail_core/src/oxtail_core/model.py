"""The records the core reasons about, as frozen attrs classes.

Each class validates at construction, so a bad value fails loudly at the
boundary with the field's name (``'body' must be <class 'str'>``) instead of
drifting into a state machine. The JSON shapes live in :mod:`oxtail_core.convert`.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs
from attrs import validators as v

from oxtail_core.ids import hash32
from oxtail_core.wire import utf8len

SCHEMA_VERSION = 1
BODY_MAX_BYTES = 8192
PURPOSE_MAX_CHARS = 200
WAKE_TEXT = (  # accounting.md §0.3 (0.25): typed by every keystroke wake
    "oxtail msg: read_my_messages, then act on it — close action_required work via complete_work/block_work; "
    "otherwise reply via send_message (reply_to=request_id if present)"
)

ClientType = Literal["claude-code", "codex", "unknown"]
CLIENT_TYPES: tuple[ClientType, ...] = ("claude-code", "codex", "unknown")
SessionIdSource = Literal["env", "hook-drop", "birth-time", "self-register", "sticky-claim"]
SESSION_ID_SOURCES: tuple[SessionIdSource, ...] = (
    "env",
    "hook-drop",
    "birth-time",
    "self-register",
    "sticky-claim",
)
ActivityStatus = Literal["busy", "idle"]
ACTIVITY_STATUSES: tuple[ActivityStatus, ...] = ("busy", "idle")
WakeMode = Literal["off", "auto"]


def _optional_str(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"'{attribute.name}' must be a string or None, got {value!r}")


def _non_bool_int(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{attribute.name}' must be an integer, got {value!r}")


def _optional_non_bool_int(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _non_bool_int(instance, attribute, value)


def _non_empty(instance: Any, attribute: Any, value: Any) -> None:
    if not value:
        raise ValueError(f"'{attribute.name}' must not be empty")


def _empty_to_none(value: str | None) -> str | None:
    return value or None


@attrs.frozen
class Envelope:
    """One message, minted once by the sending side; every later copy keeps it byte for byte.

    Optional fields hold ``None`` for "absent": an empty string is normalized to
    ``None`` because the reference treats ``""`` and absent alike.
    """

    id: str = attrs.field(validator=[v.instance_of(str), _non_empty])
    body: str = attrs.field(validator=v.instance_of(str))
    enqueued_at: int | None = attrs.field(default=None, validator=_optional_non_bool_int)
    body_bytes: int | None = attrs.field(default=None, validator=_optional_non_bool_int)
    origin: str = attrs.field(default="peer", validator=v.instance_of(str))
    from_session_id: str | None = attrs.field(default=None, converter=_empty_to_none, validator=_optional_str)
    request_id: str | None = attrs.field(default=None, converter=_empty_to_none, validator=_optional_str)
    reply_to: str | None = attrs.field(default=None, converter=_empty_to_none, validator=_optional_str)
    source_message_id: str | None = attrs.field(
        default=None, converter=_empty_to_none, validator=_optional_str
    )
    operator_source: str | None = attrs.field(default=None, converter=_empty_to_none, validator=_optional_str)
    action_required: bool = attrs.field(default=False, validator=v.instance_of(bool))

    @property
    def size(self) -> int:
        """Body size in UTF-8 bytes, as the read budget counts it."""
        return self.body_bytes if self.body_bytes is not None else utf8len(self.body)


@attrs.frozen
class StateCard:
    """What an agent says it is doing, shown to its peers."""

    purpose: str | None = attrs.field(validator=_optional_str)
    updated_at: int = attrs.field(validator=_non_bool_int)


@attrs.frozen
class ClientInfo:
    """Which agent host runs a server, and who that agent is."""

    type: ClientType = attrs.field(validator=v.in_(CLIENT_TYPES))
    session_id: str | None = attrs.field(default=None, validator=_optional_str)
    transcript_path: str | None = attrs.field(default=None, validator=_optional_str)
    session_id_source: SessionIdSource | None = attrs.field(
        default=None, validator=v.optional(v.in_(SESSION_ID_SOURCES))
    )
    cwd: str = attrs.field(default="", validator=v.instance_of(str))


@attrs.frozen
class Capabilities:
    """What a server's mailbox supports (0.32.1 advertises all five).

    ``reply_to`` selects strict ask correlation; ``obligations`` makes an
    ``action_required`` delegation durable. An entry that lacks a flag does
    not have the capability.
    """

    reply_to: bool = True
    provenance: bool = True
    push_budget: bool = True
    session_keyed: bool = True
    obligations: bool = True


def _optional_capabilities(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Capabilities):
        raise TypeError(f"'{attribute.name}' must be Capabilities or None, got {value!r}")


HOST_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
"""What a host id looks like (computed or ``OXTAIL_HOST_ID``): safe inside a store's key names."""


def _optional_host_id(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not (isinstance(value, str) and HOST_ID.match(value)):
        raise ValueError(f"'{attribute.name}' must match {HOST_ID.pattern} or be None, got {value!r}")


@attrs.frozen
class RegistryEntry:
    """One server process's public record.

    ``process_start`` (seconds since the epoch, as the OS reports the process's
    creation) is ours: with it a recycled pid never passes for the registered
    process. ``tmux_pane``, ``tmux_session`` and the client's ``cwd`` are
    self-reported and therefore never used as a keystroke target, nor to decide
    scope (the Host's and the process tree's word is used instead). ``client_pid`` / ``client_start`` (ours)
    name the client process that launched the server (its parent at join): two
    servers with the same client process are siblings of one agent, the claim
    rule (:mod:`oxtail_core.claims`) tells them from an impostor by it.

    ``host_id`` (ours) names the machine the process runs on; None means "this
    machine" (every filesystem store, and entries older than it), so pids and
    start times are judged by the local process tree. ``host_name`` is for
    display only. ``project_id`` identifies the project across machines (a hash
    of the repository's root commit, else of its origin): paths are never
    compared across hosts (:func:`oxtail_core.routing.in_project`).
    """

    server_pid: int = attrs.field(validator=_non_bool_int)
    started_at: int = attrs.field(validator=_non_bool_int)
    client: ClientInfo = attrs.field(validator=v.instance_of(ClientInfo))
    tmux_pane: str | None = attrs.field(default=None, validator=_optional_str)
    tmux_session: str | None = attrs.field(default=None, validator=_optional_str)
    state: StateCard | None = attrs.field(default=None, validator=v.optional(v.instance_of(StateCard)))
    capabilities: Capabilities | None = attrs.field(default=Capabilities(), validator=_optional_capabilities)
    process_start: float | None = attrs.field(default=None)
    client_pid: int | None = attrs.field(default=None, validator=_optional_non_bool_int)
    client_start: float | None = attrs.field(default=None)
    host_id: str | None = attrs.field(default=None, validator=_optional_host_id)
    host_name: str | None = attrs.field(default=None, validator=_optional_str)
    project_id: str | None = attrs.field(default=None, validator=_optional_str)

    @server_pid.validator
    def _positive_pid(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value <= 0:
            raise ValueError(f"'server_pid' must be positive, got {value}")

    @property
    def session_id(self) -> str | None:
        """The agent identity, or None while unclaimed (an empty string counts as unclaimed)."""
        return self.client.session_id or None

    @property
    def reply_to_capable(self) -> bool:
        """Whether asks to this peer use strict ``reply_to`` correlation."""
        return self.capabilities is not None and self.capabilities.reply_to is True

    @property
    def obligations_capable(self) -> bool:
        """Whether an ``action_required`` delegation to this peer is a durable obligation."""
        return self.capabilities is not None and self.capabilities.obligations is True


def same_incarnation(a: RegistryEntry, b: RegistryEntry) -> bool:
    """Whether two entries describe the same server process (not merely the same, reusable, pid,
    nor the same pid and start time on another machine)."""
    return (a.host_id, a.server_pid, a.started_at, a.process_start) == (
        b.host_id,
        b.server_pid,
        b.started_at,
        b.process_start,
    )


@attrs.frozen
class PendingAsk:
    """A durable note that ``requester`` is still owed a reply to ``request_id`` by ``peer``.

    ``peer`` (ours) lets only the agent that was asked consume the note; the
    reference let any sender with a matching ``reply_to`` take it (R54).
    """

    requester: str = attrs.field(validator=[v.instance_of(str), _non_empty])
    request_id: str = attrs.field(validator=[v.instance_of(str), _non_empty])
    at_ms: int = attrs.field(validator=_non_bool_int)
    peer: str | None = attrs.field(default=None, validator=_optional_str)
    message_id: str | None = attrs.field(default=None, validator=_optional_str)
    owner_epoch: int | None = attrs.field(default=None, validator=_optional_non_bool_int)
    attempts: int = attrs.field(default=0, validator=_non_bool_int)
    last_repoke_at: int | None = attrs.field(default=None, validator=_optional_non_bool_int)


@attrs.frozen
class PendingWake:
    """A wake-intent record (accounting.md §1.6): ``recipient`` should have been woken for
    ``message_id`` but the sender's wake was no confident delivery.

    The recipient's own server re-nudges its pane while the record lives and the
    message has no receipt (selfheal.md §1). ``sent_at_ms`` is the TTL clock and
    never moves: a bump counts an attempt, it does not extend the record's life.
    """

    recipient: str = attrs.field(validator=[v.instance_of(str), _non_empty])
    message_id: str = attrs.field(validator=[v.instance_of(str), _non_empty])
    sender: str | None = attrs.field(default=None, validator=_optional_str)
    sent_at_ms: int = attrs.field(default=0, validator=_non_bool_int)
    attempts: int = attrs.field(default=0, validator=_non_bool_int)
    last_attempt_at: int | None = attrs.field(default=None, validator=_optional_non_bool_int)


@attrs.frozen
class ActivityMarker:
    """A busy/idle marker written by an agent's hooks; ``at_ms`` is when it was written.

    Any other content is no marker at all ("unknown"): a store that reads one returns None.
    """

    status: ActivityStatus = attrs.field(validator=v.in_(ACTIVITY_STATUSES))
    at_ms: int = attrs.field(validator=_non_bool_int)


def _finite_number(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"'{attribute.name}' must be a finite number, got {value!r}")


@attrs.frozen
class Ancestor:
    """One process above a server: its pid and its start signature (``ps`` ``lstart`` text, "" if unknown)."""

    pid: int = attrs.field(validator=_non_bool_int)
    sig: str = attrs.field(validator=v.instance_of(str))


def _tuple_of_ancestors(value: Iterable[Ancestor]) -> tuple[Ancestor, ...]:
    return tuple(value)


def claim_key(client_type: str, cwd: str, session_id: str) -> str:
    """First 32 hex of SHA-256 over ``"<type> <cwd> <id>"``: one sticky claim per agent per cwd."""
    return hash32(f"{client_type} {cwd} {session_id}")


@attrs.frozen
class ClaimRecord:
    """A sticky claim: an agent's explicit claim of ``session_id`` in ``cwd``, with the claimant's ancestry.

    ``claimed_at`` is in epoch seconds (an integer when we write it; older
    writers may have left a float). ``client_type`` is any string: a record of
    a type we do not know simply never matches.
    """

    client_type: str = attrs.field(validator=v.instance_of(str))
    cwd: str = attrs.field(validator=v.instance_of(str))
    ancestors: tuple[Ancestor, ...] = attrs.field(
        converter=_tuple_of_ancestors, validator=v.deep_iterable(v.instance_of(Ancestor))
    )
    session_id: str = attrs.field(validator=v.instance_of(str))
    transcript_path: str | None = attrs.field(validator=_optional_str)
    claimed_at: float = attrs.field(validator=_finite_number)
    server_pid: int = attrs.field(validator=_non_bool_int)

    @property
    def key(self) -> str:
        """Where the record is kept (see :func:`claim_key`): re-claiming replaces the same record."""
        return claim_key(self.client_type, self.cwd, self.session_id)


def claim_is_stale(
    transcript_path: str | None,
    claimed_at: float | None,
    cutoff_ms: int,
    transcript_exists: Callable[[str], bool],
) -> bool:
    """The sticky-claim GC rule every store applies (see ``Store.claim_gc``).

    ``claimed_at`` None (not a number) never expires by age; a transcript that is unset or gone does.
    """
    if not transcript_path or not transcript_exists(transcript_path):
        return True
    return claimed_at is not None and claimed_at * 1000 < cutoff_ms


class WakeStatus(enum.StrEnum):
    """What became of a wake decision; the values are wire strings."""

    FIRED = "fired"
    FIRED_UNCONFIRMED = "fired_unconfirmed"
    SKIPPED_NO_TARGET = "skipped_no_target"
    SKIPPED_BUSY = "skipped_busy"
    SKIPPED_NO_FRESH_IDLE = "skipped_no_fresh_idle"
    SKIPPED_RATE_LIMITED = "skipped_rate_limited"
    SKIPPED_DEDUPED = "skipped_deduped"
    SKIPPED_STORE_ERROR = "skipped_store_error"
    SKIPPED_DEBOUNCED = "skipped_debounced"
    DISABLED = "disabled"


class WakeReason(enum.StrEnum):
    """Why a reply was (or was not) woken; only send_message and reply_to_message report it."""

    REPLY_TO_DEFAULT = "reply_to_default"
    LATE_REPLY = "late_reply_to_pending"
    LATE_REPLY_SUPPRESSED = "late_reply_to_pending_suppressed"
    HOOKLESS_DEFAULT = "hookless_default"


class Outlook(enum.StrEnum):
    """What a plain send may expect when no wake is sent (accounting.md §4); advisory only."""

    STRANDED_UNTIL_READ = "stranded_until_read"
    UNKNOWN_LIVENESS = "unknown_liveness"  # defined vocabulary, never returned (A41)


@attrs.frozen
class WakeOutcome:
    """The result of wake resolution: every part may be absent (no wake was intended).

    ``outlook`` is set only on the plain seam, where no wake is sent, so it
    never appears together with ``status`` (A39).
    """

    status: WakeStatus | None = None
    reason: WakeReason | None = None
    outlook: Outlook | None = None


ObligationState = Literal["done", "blocked"]
OBLIGATION_STATES: tuple[ObligationState, ...] = ("done", "blocked")
ReceiptVia = Literal["hook", "read_my_messages", "ask_peer_reply"]
RECEIPT_VIAS: tuple[ReceiptVia, ...] = ("hook", "read_my_messages", "ask_peer_reply")


@attrs.frozen
class Obligation:
    """How a durable delegation was closed: terminal, written once into the receiver's ledger line.

    ``note`` is the start of the delivered completion body (:data:`NOTE_MAX_CHARS`).
    """

    state: ObligationState = attrs.field(validator=v.in_(OBLIGATION_STATES))
    at: int = attrs.field(validator=_non_bool_int)
    note: str = attrs.field(validator=v.instance_of(str))


NOTE_MAX_CHARS = 280


@attrs.frozen
class LedgerRecord:
    """One line of a received ledger: the message as delivered, and its obligation outcome if closed.

    An *open obligation* is an ``action_required`` message without an outcome;
    it is never pruned and never expires (accounting.md §3.2).
    """

    envelope: Envelope = attrs.field(validator=v.instance_of(Envelope))
    obligation: Obligation | None = attrs.field(default=None, validator=v.optional(v.instance_of(Obligation)))

    @property
    def is_open(self) -> bool:
        return self.envelope.action_required and self.obligation is None


def one_per_message(lines: Iterable[LedgerRecord]) -> list[LedgerRecord]:
    """A ledger's lines as one record per message id, ordered by its newest line: that line's
    envelope, with the obligation's outcome wherever a line holds it (what ``ledger_entry`` says)."""
    newest: dict[str, LedgerRecord] = {}
    outcome: dict[str, Obligation] = {}
    for line in lines:
        newest.pop(line.envelope.id, None)
        newest[line.envelope.id] = line
        if line.obligation is not None:
            outcome.setdefault(line.envelope.id, line.obligation)
    return [LedgerRecord(r.envelope, outcome.get(i, r.obligation)) for i, r in newest.items()]


CloseKind = Literal["claimed", "already-closed", "not-found", "not-an-obligation"]


@attrs.frozen
class CloseOutcome:
    """The result of the compare-and-set close of one obligation (``Store.ledger_close``).

    ``claimed``: this call flipped it (``record`` is the closed line);
    ``already-closed``: someone did before (``record`` holds the stored outcome);
    ``not-found`` / ``not-an-obligation``: nothing changed (``record`` None / the plain line).
    """

    kind: CloseKind
    record: LedgerRecord | None = None


@attrs.frozen
class Receipt:
    """A message was handed into an agent's context (written once; the first hand-off wins).

    It says *delivered into context*, not *acted upon*.
    """

    message_id: str = attrs.field(validator=v.instance_of(str))
    delivered_at: int = attrs.field(validator=_non_bool_int)
    via: ReceiptVia = attrs.field(validator=v.in_(RECEIPT_VIAS))
    recipient_session_id: str | None = attrs.field(default=None, validator=_optional_str)


@attrs.frozen
class OutboxRecord:
    """The sender's note that a message was enqueued, and where (for ``message_status``).

    ``target_started_at`` (ours) names the process inbox of an unclaimed target
    exactly (our process inboxes are keyed by pid and start, so a recycled pid
    never matches).
    """

    message_id: str = attrs.field(validator=v.instance_of(str))
    enqueued_at: int | None = attrs.field(validator=_optional_non_bool_int)
    target_session_id: str | None = attrs.field(validator=_optional_str)
    target_server_pid: int = attrs.field(validator=_non_bool_int)
    from_session_id: str | None = attrs.field(default=None, validator=_optional_str)
    target_started_at: int | None = attrs.field(default=None, validator=_optional_non_bool_int)


def check_body(body: str) -> None:
    """Raise ValueError unless ``body`` is 1 character to 8192 UTF-8 bytes."""
    if not isinstance(body, str) or not body:
        raise ValueError("body must be a non-empty string")
    if utf8len(body) > BODY_MAX_BYTES:
        raise ValueError(f"body exceeds {BODY_MAX_BYTES} UTF-8 bytes")
