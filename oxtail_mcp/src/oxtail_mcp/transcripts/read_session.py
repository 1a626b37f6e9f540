"""The ``read_session`` tool: show what a peer agent has been saying, from its transcript or its pane.

A peer is named by tmux session (any tmux target) or by its session-id UUID.
Its registry entry decides scope and supplies the transcript path; without an
entry only a pane capture is possible. Every outcome, success or refusal, is the
same 18-key object so a caller can branch on ``mode`` and ``error`` alone.

Provenance and freshness (0.32.1), so a caller can tell a quiet peer from a
stale or rotated thread:

==============================================  =====================================================
exit                                            ``resolved_session_id`` / ``session_id_source`` |
                                                ``transcript_mtime`` / ``transcript_age_seconds``
==============================================  =====================================================
ambiguous, unknown UUID, out of scope           null | null (nothing of another project leaks)
in scope, a bare tmux target (no entry)         null | null
in scope, with an entry, no transcript read     the entry's | null
a transcript read (success, missing, failure)   the entry's | the file's mtime (ISO 8601 UTC, ms)
                                                and whole seconds since it, stat'ed before the
                                                read; null when the file cannot be stat'ed
==============================================  =====================================================

Collaborators (the live registry view, the scope predicate and tmux access)
are parameters, so the decision procedure can be tested without a tmux server.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from oxtail_core.ids import is_uuid_shaped
from oxtail_core.model import SCHEMA_VERSION, RegistryEntry, on_host
from oxtail_core.routing import candidates
from oxtail_core.trace import NullTracer, Tracer, safe_emit
from oxtail_mcp.transcripts.files import clamp, read_transcript

Mode = Literal["auto", "transcript", "pane"]
InScope = Callable[[str, str], bool]

PANE_LINES_DEFAULT, PANE_LINES_MIN, PANE_LINES_MAX = 240, 20, 2000
PANE_CHARS_DEFAULT, PANE_CHARS_MIN, PANE_CHARS_MAX = 20_000, 500, 200_000
PANE_CAPTURE_FAILED = "pane capture failed"
READ_FAILED = "transcript read failed (rotated or unreadable?): "


class PaneCaptureError(Exception):
    """tmux refused a capture; the message is tmux's trimmed stderr (possibly empty)."""


class TmuxRunner(Protocol):
    """The slice of :class:`oxtail_fs.tmux.client.Tmux` this module drives."""

    def run(self, *args: str) -> Any: ...


class PaneReader(Protocol):
    """tmux access for targets without a registry entry, and for pane captures."""

    def resolve(self, name: str) -> tuple[str, str] | None:
        """``(session name, session path)`` for any tmux target, or None if tmux does not know it."""
        ...

    def pane_paths(self, session: str) -> list[str]:
        """Current directories of the session's panes; ``[]`` on failure."""
        ...

    def capture(self, session: str, lines: int) -> str:
        """The session's active pane text, ``lines`` rows of history up to the bottom; raises on failure."""
        ...


_TMUX_TARGET = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


def is_tmux_target(name: str) -> bool:
    """A name we are willing to hand tmux as ``-t``: printable, bounded, not an option.

    tmux receives it as one argv element (never through a shell), so this only
    refuses what no real session name looks like: control characters, a leading
    dash, huge strings.
    """
    return bool(_TMUX_TARGET.fullmatch(name)) and not name.startswith("-")


class TmuxPaneReader:
    """:class:`PaneReader` over a tmux client; argument vectors only, never a shell."""

    def __init__(self, tmux: TmuxRunner) -> None:
        self.tmux = tmux

    def resolve(self, name: str) -> tuple[str, str] | None:
        if not is_tmux_target(name):
            return None
        result = self.tmux.run("display-message", "-p", "-t", name, "#{session_name}|#{session_path}")
        if not result.ok:
            return None
        canonical, _, path = result.stdout.strip().partition("|")
        return (canonical, path) if canonical and path else None

    def pane_paths(self, session: str) -> list[str]:
        result = self.tmux.run("list-panes", "-t", session, "-F", "#{pane_current_path}")
        return [line for line in result.stdout.splitlines() if line] if result.ok else []

    def capture(self, session: str, lines: int) -> str:
        result = self.tmux.run("capture-pane", "-p", "-J", "-t", session, "-S", f"-{lines}", "-E", "-")
        if not result.ok:
            raise PaneCaptureError(result.stderr.strip() or (result.failure or ""))
        return str(result.stdout)


