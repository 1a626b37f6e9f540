"""Working out which agent session this server belongs to, without the agent's help.

Hosts do not reliably hand their MCP children the session id (Claude Code
strips it structurally, Codex 0.171.0 always does), so three strategies run in
order: ``env`` reads the id when the host did pass it, ``hook-drop`` adopts the
drop the SessionStart hook left for the client above us
(:mod:`oxtail_mcp.identity.hookdrop`), ``birth-time`` picks the one transcript
that appeared within five minutes after this server started. The diagnosis records
why each strategy abstained so ``get_my_session`` can tell the agent what to do
next. Identity is monotonic: once an id is held, nothing automatic replaces it.

Everything here is a function of its arguments (environment mapping, home
directory, clock reading): callers pass them, so tests never touch the real ones.
Where a caller passes no ``env``, the process environment locates the transcripts
(``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``), as it does for the clients themselves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import attrs

from oxtail_core.ids import same_session_id
from oxtail_core.model import ClientInfo, SessionIdSource
from oxtail_mcp.home import state_home
from oxtail_mcp.identity import hookdrop
from oxtail_mcp.identity.client import claude_env_session_id, codex_env_session_id
from oxtail_mcp.transcripts.files import (
    CODEX_FIRST_LINE_MAX,
    codex_first_line,
    codex_sessions_dir,
    encode_cwd,
    is_transcript_session_id,
    recent_date_dirs,
    sorted_names,
    transcript_dirs,
    transcript_path_for,
)

BIRTH_WINDOW_MS = 300_000
UUID_IN_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

REASON_CLAUDE_ENV = (
    "CLAUDE_CODE_SESSION_ID not in MCP env. Claude Code strips it from MCP children (verified across "
    "the full process tree); this is structural, not a bug. The var IS available inside Bash tool subshells."
)
REASON_CODEX_ENV = "CODEX_THREAD_ID is not in MCP env."
REASON_UNKNOWN_ENV = "client type unknown — no env var configured for this client."
REASON_UNKNOWN_BIRTH = "client type unknown — no transcript directory to scan."
REASON_NO_CLAUDE_FILES = (
    "no transcript files in ~/.claude/projects/<encoded-cwd> for this cwd; "
    "agent may not have started a transcript yet."
)
REASON_NO_CODEX_FILES = (
    "no transcript files in ~/.codex/sessions/<recent> for this cwd; "
    "agent may not have started a transcript yet."
)
NEXT_STEP_INSTRUCTION = (
    "Read your own session id from a Bash tool subshell, then call register_my_session({ session_id })."
)

Confidence = Literal["high", "medium"]
STRATEGIES = ("env", "hook-drop", "birth-time")


def reason_none_in_window(count: int) -> str:
    """Abstention text when transcripts exist but none was born in our window (retrying may help)."""
    return (
        f"{count} transcript(s) in dir but none post-date this MCP server's started_at; "
        "transcript hasn't been created yet (retries scheduled)."
    )


def reason_ambiguous(count: int) -> str:
    """Abstention text when several transcripts were born in our window (retrying cannot help)."""
    return (
        f"{count} post-start transcripts in 5min window — ambiguous (multiple agents in this project). "
        "Cannot safely guess which is ours; call register_my_session."
    )


@dataclass(frozen=True)
class Hit:
    """A strategy found an id."""

    session_id: str
    source: SessionIdSource
    confidence: Confidence

    def as_dict(self) -> dict[str, Any]:
        """``{session_id, source, confidence}`` in wire order."""
        return {"session_id": self.session_id, "source": self.source, "confidence": self.confidence}


@dataclass(frozen=True)
class Abstain:
    """A strategy declined; ``structural`` means a retry cannot change the answer."""

    reason: str
    structural: bool = False

    def as_dict(self) -> dict[str, Any]:
        """``{abstain, structural?, reason}``: ``structural`` is present only when true."""
        out: dict[str, Any] = {"abstain": True}
        if self.structural:
            out["structural"] = True
        out["reason"] = self.reason
        return out


Outcome = Hit | Abstain


@dataclass(frozen=True)
class Diagnosis:
    """Every strategy's outcome, the winner (first hit) and what the agent should do if none won."""

    per_strategy: dict[str, Outcome] = field(default_factory=dict)
    winning: Hit | None = None
    winning_strategy: str | None = None
    client_type: str = "unknown"

    def next_step(self) -> dict[str, str] | None:
        """The self-registration hint, or None once an id is known or for clients we cannot help."""
        if self.winning is not None or not self.per_strategy:
            return None
        variable = "CODEX_THREAD_ID" if self.client_type == "codex" else "CLAUDE_CODE_SESSION_ID"
        return {
            "tool": "register_my_session",
            "instruction": NEXT_STEP_INSTRUCTION,
            "bash_command": f"echo ${variable}",
        }

    def winning_dict(self) -> dict[str, Any] | None:
        """``{session_id, source, confidence, strategy}`` or None."""
        if self.winning is None:
            return None
        return {**self.winning.as_dict(), "strategy": self.winning_strategy}

    def as_dict(self) -> dict[str, Any]:
        """``{per_strategy, winning, next_step}`` exactly as get_my_session reports it."""
        return {
            "per_strategy": {name: outcome.as_dict() for name, outcome in self.per_strategy.items()},
            "winning": self.winning_dict(),
            "next_step": self.next_step(),
        }

    def trace_fields(self, trigger: str) -> dict[str, Any]:
        """Fields of the ``detect_run`` trace event for this diagnosis."""
        return {
            "trigger": trigger,
            "winning_strategy": self.winning_strategy,
            "session_id": self.winning.session_id if self.winning else None,
            "per_strategy": {name: outcome.as_dict() for name, outcome in self.per_strategy.items()},
            "next_step": self.next_step(),
        }

    def all_structural(self) -> bool:
        """True when at least one strategy ran and every one abstained structurally: retries are futile."""
        return bool(self.per_strategy) and all(
            isinstance(outcome, Abstain) and outcome.structural for outcome in self.per_strategy.values()
        )


