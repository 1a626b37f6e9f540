"""``oxtail-mcp message <target> <text>``: the operator's message to one agent, from a plain shell.

The rules (no sender, the framing, the re-resolved target, the wake and its throttle) are
:mod:`oxtail_core.operator`'s; this module finds the state directory, names the target the way
``status`` shows it, and prints one line (selfheal.md §8.3):

| outcome | line | exit |
|---|---|---|
| delivered | ``✓ operator → <label>  (<id>) · wake:<status>[ · unclaimed (pid-box, no reply handle)]`` | 0 |
| refused (dead, gone, too long) | ``✗ <label>: <reason>`` | 1 |
| no text | ``error: empty message (give text or --nudge)`` | 1 |
| no match / several | ``error: no agent matches '<t>' in scope …`` / ``error: ambiguous target …`` | 1 |
| no state directory | ``error: no oxtail state in <dir> yet …`` | 1 |

Every name and reason printed passes through :func:`~oxtail_mcp.commands.terminal.inert`: a
session id or tmux name is a peer's own text.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO

from oxtail_core import Context, SystemClock
from oxtail_core.effects import run
from oxtail_core.errors import StoreError
from oxtail_core.operator import (
    NUDGE_BODY,
    LookupFailed,
    OperatorRefused,
    OperatorSent,
    Target,
    lookup,
    send,
    throttle_from_env,
)
from oxtail_core.settings import Settings
from oxtail_fs.host.project import LocalHost
from oxtail_fs.tmux.client import Tmux
from oxtail_fs.tmux.waker import TmuxWaker
from oxtail_mcp import storage
from oxtail_mcp.commands.terminal import inert
from oxtail_mcp.home import state_home

EXIT_FAILED = 1


def operator_context(env: Mapping[str, str]) -> Context | str:
    """A context that can wake (the ambient tmux server), or why there is none: no state directory
    yet (a person's command never creates one) or one that cannot be opened."""
    home = state_home(env)
    try:
        choice = storage.choose(env)
        if choice.kind == "fs" and not home.is_dir():
            return f"no oxtail state in {home} yet: no agent has run with this OXTAIL_HOME"
        store, _ = storage.open_chosen(choice, env)
    except StoreError as exc:
        return str(exc)
    return Context(store, TmuxWaker(Tmux()), SystemClock(), LocalHost(), settings=Settings.from_env(env))


def outcome_line(result: OperatorSent | OperatorRefused, label: str) -> str:
    """The one line a send prints (already inert)."""
    if isinstance(result, OperatorRefused):
        return inert(f"✗ {label}: {result.reason}")
    line = f"✓ operator → {label}  ({result.message_id}) · wake:{result.wake}"
    if result.unclaimed:
        line += " · unclaimed (pid-box, no reply handle)"
    return inert(line)


def deliver(
    ctx: Context, target: Target, body: str, *, wake: bool, env: Mapping[str, str]
) -> OperatorSent | OperatorRefused:
    """One operator send, driven to completion (blocking: the Codex keystroke gap is a real sleep)."""
    try:
        flow = send(ctx, target, body, wake=wake, throttle_ms=throttle_from_env(env))
        return run(flow, ctx.store, ctx.clock)
    except StoreError as exc:
        return OperatorRefused(target, f"nothing sent: {exc}")


def lookup_error(failed: LookupFailed) -> str:
    """Why a name designates no single agent (already inert)."""
    shown = inert(failed.name)
    if failed.matches:
        return f"error: ambiguous target '{shown}' — matches {failed.matches} agents; use its session id"
    return f"error: no agent matches '{shown}' in scope — see 'oxtail-mcp status' for ids"


def main(
    root: str,
    name: str,
    text: str,
    *,
    nudge: bool = False,
    wake: bool = True,
    env: Mapping[str, str] = os.environ,
    out: IO[str] | None = None,
) -> int:
    """Send ``text`` (or the nudge) to the agent ``name`` designates in ``root``'s project."""
    stream = out or sys.stdout
    body = NUDGE_BODY if nudge and not text.strip() else text
    if not body.strip():
        print("error: empty message (give text or --nudge)", file=stream)
        return EXIT_FAILED
    ctx = operator_context(env)
    if isinstance(ctx, str):
        print(inert(f"error: {ctx}"), file=stream)
        return EXIT_FAILED
    try:
        target = lookup(ctx, root, name)
    except StoreError as exc:
        print(inert(f"error: cannot read the registry: {exc}"), file=stream)
        return EXIT_FAILED
    if isinstance(target, LookupFailed):
        print(lookup_error(target), file=stream)
        return EXIT_FAILED
    result = deliver(ctx, target, body, wake=wake, env=env)
    print(outcome_line(result, target.label), file=stream)
    return 0 if isinstance(result, OperatorSent) else EXIT_FAILED
