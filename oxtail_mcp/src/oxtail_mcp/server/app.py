"""The MCP stdio server: registration, the fourteen tools, and a clean exit.

Lifecycle: publish our registry entry before serving; serve until stdin
closes, SIGTERM/SIGINT arrive, or our parent (the agent host) dies; then
leave the registry without stranding mail and put back any read that never
reached the client.

Reads in flight: a tool that takes messages out of the inbox returns them in
a batch that is settled only once the last byte of its response is on the
pipe (:meth:`Settler.deliver`, in the transport's writer thread,
:mod:`oxtail_mcp.server.stdio`). If the process dies first, the next reader
of the inbox restores the batch (same ids); if the write fails, it is
restored at once, and if the response never reaches the writer, after
``UNSENT_RESTORE_S``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import anyio
import attrs
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server

from oxtail_core.effects import call_async, finish_async
from oxtail_core.errors import OxtailError
from oxtail_core.receipts import prepare_handoff, settle_handoff
from oxtail_core.results import Handoff
from oxtail_core.settings import positive_number
from oxtail_core.trace import safe_emit
from oxtail_core.wire import dumps
from oxtail_mcp import COMPATIBLE_VERSION
from oxtail_mcp.identity.client import FORWARDED_NOTHING, forwarded_nothing
from oxtail_mcp.server import schemas, tools
from oxtail_mcp.server.agent import RETRY_DELAYS_MS, Agent
from oxtail_mcp.server.relay import start_relay
from oxtail_mcp.server.stdio import Pipe, Urgent, stdio_transport
from oxtail_mcp.server.watchdogs import start_watchdogs

SERVER_NAME = "oxtail"
SERVER_VERSION = COMPATIBLE_VERSION  # see oxtail_mcp.__init__
PARENT_POLL_S = 1.0
SWEEP_EVERY_S = 600.0
"""How often a server sweeps the store's leftovers (at start, then this often): cheap, and rarely needed."""
NOT_A_TASK = types.ToolExecution(task_support="forbidden")
"""Every tool answers within its call (no MCP task mode), as the reference lists it."""


UNSENT_RESTORE_S = 10.0
"""How long a batch whose response never reached the writer stays in flight; ``OXTAIL_UNSENT_RESTORE_MS``
overrides it (a positive number of milliseconds), so tests need not wait 10 s."""


def unsent_restore_s(env: Mapping[str, str]) -> float:
    """``OXTAIL_UNSENT_RESTORE_MS`` in seconds, else :data:`UNSENT_RESTORE_S`."""
    return positive_number(env, "OXTAIL_UNSENT_RESTORE_MS", UNSENT_RESTORE_S * 1000) / 1000


class Withdrawn(Exception):
    """The batch of the response being written was put back meanwhile (we are leaving): its line
    must stay unfinished, or the client would get messages that are back in the inbox."""