def known_id_diagnosis(session_id: str, source: SessionIdSource | None) -> Diagnosis:
    """The diagnosis get_my_session reports when an id is already held: no strategy re-run.

    A ``hook-drop`` id reads ``medium`` here even when its adoption was confirmed (selfheal §3.2).
    """
    effective: SessionIdSource = source or "self-register"
    confidence: Confidence = "medium" if effective == "hook-drop" else "high"
    return Diagnosis(winning=Hit(session_id, effective, confidence), winning_strategy=effective)


# --------------------------------------------------------------------------- strategies


def env_strategy(client_type: str, env: Mapping[str, str]) -> Outcome:
    """The id the host put in our environment, if it did (discovery §7.3)."""
    if client_type == "claude-code":
        session_id = claude_env_session_id(env)
        if session_id:
            return Hit(session_id, "env", "high")
        return Abstain(REASON_CLAUDE_ENV, structural=True)
    if client_type == "codex":
        session_id = codex_env_session_id(env)
        if session_id:
            return Hit(session_id, "env", "high")
        return Abstain(REASON_CODEX_ENV)
    return Abstain(REASON_UNKNOWN_ENV)


def hook_drop_strategy(
    client_type: str,
    cwd: str,
    started_at: int,
    state_dir: Path,
    now_ms: int,
    *,
    ancestors: Callable[[], Sequence[hookdrop.Ancestor]] = hookdrop.live_ancestors,
) -> Outcome:
    """The session whose SessionStart drop names our cwd and our client process (selfheal §3.2)."""
    adoption = hookdrop.adopt(
        client_type, cwd, started_at=started_at, state_dir=state_dir, now_ms=now_ms, ancestors=ancestors
    )
    if adoption.session_id is not None and adoption.confidence in ("high", "medium"):
        confidence: Confidence = "high" if adoption.confidence == "high" else "medium"
        return Hit(adoption.session_id, "hook-drop", confidence)
    return Abstain(adoption.reason or hookdrop.REASON_NO_DROP, adoption.structural)


