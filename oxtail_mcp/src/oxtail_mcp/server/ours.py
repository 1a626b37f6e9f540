"""Handlers of our own tools (issue 12: file reservations); their schemas are in ``schemas.OUR_TOOLS``.

Thin, like the reference tools' handlers: the rules are
:mod:`oxtail_core.reservations`. What only a server can know is here: the
project (the git root of this session's working directory, canonical) and
how a caller's path becomes a pattern relative to it.

=======================================  ============================================
argument item                            becomes
=======================================  ============================================
``src/*.py``, ``./src/a.py``             itself (a leading ``./`` dropped)
``/abs/project/src/a.py`` (under root)   ``src/a.py``
``/elsewhere/x``, ``/src/a.py``          refused: absolute, outside the project root
``../x``, ``a/../../x``, malformed       refused (:class:`~oxtail_core.wildmatch.PatternError`)
=======================================  ============================================

A refusal is the MCP validation error of every tool (``MCP error -32602 ...``),
one issue per bad item, ``path: ["paths", index]``; nothing is reserved.
A reserve that collides tells each holder once (a message from this session,
:func:`oxtail_core.reserving.notify_holders`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from oxtail_core import reservations, reserving
from oxtail_core.effects import call_async
from oxtail_core.errors import ErrorCode
from oxtail_core.wildmatch import PatternError, compile_pattern
from oxtail_fs.host.project import is_within, project_of, realpath_or_self
from oxtail_mcp.server.schemas import InvalidArguments

if TYPE_CHECKING:
    from oxtail_mcp.server.agent import Agent
    from oxtail_mcp.server.tools import Handler, Outcome


def to_pattern(item: str, root: str) -> str:
    """The pattern ``item`` stands for, relative to ``root``; PatternError (a clear message) if none."""
    text = item
    if text.startswith("/") and not is_within(text, root):
        text = realpath_or_self(text)  # an existing file reached through a symlinked prefix
    if text.startswith("/"):
        if text == root or not is_within(text, root):
            raise PatternError(
                f"{item!r}: absolute and outside the project root {root}; "
                "write paths relative to it (src/a.py)"
            )
        text = text[len(root.rstrip("/")) + 1 :]
    while text.startswith("./"):
        text = text[2:]
    compile_pattern(text)
    return text


def patterns_of(tool: str, arg: str, items: list[str], root: str) -> list[str]:
    """Every item as a pattern, or InvalidArguments naming each bad one (all or nothing)."""
    out: list[str] = []
    issues: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            out.append(to_pattern(item, root))
        except PatternError as exc:
            issues.append({"code": "custom", "path": [arg, index], "message": str(exc)})
    if issues:
        raise InvalidArguments(tool, issues)
    return out


NOTICES = reserving.Notices()
"""This server's memory of the holders it already told about a collision (one agent per process)."""


def _no_session() -> dict[str, Any]:
    return {
        "ok": False,
        "error": ErrorCode.NO_SESSION_ID.value,
        "message": "reservations belong to a session: call claim_session first",
    }


def _reserve(agent: Agent, args: dict[str, Any]) -> dict[str, Any]:
    root = project_of(agent.me.client.cwd)
    patterns = patterns_of("reserve_paths", "paths", args["paths"], root)
    if not agent.me.session_id:
        return _no_session()
    result = reserving.reserve(
        agent.ctx,
        agent.me,
        root,
        patterns,
        exclusive=args.get("exclusive", True) is not False,
        ttl_s=int(args.get("ttl_s", reservations.TTL_DEFAULT_S)),
        reason=args.get("reason"),
        grace_ms=reservations.grace_from_env(os.environ),
    )
    reserving.notify_holders(agent.ctx, agent.me, result, NOTICES)
    return result.view()


def _release(agent: Agent, args: dict[str, Any]) -> dict[str, Any]:
    root = project_of(agent.me.client.cwd)
    given = args.get("paths")
    patterns = None if given is None else patterns_of("release_paths", "paths", given, root)
    if not agent.me.session_id:
        return _no_session()
    released = reserving.release(
        agent.ctx, agent.me, root, patterns, grace_ms=reservations.grace_from_env(os.environ)
    )
    return {"released": released}


def _list(agent: Agent, args: dict[str, Any]) -> dict[str, Any]:
    root = project_of(agent.me.client.cwd)
    records = reserving.current(agent.ctx, root, grace_ms=reservations.grace_from_env(os.environ))
    if "path" in args:
        try:
            probe = to_pattern(args["path"], root)
        except PatternError as exc:
            issue = {"code": "custom", "path": ["path"], "message": str(exc)}
            raise InvalidArguments("list_reservations", [issue]) from exc
        records = reservations.covering(records, probe)
    return {"project_root": root, "reservations": [r.view() for r in records]}


def _handler(fn: Callable[[Agent, dict[str, Any]], dict[str, Any]]) -> Handler:
    async def handler(agent: Agent, args: dict[str, Any]) -> Outcome:
        from oxtail_mcp.server.tools import Outcome  # tools imports this module for HANDLERS

        return Outcome(await call_async(fn, agent, args))

    handler.__name__ = fn.__name__.lstrip("_")
    return handler


HANDLERS: dict[str, Handler] = {
    "reserve_paths": _handler(_reserve),
    "release_paths": _handler(_release),
    "list_reservations": _handler(_list),
}
