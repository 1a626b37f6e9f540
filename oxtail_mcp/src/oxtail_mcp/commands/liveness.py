"""The facts ``status`` and the cockpit judge an agent's liveness on, gathered for the core's table.

The decision is :func:`oxtail_core.liveness.judge` (selfheal.md §5.2); this
module only reads the world for it: the process's start check, the
transcript's age and open tool call (:mod:`oxtail_mcp.transcripts.activity`),
and, on a terminal only, the panes (:func:`pane_pass`). The transcript is
the one the identity names (:func:`~oxtail_mcp.transcripts.files.transcript_path_for`,
from the process's real working directory), never a path an entry claims.

| where | panes read | so ``pane_fresh`` |
|---|---|---|
| ``status`` on a terminal, the cockpit | verified panes, at most 16 | can appear |
| ``status --json`` piped, ``--no-activity`` | none (no fork) | never appears (S42) |
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from oxtail_core.context import Context
from oxtail_core.liveness import (
    LivenessFacts,
    LivenessSettings,
    PaneActivity,
    StartCheck,
    capture_fleet,
    judge,
    start_check,
)
from oxtail_core.model import RegistryEntry
from oxtail_core.routing import working_dir
from oxtail_mcp.home import user_home
from oxtail_mcp.transcripts.activity import transcript_activity
from oxtail_mcp.transcripts.files import transcript_path_for

PanePass = Callable[[Context, list[RegistryEntry]], Mapping[int, PaneActivity]]
"""Reads the panes of some live entries: ``{server_pid: what its screen showed}``."""


@attrs.frozen
class Liveness:
    """One agent's verdict and the facts behind it, as ``status --json`` reports them."""

    liveness: str
    liveness_reason: str
    proc_sig: StartCheck
    transcript_age_s: float | None
    tool_running: bool
    pane_tail: str | None


def pane_pass(ctx: Context, entries: list[RegistryEntry]) -> Mapping[int, PaneActivity]:
    """Read the panes of ``entries`` (verified like a wake target; see the core's ``capture_fleet``).

    tmux is imported here: a piped ``status`` reads no pane and need not load it."""
    from oxtail_fs.tmux.client import Tmux
    from oxtail_fs.tmux.waker import TmuxWaker

    return capture_fleet(entries, ctx.store.registry_entries, TmuxWaker(Tmux()), ctx.host, None)


def liveness_of(
    ctx: Context,
    entry: RegistryEntry,
    panes: Mapping[int, PaneActivity],
    env: Mapping[str, str] = os.environ,
) -> Liveness:
    """Judge ``entry`` on what can be read of it now."""
    alive, start = start_check(ctx.host, entry)
    now_ms = ctx.clock.now_ms()
    path = None
    if alive and entry.client.session_id:
        home = Path(env["HOME"]) if env.get("HOME") else user_home(env)
        cwd = working_dir(ctx, entry)
        path = transcript_path_for(entry.client.type, home, cwd, entry.client.session_id, now_ms, env=env)
    transcript = transcript_activity(path, entry.client.type, now_ms / 1000)
    running = transcript.tool is not None and transcript.tool.running
    pane = panes.get(entry.server_pid)
    facts = LivenessFacts(alive, start, transcript.age_s, pane, running)
    verdict = judge(facts, LivenessSettings.from_env(env))
    return Liveness(
        liveness=verdict.state.value,
        liveness_reason=verdict.reason.value,
        proc_sig=start,
        transcript_age_s=transcript.age_s,
        tool_running=running,
        pane_tail=pane.tail if pane is not None else None,
    )
