"""Messages from the human operator (selfheal.md §8.3): who sends them, how they are framed, the limits.

The operator is a person at a terminal (the cockpit, ``oxtail-mcp message``), never an agent, and
never reachable through MCP: no tool schema carries ``origin``, and every agent send mints
``origin:"peer"`` (:func:`oxtail_core.delivery.mint`). An operator message:

==================  ============================================================================
rule                what it is
==================  ============================================================================
sender              nobody: no ``from_session_id``; ``origin:"operator"``,
                    ``operator_source:"oxpit"``. So ``reply_to_message`` on it fails with
                    ``no-reply-target`` and the hook frames it as human-authorized but
                    untrusted, one-way context (``origin=operator (oxpit)`` and the operator
                    steer); ``read_my_messages`` adds ``operator_message_hint``
target              re-resolved from the registry at send time, by session id (else by pid for
                    an unclaimed server): refused if no entry is left (``target is no longer
                    registered``) or no entry of it is alive (``target process is not alive``;
                    a recycled pid is not alive); a reference (Node) peer is refused
body                1 character to 8192 UTF-8 bytes, not only whitespace (``empty message``)
delivery            the normal path: ledger record, then inbox append, then outbox note
wake                on unless asked off: the lenient gate and the single keystroke funnel of
                    :mod:`oxtail_core.wake`, typing the generic wake line (never the body:
                    typed text would reach the agent as its user's own prompt, unframed)
throttle            one wake per target per ``OXTAIL_OPERATOR_WAKE_THROTTLE_MS`` (default
                    5000), claimed before the keystrokes and given back unless they landed
pending wake        none: the operator sees the outcome and can nudge again
==================  ============================================================================

The throttle lives in the store's reply-wake dedupe slots under a key longer than any
``reply_to`` the core accepts (:data:`oxtail_core.limits.ID_MAX_CHARS`), so no peer's reply can
share it. Lookup by a person's name for an agent (:func:`lookup`) is here too, so the cockpit
and the shell command resolve ``abc12345`` the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import attrs

from oxtail_core import gates
from oxtail_core.context import Context
from oxtail_core.delivery import deliver, fresh_id
from oxtail_core.effects import Flow
from oxtail_core.errors import StoreError
from oxtail_core.foreign import is_foreign
from oxtail_core.ids import canonical_session_id, same_session_id
from oxtail_core.limits import ID_MAX_CHARS
from oxtail_core.model import BODY_MAX_BYTES, Envelope, RegistryEntry, WakeStatus
from oxtail_core.routing import collapse
from oxtail_core.settings import positive_number
from oxtail_core.trace import safe_emit
from oxtail_core.wake import lenient_wake
from oxtail_core.wire import utf8len

OPERATOR_SOURCE = "oxpit"
"""``operator_source`` of every operator message (the reference's cockpit name; clients key on it)."""
NUDGE_BODY = "Operator nudge from oxpit — check your mailbox (read_my_messages) and your current state/work."
THROTTLE_ENV = "OXTAIL_OPERATOR_WAKE_THROTTLE_MS"
THROTTLE_DEFAULT_MS = 5000.0
WAKE_SLOT = "operator-wake:" + "-" * ID_MAX_CHARS
"""The dedupe key of the operator's wake throttle: longer than any accepted ``reply_to``."""
SHORT_ID_CHARS = 8

NOT_REGISTERED = "target is no longer registered"
NOT_ALIVE = "target process is not alive"
FOREIGN = "target is a reference (Node) oxtail peer; send from one of its own sessions"
EMPTY = "empty message"
TOO_LONG = f"message exceeds {BODY_MAX_BYTES} UTF-8 bytes"

SKIPPED_THROTTLED = "skipped_throttled"
WAKE_OFF = "off"


@attrs.frozen
class Target:
    """Whom a person means: an agent by session id, or an unclaimed server by pid."""

    session_id: str | None
    server_pid: int

    @classmethod
    def of(cls, entry: RegistryEntry) -> Target:
        sid = entry.session_id
        return cls(canonical_session_id(sid) if sid else None, entry.server_pid)

    @property
    def label(self) -> str:
        """Short id (first 8 characters of the session id) or ``pid:<n>``; not escaped for a terminal."""
        return self.session_id[:SHORT_ID_CHARS] if self.session_id else f"pid:{self.server_pid}"


@attrs.frozen
class OperatorSent:
    """Delivered. ``wake``: a :class:`WakeStatus` value, ``skipped_throttled`` or ``off``;
    ``unclaimed``: it went to a server's process inbox (no session yet)."""

    message_id: str
    target: Target
    wake: str
    unclaimed: bool


@attrs.frozen
class OperatorRefused:
    """Nothing was delivered, for ``reason`` (one line, one of the constants above or a store error)."""

    target: Target | None
    reason: str


@attrs.frozen
class LookupFailed:
    """``name`` designates no agent in scope (``matches`` 0) or several (``matches`` > 1)."""

    name: str
    matches: int


def throttle_from_env(env: Mapping[str, str]) -> float:
    """``OXTAIL_OPERATOR_WAKE_THROTTLE_MS`` by the PosNum rule (default 5000)."""
    return positive_number(env, THROTTLE_ENV, THROTTLE_DEFAULT_MS)


def lookup(ctx: Context, root: str, name: str) -> Target | LookupFailed:
    """The one agent of ``root``'s project that ``name`` designates, dead or alive (a send to a dead
    one is refused with its reason, which says more than "no match").

    Tried in order, the first rule that matches anything decides: the session id; ``pid:<n>`` (or
    ``<n>``) of a server; a prefix of at least 4 characters of a session id (the short id is 8);
    the tmux session name.
    """
    entries = [
        e
        for e in ctx.store.registry_entries()
        if not is_foreign(e) and ctx.host.same_project(root, e.client.cwd)
    ]
    wanted = name.strip()
    pid = wanted.removeprefix("pid:")
    rules = (
        lambda e: same_session_id(e.session_id, wanted),
        lambda e: pid.isdigit() and e.server_pid == int(pid),
        lambda e: len(wanted) >= 4 and canonical_session_id(e.session_id or "").startswith(wanted.lower()),
        lambda e: bool(wanted) and e.tmux_session == wanted,
    )
    for rule in rules:
        found = {t.session_id or t.label: t for t in map(Target.of, filter(rule, entries))}  # one per agent
        if len(found) == 1:
            return next(iter(found.values()))
        if found:
            return LookupFailed(name, len(found))
    return LookupFailed(name, 0)


def resolve(ctx: Context, target: Target) -> RegistryEntry | OperatorRefused:
    """``target``'s freshest live entry, read now (a snapshot's entry may be stale)."""
    try:
        entries = ctx.store.registry_entries()
    except StoreError as exc:
        return OperatorRefused(target, str(exc))
    if target.session_id:
        mine = [e for e in entries if same_session_id(e.session_id, target.session_id)]
    else:
        mine = [e for e in entries if e.server_pid == target.server_pid and not e.session_id]
    if not mine:
        return OperatorRefused(target, NOT_REGISTERED)
    live = [e for e in mine if ctx.host.is_alive(e.server_pid, e.process_start, e.host_id)]
    if not live:
        return OperatorRefused(target, NOT_ALIVE)
    entry = collapse(live)[0]
    return OperatorRefused(target, FOREIGN) if is_foreign(entry) else entry


def body_problem(body: str) -> str | None:
    """Why ``body`` cannot be sent, or None."""
    if not body.strip():
        return EMPTY
    if utf8len(body) > BODY_MAX_BYTES:
        return TOO_LONG
    return None


def send(
    ctx: Context,
    target: Target,
    body: str,
    *,
    wake: bool = True,
    throttle_ms: float = THROTTLE_DEFAULT_MS,
) -> Flow[OperatorSent | OperatorRefused]:
    """Deliver ``body`` to ``target`` as the operator, then wake it (see the module's table).

    An append failure propagates (the caller reports it; nothing was sent). Wake problems never
    turn the delivered message into a refusal.
    """
    problem = body_problem(body)
    if problem is not None:
        return OperatorRefused(target, problem)
    entry = resolve(ctx, target)
    if isinstance(entry, OperatorRefused):
        return entry
    envelope = Envelope(
        id=fresh_id(),
        body=body,
        enqueued_at=ctx.clock.now_ms() // 1000,
        body_bytes=utf8len(body),
        origin="operator",
        operator_source=OPERATOR_SOURCE,
    )
    if not deliver(ctx, entry, envelope):
        return OperatorRefused(target, NOT_REGISTERED)
    status = (yield from _wake(ctx, entry, throttle_ms)) if wake else WAKE_OFF
    safe_emit(
        ctx.tracer,
        "operator_message",
        message_id=envelope.id,
        target_session_id=entry.session_id,
        server_pid=entry.server_pid,
        wake_status=status,
    )
    return OperatorSent(envelope.id, Target.of(entry), status, unclaimed=not entry.session_id)


def _wake(ctx: Context, entry: RegistryEntry, throttle_ms: float) -> Flow[str]:
    """The kill switch, the throttle claim, the lenient gate and funnel; the claim is given back
    unless keystrokes landed (a wake that typed nothing must not hold off the next one, S58)."""
    if ctx.settings.autowake_off:
        return WakeStatus.DISABLED.value
    sid = canonical_session_id(entry.session_id) if entry.session_id else None
    now = ctx.clock.now_ms()
    if sid is not None:
        try:
            if not ctx.store.dedupe_claim(sid, WAKE_SLOT, now, now - int(throttle_ms)):
                return SKIPPED_THROTTLED
        except StoreError:
            return WakeStatus.SKIPPED_STORE_ERROR.value
    status = yield from lenient_wake(ctx, entry)
    if sid is not None and status not in gates.TYPED:
        with contextlib.suppress(StoreError):
            ctx.store.dedupe_release(sid, WAKE_SLOT, now)
    return status.value