class Settler:
    """Batches waiting for their response to be written, keyed by JSON-RPC request id.

    Settling a batch is what writes its delivery receipts (its hand-off says
    ``via`` and the reader), so a receipt exists only for messages whose
    response was written; a batch put back gets none.

    A response that never reaches the stdout writer (the call was cancelled
    after the handler returned) would strand its batch until we exit; after
    ``UNSENT_RESTORE_S`` it is put back instead. A response the writer has
    taken is never expired: a slow client may take any time to drain a large
    one from the pipe, and putting its batch back meanwhile would deliver it
    twice. It settles once its last byte is written (or is put back at exit).

    ``queued`` mirrors the transport's outgoing queue: one slot per message
    handed to the stdout writer, in order (the request id of a response, else
    None), appended on the loop thread; :meth:`deliver`, in the writer thread,
    releases the oldest. Who takes a batch out of ``waiting`` (``dict.pop``,
    atomic) owns it: the writer just before the line's last byte, or a restore.
    """

    def __init__(self, agent: Agent, restore_after_s: float = UNSENT_RESTORE_S) -> None:
        self.agent = agent
        self.restore_after_s = restore_after_s
        self.waiting: dict[Any, Handoff] = {}
        self.task_group: anyio.abc.TaskGroup | None = None
        self.queued: collections.deque[Any] = collections.deque()
        self.urgent = Urgent()  # the writer thread's: only it uses it

    def deliver(self, request_id: Any, data: bytes, pipe: Pipe) -> None:
        """Write one message (a whole line, ``data`` ends with its newline); if it is the response
        of a held read, settle that batch right after the line's last byte (the writer thread).

        The duplicate window (docs/protocol.md §5) is the stretch between that byte being on the
        pipe and the batch file's ``unlink``; everything else happens before it: the settle is
        prepared (``Store.prepare_settle`` lists ``journal/``), the line is written but for its
        newline (the client acts on complete lines only) and the pipe is awaited until it has
        room, or, into an empty pipe with room for the line, written with the GIL held right
        before its newline (which then mostly lands unread and wakes nobody); then the batch is
        claimed. The newline goes out with the GIL held too
        (:meth:`~oxtail_mcp.server.stdio.Pipe.write_held`), so the commit follows it with no wait
        for the GIL in between. Never before: a kill before the newline leaves the batch in
        flight, recovered unseen. The gap from that write's issue to the commit's issue goes to
        the trace (``read_settled``, ``gap_ns``): the window, measured in place. A commit that
        fails after the newline is traced, never a failed write: the writer goes on.
        """
        try:
            handoff = self.waiting.get(request_id) if request_id is not None else None
            if handoff is None:
                pipe.write_all(data)
                return
            settled = self._prepare(handoff)
            if pipe.takes_at_once(len(data)):
                pipe.write_held(data[:-1])  # the client may wake for it, and find the newline with it
            else:
                pipe.write_all(memoryview(data)[:-1])
                pipe.wait_writable()
            if self.waiting.pop(request_id, None) is not handoff:
                raise Withdrawn(request_id)
            with self.urgent:  # not preempted by the client the newline wakes (stdio.Urgent)
                try:
                    started = time.perf_counter_ns()
                    pipe.write_held(b"\n")
                    gap_ns = time.perf_counter_ns() - started
                except BaseException:
                    self.waiting[request_id] = handoff  # not written: it is ours to put back
                    raise
                try:
                    settled()
                except OxtailError as exc:  # delivered; the batch stays in flight for recovery
                    safe_emit(self.agent.ctx.tracer, "settle_failed", request_id=request_id, error=str(exc))
                    return
            safe_emit(self.agent.ctx.tracer, "read_settled", request_id=request_id, gap_ns=gap_ns)
        finally:
            self.queued.popleft()

    def _prepare(self, handoff: Handoff) -> Callable[[], None]:
        """The settle, prepared; if preparing fails, the whole settle after the write instead
        (still after it: a settle that fails there leaves the batch to the next reader's recovery)."""
        try:
            return prepare_handoff(self.agent.ctx, handoff)
        except OxtailError:
            return functools.partial(settle_handoff, self.agent.ctx, handoff)

    def hold(self, request_id: Any, handoff: Handoff) -> None:
        self.waiting[request_id] = handoff
        if self.task_group is not None:
            self.task_group.start_soon(self._expire, request_id, handoff)

    async def _expire(self, request_id: Any, handoff: Handoff) -> None:
        """On the loop thread, like the slots' appends: a response not yet queued cannot be taken
        by the writer while we look."""
        await anyio.sleep(self.restore_after_s)
        if request_id not in self.queued and self.waiting.get(request_id) is handoff:
            del self.waiting[request_id]
            with contextlib.suppress(OxtailError):
                await finish_async(self.agent.ctx.store.restore, handoff.batch)

    def restore(self, request_id: Any) -> None:
        handoff = self.waiting.pop(request_id, None)
        if handoff is not None:
            self.agent.ctx.store.restore(handoff.batch)

    def restore_all(self) -> None:
        for request_id in list(self.waiting):
            try:
                self.restore(request_id)
            except OxtailError:
                self.waiting.pop(request_id, None)  # the next reader recovers it once we are gone


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


def build_server(agent: Agent, settler: Settler, task_group: anyio.abc.TaskGroup) -> Server[Any]:
    """The lowlevel MCP server with our exact tool list and dispatch."""
    listed = [
        types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=tool.input_schema(),
            execution=NOT_A_TASK,
        )
        for tool in schemas.TOOLS
    ]
    state = {"refined": False}
    refined = anyio.Event()  # a tool call never runs on the identity of before the handshake

    async def refine_once(ctx: Any) -> None:
        if state["refined"]:
            await refined.wait()
            return
        params = getattr(ctx.session, "client_params", None)
        info = getattr(params, "client_info", None)
        if info is None:
            return
        state["refined"] = True
        try:
            agent.client_name = getattr(info, "name", None)
            diagnosis = await call_async(agent.refine, agent.client_name, "oninitialized")
            if agent.should_retry(diagnosis):
                task_group.start_soon(_late_detection, agent)
        finally:
            refined.set()

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        await refine_once(ctx)
        return types.ListToolsResult(tools=listed)

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        await refine_once(ctx)
        tool = schemas.BY_NAME.get(params.name)
        if tool is None:
            return _text(f"MCP error -32602: Tool {params.name} not found", error=True)
        try:
            args = schemas.validate(tool, params.arguments)
        except schemas.InvalidArguments as exc:
            return _text(str(exc), error=True)
        try:
            outcome = await tools.HANDLERS[tool.name](agent, args)
        except OxtailError as exc:
            return _text(str(exc), error=True)
        except ValueError as exc:
            return _text(str(exc), error=True)
        if outcome.handoff is not None:
            if ctx.request_id is None:
                await finish_async(settle_handoff, agent.ctx, outcome.handoff)
            else:
                settler.hold(ctx.request_id, outcome.handoff)
        return _text(dumps(outcome.body))

    async def on_initialized(ctx: Any, params: Any) -> None:
        await refine_once(ctx)  # publish the handshake's client type before any tool call (a wake needs it)

    server: Server[Any] = Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=(
            "oxtail connects you with the other agent sessions working in this project. "
            "list_project_sessions shows them; send_message / ask_peer reach them; read_my_messages "
            "collects what they sent you; reply with reply_to_message (or send_message with reply_to)."
        ),
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )
    server.add_notification_handler("notifications/initialized", types.NotificationParams, on_initialized)
    return server


