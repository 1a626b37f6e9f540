"""The hooks, through the installers ``install-hook`` and ``install-hook --codex`` run: setup adds no rule.

Each installer is called twice with the same arguments: first as a dry run into buffers (that is
the plan: its exit status says whether it can go through, its diff whether anything would change,
and a dry run is what ``setup --dry-run`` shows), then for real, printing as it always does. A hook
file that needs no change is not touched at all, so a second setup writes nothing.

| client | file | install | uninstall |
|---|---|---|---|
| Claude Code | ``~/.claude/settings.json`` | :func:`installer.install` | :func:`installer.uninstall` |
| Codex CLI | ``$CODEX_HOME/hooks.json`` | :func:`codex.install` (*) | :func:`codex.uninstall` |

(*) with the mid-turn hooks if the ``codex`` on PATH carries their context, as ``install-hook --codex``.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import attrs

from oxtail_mcp.commands.setup.errors import SetupError
from oxtail_mcp.hooks import codex, installer

Runner = Callable[[bool, IO[str], IO[str]], int]
"""(dry_run, out, err) → exit status: one installer call with everything else fixed."""


@attrs.frozen
class HookPlan:
    """One installer's dry run: whether it would change ``path``, and what it printed saying so."""

    client: str
    path: Path
    pending: bool
    preview: str
    notes: str
    run: Runner


def _plan(client: str, path: Path, run: Runner) -> HookPlan:
    out, err = io.StringIO(), io.StringIO()
    if run(True, out, err) != 0:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        raise SetupError(lines[0] if lines else f"the hook installer refused {path}")
    preview = out.getvalue()
    return HookPlan(client, path, preview.startswith("--- "), preview, err.getvalue(), run)


def claude(env: Mapping[str, str], exe: str, *, uninstall: bool, now: datetime.datetime) -> HookPlan:
    path = installer.settings_path(env)

    def run(dry_run: bool, out: IO[str], err: IO[str]) -> int:
        if uninstall:
            return installer.uninstall(path, dry_run=dry_run, out=out, err=err, now=now)
        return installer.install(
            path,
            lambda hook_id: installer.hook_command(exe, hook_id),
            dry_run=dry_run,
            out=out,
            err=err,
            now=now,
        )

    return _plan("Claude Code", path, run)


def codex_cli(env: Mapping[str, str], exe: str, *, uninstall: bool, now: datetime.datetime) -> HookPlan:
    path = codex.hooks_path(env)
    mid_turn = False if uninstall else codex.carries_mid_turn_context(codex.codex_version(env))

    def run(dry_run: bool, out: IO[str], err: IO[str]) -> int:
        if uninstall:
            return codex.uninstall(path, dry_run=dry_run, out=out, err=err, now=now)
        return codex.install(
            path,
            lambda hook_id: installer.hook_command(exe, hook_id),
            mid_turn=mid_turn,
            dry_run=dry_run,
            out=out,
            err=err,
            now=now,
        )

    return _plan("Codex CLI", path, run)
