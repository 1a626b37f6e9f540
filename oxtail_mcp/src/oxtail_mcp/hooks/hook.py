"""``oxtail-mcp hook <id>``: the command hooks of Claude Code and Codex.

| hook id | host event | does |
|---|---|---|
| ``pretooluse``, ``codex-pretooluse`` | PreToolUse | stamp busy; deliver mail (not in a subagent) |
| ``userpromptsubmit`` | UserPromptSubmit | stamp busy; print nothing (it would reach the model) |
| ``codex-userpromptsubmit`` | UserPromptSubmit | stamp busy; deliver mail as ``additionalContext`` |
| ``codex-busy`` | PreToolUse, UserPromptSubmit | stamp busy only (a Codex not known to take context) |
| ``stop``, ``codex-stop`` | Stop | deliver by blocking the stop, else stamp idle; never twice |
| ``sessionstart``, ``codex-sessionstart`` | SessionStart | write the auto-join drop (``sessionstart.py``) |

"Never twice": a Stop with ``stop_hook_active`` true is a real stop (no loop).

A Codex hook other than PreToolUse also touches ``<state>/hooks/codex-fired``,
so ``status`` and ``diagnose`` can tell hooks Codex never ran (untrusted) from
hooks that run.

Claude Code runs PreToolUse before *every* tool call, so the common case --
stamp the activity marker, see an empty inbox, exit -- uses the standard
library only and touches a handful of paths. The store (and with it attrs,
the lock library, psutil) is imported only when there is mail, or a batch a
dead reader left in flight, to deliver.

With a shared store (``OXTAIL_STORE`` or ``store.json`` names Redis, see
:mod:`oxtail_mcp.storage`) the common case is one pipelined round trip of the
standard-library RESP client (:mod:`oxtail_redis.resp`): the marker's ``SET``,
the inbox's ``LLEN`` and the in-flight hash's ``EXISTS``. redis-py and the
store load only to deliver. An unreachable Redis delivers nothing this time.

Every path exits 0 with at most one compact JSON object on stdout: a hook must
never block a tool call or wedge the agent. Nothing is lost: what delivery
takes out of the inbox is either written to stdout or put back, and a hook
killed between the two leaves an in-flight batch that the next run (or
``read_my_messages``) restores with the same ids. What was written gets its
delivery receipts (:mod:`oxtail_mcp.hooks.receipts`) before the batch is
settled, so ``message_status`` says "delivered" only for what reached stdout.
"""

from __future__ import annotations

import os
import sys