async def _late_detection(agent: Agent) -> None:
    elapsed = 0
    for delay in RETRY_DELAYS_MS:
        await anyio.sleep((delay - elapsed) / 1000)
        elapsed = delay
        await call_async(agent.retry_detection, delay)
        if agent.me.session_id:
            return


def _leave(agent: Agent, settler: Settler, code: int = 0) -> NoReturn:
    """Put back unsent reads, leave the registry, and exit now.

    Used for signals and a dead parent: the stdin reader is a thread
    blocked in ``read``, which no cancellation can interrupt, so waiting for
    the serve loop to unwind would hang until stdin closes.
    """
    settler.restore_all()
    agent.retire()
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    """Flush what we printed and exit without joining the stdin reader thread (it may never return)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def _watch_parent(agent: Agent, settler: Settler, parent: int) -> None:
    """Exit when the agent host that started us is gone (we were re-parented)."""
    while True:
        if os.getppid() != parent:
            _leave(agent, settler)
        await anyio.sleep(PARENT_POLL_S)


async def _sweep_rarely(agent: Agent) -> None:
    """Sweep what killed processes left in the store (Store.sweep), off the loop; a failure waits a round."""
    while True:
        with contextlib.suppress(OxtailError):
            report = await call_async(agent.ctx.store.sweep, agent.ctx.clock.now_ms())
            if report.temps or report.locks or report.quarantines or report.inboxes:
                safe_emit(agent.ctx.tracer, "store_swept", **attrs.asdict(report))
        await anyio.sleep(SWEEP_EVERY_S)


async def _watch_signals(agent: Agent, settler: Settler) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            _leave(agent, settler)


def _setup_hints(agent: Agent) -> None:
    """Say on stderr (the host's MCP log) what is wrong with our setup.

    A Claude Code user whose hooks are missing or stale; a server whose environment
    was stripped to Codex's bare set (no ``env_vars``), which then runs on another
    state dir than its peers and wakes on the wrong tmux server.
    """
    if agent.env_client_type == "claude-code":
        from oxtail_mcp.hooks.installer import freshness_hint

        hint = freshness_hint(agent.env)
        if hint:
            print(hint, file=sys.stderr, flush=True)
    if forwarded_nothing(agent.env):
        print(f"[oxtail] {FORWARDED_NOTHING}", file=sys.stderr, flush=True)


async def serve(agent: Agent, parent: int) -> None:
    """Serve MCP on stdio until EOF, a signal, or the death of ``parent``; always clean up."""
    settler = Settler(agent, unsent_restore_s(agent.env))
    try:
        async with anyio.create_task_group() as tg:
            settler.task_group = tg
            tg.start_soon(_watch_parent, agent, settler, parent)
            tg.start_soon(_watch_signals, agent, settler)
            start_watchdogs(agent, tg)  # before the transport connects (selfheal §1.3)
            tg.start_soon(_sweep_rarely, agent)
            server = build_server(agent, settler, tg)
            async with stdio_transport(
                settler,
                lambda why: safe_emit(agent.ctx.tracer, "jsonrpc_line_dropped", reason=why),
                lambda why: safe_emit(agent.ctx.tracer, "stdout_write_failed", error=why),
            ) as (read_stream, write_stream):
                _setup_hints(agent)
                await server.run(
                    read_stream,
                    write_stream,
                    server.create_initialization_options(NotificationOptions(tools_changed=True)),
                )
            tg.cancel_scope.cancel()
    finally:
        settler.restore_all()  # run() then retires us


def _nothing() -> None:
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run() -> None:
    """Entry point for server mode: SIGTERM and SIGINT mean "leave cleanly" from the very start."""
    signal.signal(signal.SIGTERM, _interrupt)
    parent = os.getppid()  # before anything slow: the host may die while we start
    agent: Agent | None = None
    stop_relay: Callable[[], None] = _nothing
    code = 0
    try:
        agent = Agent.start()
        stop_relay = start_relay(agent.ctx.store, tracer=agent.ctx.tracer, settings=agent.ctx.settings)
        anyio.run(serve, agent, parent)
    except KeyboardInterrupt:
        pass
    except Exception:  # noqa: BLE001 - report, clean up, and exit non-zero
        traceback.print_exc()
        code = 1
    finally:
        stop_relay()
        if agent is not None:
            agent.retire()
        else:
            Agent.forget_own_entry()
        _exit_now(code)