def clamp_pane_lines(value: float | None) -> int:
    """``pane_lines``: absent or non-finite → 240; otherwise floored into [20, 2000]."""
    return clamp(value, PANE_LINES_DEFAULT, PANE_LINES_MIN, PANE_LINES_MAX)


def clamp_pane_chars(value: float | None) -> int:
    """``pane_max_chars``: absent or non-finite → 20000; otherwise floored into [500, 200000]."""
    return clamp(value, PANE_CHARS_DEFAULT, PANE_CHARS_MIN, PANE_CHARS_MAX)


def cap_pane_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Keep the last ``max_chars`` code points behind a marker line: the bottom of a pane matters most."""
    if len(text) <= max_chars:
        return text, False
    return f"…[pane truncated to last {max_chars} chars]\n{text[-max_chars:]}", True


def response(
    *,
    session: str,
    resolved_root: str,
    inferred: bool,
    mode: str = "none",
    client_type: str | None = None,
    error: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The 18-key read_session object in wire order; unspecified fields take their defaults."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "session": session,
        "mode": mode,
        "client_type": client_type,
        "messages": None,
        "pane_text": None,
        "truncated": False,
        "count_truncated": False,
        "bytes_truncated": False,
        "total_messages": None,
        "total_messages_exact": False,
        "resolved_session_id": None,
        "session_id_source": None,
        "transcript_mtime": None,
        "transcript_age_seconds": None,
        "project_root": resolved_root,
        "inferred": inferred,
        "error": error,
    }
    unknown = set(fields) - set(out)
    if unknown:
        raise TypeError(f"not read_session fields: {sorted(unknown)}")
    out.update(fields)
    return out


def ambiguous_error(name: str, candidates: Sequence[str]) -> str:
    """Several agents share the tmux session ``name``; list their ids, or say none has one."""
    head = f"ambiguous-target: multiple agents share tmux session '{name}'; "
    if candidates:
        return head + "pass a client_session_id (UUID) instead. candidates: " + ", ".join(candidates)
    return head + (
        "all agents sharing it are unclaimed — have them run claim_session so they're addressable by UUID"
    )


def unknown_session_error(name: str) -> str:
    """A UUID that no live agent holds right now."""
    return (
        f"unknown-or-unclaimed-session: '{name}' is not a currently claimed session in this project. "
        "If it is a peer that restarted its MCP server, it must re-run claim_session; "
        "if it just rotated, retry shortly."
    )


def other_host_error(name: str, host: str) -> str:
    """Ours: the reference has one machine. ``host`` is the entry's validated host id (never its
    self-reported host name, which is free text)."""
    return (
        f"session '{name}' runs on another machine (host {host}): read_session reads this machine's"
        " transcripts and tmux panes only"
    )


def missing_transcript_error(path: str) -> str:
    """The registry names a transcript that is not on disk: say so, never answer an empty success."""
    return (
        f"transcript-not-found: no file at {path}; the agent may not have written it yet, or its host "
        'keeps transcripts elsewhere (CLAUDE_CONFIG_DIR, CODEX_HOME). Retry shortly, or use mode:"pane".'
    )


def transcript_freshness(path: str, now_s: float) -> dict[str, Any]:
    """``transcript_mtime`` (as JavaScript's ``toISOString``) and ``transcript_age_seconds`` (floored,
    never negative), both None when the file cannot be stat'ed: a gone file is itself a staleness tell."""
    try:
        mtime_ms = os.stat(path).st_mtime_ns / 1e6
    except (OSError, ValueError):
        return {"transcript_mtime": None, "transcript_age_seconds": None}
    whole_ms = int(mtime_ms // 1)
    stamp = datetime.fromtimestamp(whole_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "transcript_mtime": f"{stamp}.{whole_ms % 1000:03d}Z",
        "transcript_age_seconds": max(0, int((now_s * 1000 - mtime_ms) // 1000)),
    }


def read_session(
    name: str,
    *,
    entries: Sequence[RegistryEntry],
    resolved_root: str,
    inferred: bool,
    in_scope: InScope,
    panes: PaneReader,
    mode: Mode = "auto",
    limit: float | None = None,
    max_bytes: float | None = None,
    include_timestamps: bool = False,
    tail_scan: bool = False,
    pane_lines: float | None = None,
    pane_max_chars: float | None = None,
    tracer: Tracer | None = None,
    now: Callable[[], float] = time.time,
    here: str | None = None,
) -> dict[str, Any]:
    """Resolve ``name`` and read the peer (discovery §8.1-8.2, §8.8).

    ``here`` is this machine's host id (None: one machine). A peer on another machine is an
    error that says so: its transcript and pane are on that machine, and a path or tmux session
    name of its may well name something else here.

    ``entries`` is the live, collapsed registry view. A UUID-shaped name (either
    case; ours, the reference was lowercase-only) is looked up by session id
    and never falls through to tmux. A registered transcript that is not on
    disk is an error (0.15.0 and 0.32.1 answer an empty success), with no pane
    fallback; a reader that raises (rotated mid-read, unreadable) is reported as
    ``transcript read failed (rotated or unreadable?): <reason>``. ``now`` (epoch
    seconds) ages the transcript.
    """

    def fail(
        error: str, session: str = name, client_type: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        return response(
            session=session,
            resolved_root=resolved_root,
            inferred=inferred,
            client_type=client_type,
            error=error,
            **fields,
        )

    entry: RegistryEntry | None = None
    matches = candidates(entries, name)
    if is_uuid_shaped(name):
        if len(matches) != 1:
            return fail(unknown_session_error(name))
        entry = matches[0]
        canonical = entry.tmux_session
        scoped = in_scope(entry.client.cwd, resolved_root)
    else:
        if len(matches) > 1:
            return fail(ambiguous_error(name, [e.client.session_id for e in matches if e.client.session_id]))
        if matches:
            entry = matches[0]
            canonical = entry.tmux_session
            scoped = in_scope(entry.client.cwd, resolved_root)
        else:
            target = panes.resolve(name)
            canonical = target[0] if target else None
            scoped = target is not None and (
                in_scope(target[1], resolved_root)
                or any(in_scope(path, resolved_root) for path in panes.pane_paths(target[0]))
            )
    if entry is not None and not on_host(entry, here):
        return fail(other_host_error(name, entry.host_id or ""), client_type=entry.client.type)
    if not scoped:
        return fail(f"session '{name}' not in project scope")

    client_type = entry.client.type if entry else None
    transcript_path = entry.client.transcript_path if entry else None
    provenance: dict[str, Any] = {
        "resolved_session_id": entry.client.session_id if entry else None,
        "session_id_source": entry.client.session_id_source if entry else None,
    }
    if not canonical and not transcript_path:
        return fail(
            f"session '{name}' is in scope but has no transcript and no tmux session to read",
            client_type=client_type,
            **provenance,
        )

    if mode == "transcript" or (mode == "auto" and transcript_path):
        if not transcript_path:
            return fail(
                "no registry entry with transcript path; agent may not be oxtail-aware",
                session=canonical or name,
                client_type=client_type,
                **provenance,
            )
        provenance |= transcript_freshness(transcript_path, now())
        try:
            result = read_transcript(
                transcript_path,
                client_type,
                limit=limit,
                max_bytes=max_bytes,
                include_timestamps=include_timestamps,
                tail_scan=tail_scan,
            )
        except Exception as exc:  # noqa: BLE001 - a rotated or unreadable file is an answer, not a crash
            return fail(
                READ_FAILED + (str(exc).strip() or type(exc).__name__),
                session=canonical or name,
                client_type=client_type,
                **provenance,
            )
        if not result.found:
            return fail(
                missing_transcript_error(transcript_path),
                session=canonical or name,
                client_type=client_type,
                **provenance,
            )
        if result.skipped_lines:
            safe_emit(
                tracer or NullTracer(),
                "transcript_lines_skipped",
                path=transcript_path,
                count=result.skipped_lines,
            )
        return response(
            session=canonical or name,
            resolved_root=resolved_root,
            inferred=inferred,
            mode="transcript",
            client_type=client_type,
            messages=[m.as_dict() for m in result.messages],
            truncated=result.truncated,
            count_truncated=result.count_truncated,
            bytes_truncated=result.bytes_truncated,
            total_messages=result.total_messages,
            total_messages_exact=result.total_messages_exact,
            **provenance,
        )

    if not canonical:
        return fail(
            f"session '{name}' has no tmux pane to capture (transcript-only peer)",
            client_type=client_type,
            **provenance,
        )
    try:
        text = panes.capture(canonical, clamp_pane_lines(pane_lines))
    except Exception as exc:  # noqa: BLE001 - any capture failure is reported in the response
        return fail(
            str(exc).strip() or PANE_CAPTURE_FAILED, session=canonical, client_type=client_type, **provenance
        )
    pane_text, cut = cap_pane_text(text, clamp_pane_chars(pane_max_chars))
    return response(
        session=canonical,
        resolved_root=resolved_root,
        inferred=inferred,
        mode="pane",
        client_type=client_type,
        pane_text=pane_text,
        truncated=cut,
        **provenance,
    )