from oxtail_core.naming import canonical_session_id, hash32
from oxtail_fs.store.names import (
    ACTIVITY,
    INBOX_SUFFIX,
    INBOXES,
    INFLIGHT,
    JOURNAL,
    activity_name,
    session_stem,
    state_dir,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hot path ~4 ms
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO, Any

    from oxtail_core.protocols import Store
    from oxtail_mcp.hooks import render
    from oxtail_mcp.storage import Choice
EVENTS = (
    "pretooluse",
    "stop",
    "userpromptsubmit",
    "sessionstart",
    "codex-pretooluse",
    "codex-stop",
    "codex-userpromptsubmit",
    "codex-busy",
    "codex-sessionstart",
)
CODEX_FIRED = ("hooks", "codex-fired")
"""Under the state dir: touched by every Codex hook run but PreToolUse's (the hot path)."""
LOCK_TIMEOUT_S = 0.5
"""How long delivery waits for the inbox lock before leaving the mail for the next run."""
STORE_FILE = "store.json"
"""Under the state dir: the shared store's settings (:mod:`oxtail_mcp.storage`)."""
REDIS_TIMEOUT_S = 0.5
"""How long the hot path's round trip to Redis may take before the hook gives up (nothing lost)."""

_JSON_SPACE = " \t\n\r"
_MARKER_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


# Input ---------------------------------------------------------------------------------------
def read_payload(stdin: IO[bytes] | None) -> dict[str, Any] | None:
    """Claude Code's JSON object from stdin; None for a terminal, nothing, or anything but an object."""
    if stdin is None or stdin.isatty():
        return None
    try:
        payload = parse_json(stdin.read())
    except (OSError, ValueError, RecursionError, StopIteration):
        return None
    return payload if isinstance(payload, dict) else None


class _Strict:
    """Settings for CPython's C JSON scanner: what ``json.loads`` uses, minus NaN and Infinity."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self) -> None:
        self.memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name!r}")


def parse_json(data: bytes) -> object:
    """One JSON value (any surrounding whitespace) from UTF-8 bytes; raises ValueError otherwise.

    Uses the C scanner behind :func:`json.loads` directly: importing :mod:`json`
    drags in ``re`` and ``enum``, about a third of the hook's time budget.
    """
    text = data.decode("utf-8")
    try:
        from _json import make_scanner
    except ImportError:  # an interpreter without the C accelerator
        import json

        return json.loads(text, parse_constant=_Strict.parse_constant)
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    value, end = make_scanner(_Strict())(text, start)  # type: ignore[arg-type]
    if text[end:].strip(_JSON_SPACE):
        raise ValueError("extra data after the JSON value")
    return value


def session_of(payload: Mapping[str, Any]) -> str | None:
    sid = payload.get("session_id")
    return canonical_session_id(sid) if isinstance(sid, str) and sid else None


# Activity marker -------------------------------------------------------------------------------
def stamp(home: str, session_id: str, status: str, now_ms: int) -> None:
    """Write the busy/idle marker as the store does (temp + rename, 0600); errors are ignored.

    The content is what ``FsStore.activity_put`` writes, so the server's
    ``activity_get`` reads it back.
    """
    path = os.path.join(home, ACTIVITY, activity_name(session_id))
    tmp = f"{path}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    data = marker_bytes(status, now_ms)
    try:
        _ensure_private_dir(os.path.dirname(path))
        fd = os.open(tmp, _MARKER_TMP_FLAGS, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        if os.path.lexists(tmp):
            os.unlink(tmp)  # it is ours; a failure here is a hook failure, swallowed by main


def marker_bytes(status: str, now_ms: int) -> bytes:
    """The marker as both stores keep it: ``to_wire(ActivityMarker)`` as compact JSON."""
    return f'{{"status":"{status}","at":{now_ms}}}'.encode("ascii")


def _ensure_private_dir(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, 0o700, exist_ok=True)  # the umask may remove bits, never add any


# Is there anything to deliver? ------------------------------------------------------------------------
def may_have_mail(home: str, session_id: str) -> bool:
    """False only when the inbox is surely empty: no bytes, no batch in flight, no journal.

    A torn append leaves bytes, a crashed take leaves a batch or a journal; all
    of those send us down the store's path, which repairs them. Files the store
    set aside (``*.corrupt``) and temp files do not count, or one bad file would
    cost every tool call a store import.
    """
    stem = session_stem(session_id)
    try:
        if os.stat(os.path.join(home, INBOXES, stem + INBOX_SUFFIX)).st_size > 0:
            return True
    except FileNotFoundError:
        pass
    except OSError:
        return True
    checks = (
        (os.path.join(home, INFLIGHT, stem), ""),
        (os.path.join(home, JOURNAL), stem),
    )
    for directory, wanted in checks:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            return True
        if any(wanted in name and name.endswith((".json", ".merge")) for name in names):
            return True
    return False


# A shared store ---------------------------------------------------------------------------------------
def shared_store_named(env: Mapping[str, str], home: str) -> bool:
    """``OXTAIL_STORE`` is set but not to ``fs``, or ``<home>/store.json`` exists (nothing parsed).

    False is the one-machine case: the files, and not one import more on the hot path.
    """
    raw = env.get("OXTAIL_STORE", "").strip()
    if raw:
        return raw != "fs"
    return os.path.lexists(os.path.join(home, STORE_FILE))


def redis_round_trip(choice: Choice, session_id: str, status: str | None, now_ms: int, *, look: bool) -> bool:
    """Stamp ``status`` (unless None) and, with ``look``, ask whether there may be mail: one round trip.

    The marker is what ``RedisStore.activity_put`` writes (same key, same bytes, no expiry). "May
    be mail" is a non-empty inbox list or an in-flight hash (a batch a reader left, which the
    store's delivery recovers); an error reply for either also says yes, so the store reports it.
    A Redis that cannot be reached says no: there is nothing the hook could deliver.
    """
    from oxtail_redis.keys import Keys, session_stem
    from oxtail_redis.resp import Client, RespError

    assert choice.target is not None and choice.team is not None and choice.prefix is not None
    keys = Keys(choice.team, choice.prefix)
    commands: list[tuple[str | bytes, ...]] = []
    if status is not None:
        commands.append(("SET", keys.activity(session_id), marker_bytes(status, now_ms)))
    if look:
        inbox = keys.inbox_of_stem(session_stem(session_id))
        commands += [("LLEN", inbox.lines), ("EXISTS", inbox.flights)]
    try:
        with Client(choice.target, REDIS_TIMEOUT_S) as client:
            replies = client.pipeline(commands)
    except RespError:
        return False
    return look and replies[-2:] != [0, 0]


# Delivery ---------------------------------------------------------------------------------------------
def deliver(
    home: str,
    session_id: str,
    event: render.Event,
    env: Mapping[str, str],
    out_fd: int,
    *,
    hook_event_name: str | None = None,
    codex: bool = False,
    shared: Choice | None = None,
) -> bool:
    """Take the next prefix of the session's inbox, print it, receipt it, then settle; True if printed.

    ``hook_event_name`` is the host event the output answers (``Stop`` for the
    stop event, else ``PreToolUse`` unless given); ``codex`` picks Codex's
    smaller default budget; ``shared`` is the shared store to deliver from
    (None: the files in ``home``), whose receipts then go through the store.

    Store failures (a lock held past the timeout, an unwritable directory) mean
    "nothing delivered this time": the mail stays for the next run. The order is
    the promise of accounting.md §2.1 and A4:

    | step | a failure or a kill here means |
    |---|---|
    | take | nothing shown, nothing taken (the mail waits) |
    | write the whole envelope to stdout | the batch goes back (a kill: recovered later), no receipt |
    | write a receipt per shown message | redelivered later, same ids; a receipt once written stays |
    | settle | redelivered later; every receipt keeps its first ``delivered_at`` |
    """
    from pathlib import Path

    from oxtail_core.errors import StoreError
    from oxtail_core.protocols import Holder, InboxId
    from oxtail_core.wire import dumps
    from oxtail_fs.host import proctree
    from oxtail_mcp.hooks import render

    default = render.CODEX_MAX_BODY_CHARS if codex else render.DEFAULT_MAX_BODY_CHARS
    limit = render.max_body_chars(env.get("OXTAIL_HOOK_MAX_BODY_CHARS"), default)
    select = render.PrefixSelector(limit)
    try:
        if shared is None:
            from oxtail_fs.store.fs_store import FsStore

            store: Store = FsStore(Path(home), lock_timeout_s=LOCK_TIMEOUT_S)
        else:
            from oxtail_mcp.storage import open_chosen

            store, _ = open_chosen(shared, env)
        # session_id is canonical already: this is routing.session_inbox without routing's imports
        inbox = InboxId.for_session(session_id)
        store.recover(inbox, lambda h: proctree.is_alive(h.pid, h.process_start))
        batch = store.take(inbox, select, Holder(os.getpid(), proctree.process_start(os.getpid())))
    except StoreError:
        return False
    shown = batch.envelopes if batch is not None else [m for m in (select.first,) if m is not None]
    if not shown:
        return False
    try:
        text = render.render(event, shown, limit, waiting=select.waiting, kept_first=batch is None)
        name = "Stop" if event == "stop" else hook_event_name or "PreToolUse"
        _write_all(out_fd, dumps(render.hook_output(name, text)).encode("utf-8"))
    except BaseException:
        if batch is not None:
            _quietly(store.restore, batch)
        raise
    if shared is None:
        _receipt(home, [m.id for m in shown], session_id)
    else:
        _store_receipts(store, [m.id for m in shown], session_id)
    if batch is not None:
        _quietly(store.settle, batch)  # if this fails the batch is recovered later: a duplicate, never a loss
    return True


def _receipt(home: str, message_ids: list[str], session_id: str) -> None:
    """Receipts for what the envelope showed (a message shown cut but kept in the inbox counts too).

    Best effort by contract: nothing here may keep the batch from settling.
    """
    import time

    try:
        from oxtail_mcp.hooks import receipts

        receipts.write_receipts(home, message_ids, receipts.VIA_HOOK, session_id, int(time.time()))
    except Exception:  # noqa: BLE001 - receipts never affect delivery (accounting.md §1.2)
        pass


def _store_receipts(store: Store, message_ids: list[str], session_id: str) -> None:
    """The receipts of a shared store (where its servers read them), with the same rules as the files'."""
    import time

    from oxtail_core.model import Receipt
    from oxtail_mcp.hooks import receipts

    now_s = int(time.time())
    for message_id in dict.fromkeys(message_ids):
        if receipts.is_message_id(message_id):
            try:
                store.receipt_put(Receipt(message_id, now_s, "hook", receipts.recipient_of(session_id)))
            except Exception:  # noqa: BLE001 - receipts never affect delivery (accounting.md §1.2)
                continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _quietly(action: Any, *args: Any) -> None:
    import contextlib

    from oxtail_core.errors import StoreError

    with contextlib.suppress(StoreError):
        action(*args)


# The hooks --------------------------------------------------------------------------------------------
def run(event: str, stdin: IO[bytes] | None, env: Mapping[str, str], out_fd: int, now_ms: int) -> None:
    """One hook invocation (exceptions are the caller's to swallow)."""
    payload = read_payload(stdin)
    if payload is None or event not in EVENTS:
        return
    sid = session_of(payload)
    if sid is None:
        return
    home = state_dir(env)
    codex = event.startswith("codex-")
    action = event.removeprefix("codex-")
    if codex and action != "pretooluse":
        note_fired(home, now_ms)
    if action == "sessionstart":
        from oxtail_mcp.hooks import sessionstart

        sessionstart.run(event, payload, home, lambda s: hash32(canonical_session_id(s)), now_ms // 1000)
        return
    subagent = isinstance(payload.get("agent_id"), str) and bool(payload["agent_id"])
    shared = _shared_choice(env, home)

    def look_and_stamp(status: str | None, *, look: bool) -> bool:
        """Stamp (unless None), then whether there may be mail (with ``look``): files or one round trip."""
        if shared is not None:
            return redis_round_trip(shared, sid, status, now_ms, look=look)
        if status is not None:
            stamp(home, sid, status, now_ms)
        return look and may_have_mail(home, sid)

    if action == "busy" or (action == "userpromptsubmit" and not codex):
        look_and_stamp("busy", look=False)
    elif action in ("pretooluse", "userpromptsubmit"):
        # the stamp first, on every tool call: a long turn never looks stale-busy
        if look_and_stamp("busy", look=not subagent):
            name = "PreToolUse" if action == "pretooluse" else "UserPromptSubmit"
            deliver(home, sid, "pretooluse", env, out_fd, hook_event_name=name, codex=codex, shared=shared)
    elif subagent:
        return  # a subagent's stop is not the agent's: its turn goes on
    elif payload.get("stop_hook_active") is True:
        look_and_stamp("idle", look=False)  # the loop guard: a continuation's stop is a real stop
    elif not (
        look_and_stamp(None, look=True)
        and deliver(home, sid, "stop", env, out_fd, codex=codex, shared=shared)
    ):
        look_and_stamp("idle", look=False)


def _shared_choice(env: Mapping[str, str], home: str) -> Choice | None:
    """The shared store to use, or None for the files; a bad setting raises (the hook stays silent)."""
    if not shared_store_named(env, home):
        return None
    from oxtail_mcp.storage import choose

    choice = choose(env)
    return choice if choice.kind != "fs" else None


def note_fired(home: str, now_ms: int) -> None:
    """Touch ``<state>/hooks/codex-fired`` (mtime = ``now_ms``): Codex ran one of our hooks."""
    path = os.path.join(home, *CODEX_FIRED)
    try:
        _ensure_private_dir(os.path.dirname(path))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.utime(path, ns=(now_ms * 1_000_000, now_ms * 1_000_000))
    except OSError:
        pass  # a hint for status, never a reason to fail the hook


def main(args: Sequence[str]) -> int:
    """Entry point; returns 0 whatever happens (Claude Code must never see a failing hook)."""
    import time

    try:
        stdin = sys.stdin.buffer if sys.stdin is not None else None
        run(args[0] if args else "", stdin, os.environ, 1, time.time_ns() // 1_000_000)
    except BaseException:  # noqa: BLE001 - a hook must exit 0 on every path, silently
        pass
    return 0