def birth_ms(path: Path) -> int:
    """When ``path`` was created (ms): OS birth time if reported, else mtime; 0 if unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    birth = getattr(st, "st_birthtime", 0) or 0
    return int((birth if birth > 0 else st.st_mtime) * 1000)


def claude_candidates(home: Path, cwd: str, env: Mapping[str, str] = os.environ) -> list[tuple[str, int]]:
    """``(session id, birth ms)`` for every ``*.jsonl`` in Claude Code's directory for ``cwd``.

    A name that could not be a session id (:func:`is_transcript_session_id`) is not a candidate.
    """
    directory = transcript_dirs(home, env)[0] / encode_cwd(cwd)
    out = []
    for name in sorted_names(directory):
        session_id = name[: -len(".jsonl")]
        if name.endswith(".jsonl") and is_transcript_session_id(session_id):
            out.append((session_id, birth_ms(directory / name)))
    return out


@attrs.frozen
class CodexScan:
    """What the Codex birth-time scan saw: rollouts for our cwd, and rollouts it could not read.

    ``unreadable`` counts UUID-named rollouts whose first line was not a JSON
    object within :data:`CODEX_FIRST_LINE_MAX` bytes, so the abstain reason never
    says "no transcript files" about files it merely failed to read.
    """

    candidates: list[tuple[str, int]]
    unreadable: int = 0


def codex_scan(home: Path, cwd: str, now_ms: int, env: Mapping[str, str] = os.environ) -> CodexScan:
    """Recent Codex rollouts whose first line (``session_meta``) names ``cwd`` as ``payload.cwd``.

    The id is the first lowercase UUID in the file name. The whole first line
    is read (Codex 0.171.0 writes ~27 KB there; the reference read 4096 bytes
    and so never matched a current rollout), up to 256 KiB.
    """
    base = codex_sessions_dir(home, env)
    if not base.is_dir():
        return CodexScan([])
    out: list[tuple[str, int]] = []
    unreadable = 0
    for rel in recent_date_dirs(now_ms):
        directory = base / rel
        for name in sorted_names(directory):
            match = UUID_IN_NAME.search(name)
            if not name.endswith(".jsonl") or match is None:
                continue
            path = directory / name
            meta = codex_first_line(path)
            if meta is None:
                unreadable += 1
                continue
            payload = meta.get("payload")
            if isinstance(payload, dict) and payload.get("cwd") == cwd:
                out.append((match.group(), birth_ms(path)))
    return CodexScan(out, unreadable)


def codex_candidates(
    home: Path, cwd: str, now_ms: int, env: Mapping[str, str] = os.environ
) -> list[tuple[str, int]]:
    """``(session id, birth ms)`` for recent Codex rollouts whose first line names ``cwd``."""
    return codex_scan(home, cwd, now_ms, env).candidates


def _where(default: str, actual: Path, home: Path) -> str:
    """``default`` (the reference's wording) unless an override moved the directory: then the real path."""
    return default if actual == home / default.removeprefix("~/") else str(actual)


def no_claude_files_reason(home: Path, env: Mapping[str, str]) -> str:
    """REASON_NO_CLAUDE_FILES, naming ``$CLAUDE_CONFIG_DIR/projects`` when that moved it."""
    projects = _where("~/.claude/projects", transcript_dirs(home, env)[0], home)
    return REASON_NO_CLAUDE_FILES.replace("~/.claude/projects", projects)


def no_codex_files_reason(home: Path, env: Mapping[str, str], unreadable: int) -> str:
    """REASON_NO_CODEX_FILES, naming ``$CODEX_HOME/sessions`` when moved, and counting unreadable rollouts."""
    sessions = _where("~/.codex/sessions", transcript_dirs(home, env)[1], home)
    reason = REASON_NO_CODEX_FILES.replace("~/.codex/sessions", sessions)
    if unreadable:
        reason += (
            f" {unreadable} rollout(s) there had a first line that is not JSON or is over "
            f"{CODEX_FIRST_LINE_MAX} bytes, and were skipped."
        )
    return reason


def birth_time_strategy(
    client_type: str,
    cwd: str,
    started_at: int,
    home: Path,
    now_ms: int,
    *,
    env: Mapping[str, str] = os.environ,
) -> Outcome:
    """The single transcript born within five minutes after ``started_at`` (epoch seconds), if exactly one.

    ``started_at`` is whole seconds, so a file created earlier in the same
    second as startup counts as post-start, as in 0.15.0. ``env`` locates the
    transcripts (``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``).
    """
    if client_type == "claude-code":
        candidates = claude_candidates(home, cwd, env)
        empty = no_claude_files_reason(home, env)
    elif client_type == "codex":
        scan = codex_scan(home, cwd, now_ms, env)
        candidates = scan.candidates
        empty = no_codex_files_reason(home, env, scan.unreadable)
    else:
        return Abstain(REASON_UNKNOWN_BIRTH)
    if not candidates:
        return Abstain(empty)
    start_ms = started_at * 1000
    in_window = [sid for sid, born in candidates if 0 < born - start_ms <= BIRTH_WINDOW_MS]
    if len(in_window) == 1:
        return Hit(in_window[0], "birth-time", "medium")
    if not in_window:
        return Abstain(reason_none_in_window(len(candidates)))
    return Abstain(reason_ambiguous(len(in_window)), structural=True)


def diagnose(
    client_type: str,
    cwd: str,
    *,
    started_at: int,
    env: Mapping[str, str],
    home: Path,
    now_ms: int,
    state_dir: Path | None = None,
    ancestors: Callable[[], Sequence[hookdrop.Ancestor]] = hookdrop.live_ancestors,
) -> Diagnosis:
    """Run every strategy (always all, for the diagnosis) and pick the first hit in :data:`STRATEGIES` order.

    ``state_dir`` (default: ``OXTAIL_HOME`` of ``env``, else ``<home>/.oxtail``) holds the SessionStart drops;
    ``ancestors`` is our parent chain, read only when a drop names our cwd.
    """
    drops = state_dir if state_dir is not None else state_home({**env, "HOME": str(home)})
    outcomes: dict[str, Outcome] = {
        "env": env_strategy(client_type, env),
        "hook-drop": hook_drop_strategy(client_type, cwd, started_at, drops, now_ms, ancestors=ancestors),
        "birth-time": birth_time_strategy(client_type, cwd, started_at, home, now_ms, env=env),
    }
    for name in STRATEGIES:
        outcome = outcomes[name]
        if isinstance(outcome, Hit):
            return Diagnosis(outcomes, outcome, name, client_type)
    return Diagnosis(outcomes, None, None, client_type)


def enrich(
    client: ClientInfo, started_at: int, env: Mapping[str, str], home: Path, now_ms: int
) -> tuple[ClientInfo, Diagnosis | None]:
    """Fill in a missing id by detection; a client that already has one, or is unknown, is left alone.

    Returns the (possibly updated) client and the diagnosis, None when detection was skipped.
    """
    if client.session_id or client.type == "unknown":
        return client, None
    diagnosis = diagnose(client.type, client.cwd, started_at=started_at, env=env, home=home, now_ms=now_ms)
    if diagnosis.winning is None:
        return client, diagnosis
    won = diagnosis.winning
    return (
        attrs.evolve(
            client,
            session_id=won.session_id,
            session_id_source=won.source,
            transcript_path=transcript_path_for(
                client.type, home, client.cwd, won.session_id, now_ms, env=env
            ),
        ),
        diagnosis,
    )


@dataclass(frozen=True)
class Merge:
    """The outcome of merging handshake-derived info into the live client.

    ``preserved`` holds the ``detect_preserved_existing_session_id`` trace
    fields (minus ``trigger``) when the handshake saw a different id than the
    one already held.
    """

    client: ClientInfo
    changed: bool
    preserved: dict[str, Any] | None = None


def merge_handshake(
    live: ClientInfo, fresh: ClientInfo, home: Path, now_ms: int, *, env: Mapping[str, str] = os.environ
) -> Merge:
    """Merge ``fresh`` (from the handshake, already enriched) into ``live`` under the monotonic rule.

    Without a live id the fresh info is taken wholesale. With one, the id and
    its source stay; type and cwd may be refined and the transcript path is
    recomputed for them (keeping the live path when the recomputation finds nothing),
    in the locations ``env`` names (``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``).
    """
    if not live.session_id:
        return Merge(fresh, fresh != live)
    client_type = live.type if fresh.type == "unknown" else fresh.type
    cwd = fresh.cwd or live.cwd
    recomputed = transcript_path_for(client_type, home, cwd, live.session_id, now_ms, env=env)
    merged = attrs.evolve(live, type=client_type, cwd=cwd, transcript_path=recomputed or live.transcript_path)
    preserved = None
    if fresh.session_id and not same_session_id(fresh.session_id, live.session_id):
        preserved = {
            "existing_session_id": live.session_id,
            "existing_source": live.session_id_source,
            "detected_session_id": fresh.session_id,
            "detected_source": fresh.session_id_source,
        }
    return Merge(merged, merged != live, preserved)
