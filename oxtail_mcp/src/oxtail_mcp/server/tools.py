"""The 14 tools: thin adapters from validated arguments to agent and core calls.

No messaging logic lives here (it is all in oxtail_core): a handler picks the
arguments, makes one call on ``agent.peer`` (or the agent, for identity), and
returns the response object plus, for reads, the in-flight hand-off to settle
(and receipt) once the response is on the wire. Nothing here runs on the event loop but the
rendering: the peer's calls go off the loop themselves, and the handlers that
touch the world otherwise (tmux, transcripts, the registry) run in a worker
thread through :func:`_threaded`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from oxtail_core.claims import SessionHeld
from oxtail_core.effects import call_async
from oxtail_core.model import SCHEMA_VERSION
from oxtail_core.results import Asked, Handoff
from oxtail_core.routing import live_entries
from oxtail_fs.host.project import find_project_root, in_scope, realpath_or_self
from oxtail_fs.tmux.discovery import project_sessions, verified
from oxtail_mcp.server import ours
from oxtail_mcp.server.agent import Agent
from oxtail_mcp.server.responses import render, session_held
from oxtail_mcp.transcripts.read_session import TmuxPaneReader, read_session


@attrs.frozen
class Outcome:
    """A handler's result: the response object, and messages to settle after it is written."""

    body: dict[str, Any]
    handoff: Handoff | None = None


Handler = Callable[[Agent, dict[str, Any]], Awaitable[Outcome]]


def _threaded(fn: Callable[[Agent, dict[str, Any]], Outcome]) -> Handler:
    """A handler that runs ``fn`` in a worker thread: it may block (tmux, ps, file locks)."""

    async def handler(agent: Agent, args: dict[str, Any]) -> Outcome:
        return await call_async(fn, agent, args)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def _root(agent: Agent, given: Any) -> tuple[str, bool]:
    if isinstance(given, str) and given:
        return realpath_or_self(given), False
    return realpath_or_self(find_project_root(agent.me.client.cwd)[0]), True


@_threaded
def list_project_sessions(agent: Agent, args: dict[str, Any]) -> Outcome:
    root, inferred = _root(agent, args.get("project_root"))
    here = agent.ctx.host.host_id
    listing = project_sessions(agent.tmux, verified(agent.tmux, live_entries(agent.ctx), here=here), root)
    body: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "project_root": root, "inferred": inferred}
    if args.get("compact"):
        body["tmux_sessions"] = listing.grouped()
    else:
        body["sessions"] = list(listing.rows)
    body["error"] = listing.error
    return Outcome(body)


@_threaded
def read_session_tool(agent: Agent, args: dict[str, Any]) -> Outcome:
    root, inferred = _root(agent, args.get("project_root"))
    body = read_session(
        args["name"],
        entries=verified(agent.tmux, live_entries(agent.ctx), here=agent.ctx.host.host_id),
        resolved_root=root,
        inferred=inferred,
        in_scope=in_scope,
        panes=TmuxPaneReader(agent.tmux),
        mode=args.get("mode", "auto"),
        limit=args.get("limit"),
        max_bytes=args.get("max_bytes"),
        include_timestamps=bool(args.get("include_timestamps", False)),
        tail_scan=bool(args.get("tail_scan", False)),
        pane_lines=args.get("pane_lines"),
        pane_max_chars=args.get("pane_max_chars"),
        tracer=agent.ctx.tracer,
        here=agent.ctx.host.host_id,
    )
    return Outcome(body)


@_threaded
def claim_session(agent: Agent, args: dict[str, Any]) -> Outcome:
    try:
        me = agent.claim(args["session_id"])
    except SessionHeld as held:
        return Outcome(session_held(held))
    return Outcome(
        {
            "schema_version": SCHEMA_VERSION,
            "ok": True,
            "session_id": me.client.session_id,
            "transcript_path": me.client.transcript_path,
        }
    )


@_threaded
def register_my_session(agent: Agent, args: dict[str, Any]) -> Outcome:
    try:
        agent.claim(args["session_id"])
    except SessionHeld as held:
        return Outcome(session_held(held))
    entry = agent.entry_wire()
    shown = {key: entry[key] for key in ("server_pid", "started_at", "tmux_session", "client")}
    return Outcome({"schema_version": SCHEMA_VERSION, "ok": True, "entry": shown})


@_threaded
def get_my_session(agent: Agent, args: dict[str, Any]) -> Outcome:
    agent.refine(agent.client_name, "get_my_session")
    diagnosis = agent.diagnosis("get_my_session")
    body = {"schema_version": SCHEMA_VERSION, "entry": agent.entry_wire(), "detect_diagnosis": diagnosis}
    return Outcome(body)


@_threaded
def set_my_state(agent: Agent, args: dict[str, Any]) -> Outcome:
    card = agent.set_state(args.get("purpose"), "purpose" in args)
    state = {"purpose": card.purpose, "updated_at": card.updated_at}
    return Outcome({"schema_version": SCHEMA_VERSION, "ok": True, "state": state})


async def send_message(agent: Agent, args: dict[str, Any]) -> Outcome:
    result = await agent.peer.send(
        args["target"],
        args["body"],
        wake=args.get("wake"),
        reply_to=args.get("reply_to"),
        source_message_id=args.get("source_message_id"),
        action_required=args.get("action_required") is True,
    )
    return Outcome(render(result))


async def message_status(agent: Agent, args: dict[str, Any]) -> Outcome:
    return Outcome(render(await agent.peer.message_status(args["message_id"])))


async def my_open_work(agent: Agent, args: dict[str, Any]) -> Outcome:
    return Outcome(render(await agent.peer.open_work()))


async def complete_work(agent: Agent, args: dict[str, Any]) -> Outcome:
    result = await agent.peer.complete_work(args["message_id"], args["body"], wake=args.get("wake"))
    return Outcome(render(result))


async def block_work(agent: Agent, args: dict[str, Any]) -> Outcome:
    result = await agent.peer.block_work(args["message_id"], args["reason"], wake=args.get("wake"))
    return Outcome(render(result))


async def reply_to_message(agent: Agent, args: dict[str, Any]) -> Outcome:
    result = await agent.peer.reply(args["message_id"], args["body"], wake=args.get("wake"))
    return Outcome(render(result))


async def read_my_messages(agent: Agent, args: dict[str, Any]) -> Outcome:
    result = await agent.peer.read_messages(settle=False)
    return Outcome(render(result), result.handoff)


async def ask_peer(agent: Agent, args: dict[str, Any]) -> Outcome:
    timeout = args.get("timeout_ms")
    result = await agent.peer.ask(
        args["target"],
        args["body"],
        timeout_ms=int(timeout) if isinstance(timeout, (int, float)) and math.isfinite(timeout) else None,
        settle=False,
    )
    return Outcome(render(result), result.handoff if isinstance(result, Asked) else None)


HANDLERS: dict[str, Handler] = {
    "list_project_sessions": list_project_sessions,
    "read_session": read_session_tool,
    "register_my_session": register_my_session,
    "claim_session": claim_session,
    "get_my_session": get_my_session,
    "set_my_state": set_my_state,
    "send_message": send_message,
    "message_status": message_status,
    "reply_to_message": reply_to_message,
    "read_my_messages": read_my_messages,
    "my_open_work": my_open_work,
    "complete_work": complete_work,
    "block_work": block_work,
    "ask_peer": ask_peer,
    **ours.HANDLERS,
}
