"""The MCP stdio server: registration, the fourteen tools, and a clean exit.

Lifecycle: publish our registry entry before serving; serve until stdin
closes, SIGTERM/SIGINT arrive, or our parent (the agent host) dies; then
leave the registry without stranding mail and put back any read that never
reached the client.

Reads in flight: a tool that takes messages out of the inbox returns them in
a batch that is settled only once the response message has been handed to
the transport's write stream. If the process dies first, the next reader of
the inbox restores the batch (same ids); if the call is cancelled or the
write fails, it is restored at once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import anyio
import attrs
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

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
from oxtail_mcp.server.screen import ScreenedStdin
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


class Settler:
    """Batches waiting for their response to be written, keyed by JSON-RPC request id.

    Settling a batch is what writes its delivery receipts (its hand-off says
    ``via`` and the reader), so a receipt exists only for messages whose
    response was flushed; a batch put back gets none.

    A response that never reaches the stdout writer (the call was cancelled
    after the handler returned) would strand its batch until we exit; after
    ``UNSENT_RESTORE_S`` it is put back instead. A response the writer has
    taken is never expired: a slow client may take any time to drain a large
    one from the pipe, and putting its batch back meanwhile would deliver it
    twice. It settles once its flush completes (or is put back at exit).

    ``queued`` mirrors the transport's outgoing queue: one slot per message
    handed to the stdout writer, in order (the request id of a response, else
    None). The writer writes and flushes one message at a time, so each flush
    completes the oldest slot: that is when a response is on the pipe and its
    batch may be settled.
    """

    def __init__(self, agent: Agent, restore_after_s: float = UNSENT_RESTORE_S) -> None:
        self.agent = agent
        self.restore_after_s = restore_after_s
        self.waiting: dict[Any, Handoff] = {}
        self.task_group: anyio.abc.TaskGroup | None = None
        self.queued: collections.deque[Any] = collections.deque()

    async def flush_then_settle(self, flush: Callable[[], None]) -> None:
        """Flush the oldest queued message onto the pipe and settle its batch in the same worker
        thread right after the write. The settle is prepared before the write, so between "written"
        and "settled" there is only the store's commit (one ``unlink``): no task hop, no lock wait,
        no directory listing (the duplicate window, docs/protocol.md §4). The slot leaves the queue
        only once the flush succeeded, so the unsent-expiry never restores a batch whose response
        is being written; a failed flush leaves the batch waiting, to be put back at exit."""
        request_id = self.queued[0] if self.queued else None
        written = False

        def step() -> None:
            nonlocal written
            handoff = self.waiting.get(request_id) if request_id is not None else None
            settled = prepare_handoff(self.agent.ctx, handoff) if handoff is not None else None
            flush()
            written = True
            if settled is not None and self.waiting.pop(request_id, None) is handoff:
                settled()

        try:
            await finish_async(step)
        finally:
            if written and self.queued:
                self.queued.popleft()

    def hold(self, request_id: Any, handoff: Handoff) -> None:
        self.waiting[request_id] = handoff
        if self.task_group is not None:
            self.task_group.start_soon(self._expire, request_id, handoff)

    async def _expire(self, request_id: Any, handoff: Handoff) -> None:
        await anyio.sleep(self.restore_after_s)
        if self.waiting.get(request_id) is handoff and request_id not in self.queued:
            with contextlib.suppress(OxtailError):
                await finish_async(self.restore, request_id)

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


class SettlingWriteStream:
    """Wraps the transport's write stream: every message taken by the stdout writer gets a slot in
    the settler's queue, in the order the writer takes them (hence the lock)."""

    def __init__(self, inner: Any, settler: Settler) -> None:
        self.inner = inner
        self.settler = settler
        self.lock = anyio.Lock()

    async def send(self, item: SessionMessage, /) -> None:
        message = getattr(item, "message", None)
        request_id = getattr(message, "id", None) if isinstance(message, types.JSONRPCResponse) else None
        async with self.lock:
            self.settler.queued.append(request_id)
            try:
                await self.inner.send(item)  # unbuffered: returns once the writer has taken it
            except BaseException:
                self.settler.queued.pop()
                if request_id is not None:
                    await finish_async(self.settler.restore, request_id)
                raise

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> SettlingWriteStream:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        result: bool | None = await self.inner.__aexit__(*exc)
        return result


class SettlingStdout:
    """The protocol pipe: after each flush, the message just written is delivered (see :class:`Settler`)."""

    def __init__(self, inner: Any, settler: Settler) -> None:
        self.inner = inner
        self.settler = settler

    async def write(self, text: str) -> int:
        written: int = await self.inner.write(text)
        return written

    async def flush(self) -> None:
        await self.settler.flush_then_settle(self.inner.wrapped.flush)


def claim_stdout() -> Any:
    """Our own handle on the protocol pipe (fd 1), with fd 1 then pointing at stderr.

    The SDK does the same diversion when it opens stdout itself; we open it so
    that we see each flush. Stray output of anything in this process can no
    longer corrupt the wire.
    """
    wire = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return anyio.wrap_file(wire)


def claim_stdin() -> Any:
    """Our own handle on the client's stream (fd 0), with fd 0 then reading the null device.

    The SDK does the same when it opens stdin itself; we open it so that the
    :class:`~oxtail_mcp.server.screen.ScreenedStdin` sees every line first.
    Children and handlers read EOF, never the protocol.
    """
    wire = os.fdopen(os.dup(0), "r", encoding="utf-8", errors="replace")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return anyio.wrap_file(wire)


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

    Used for signals and a dead parent: the stdin reader is a worker thread
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
            stdout = SettlingStdout(claim_stdout(), settler)
            stdin = ScreenedStdin(
                claim_stdin(), lambda why: safe_emit(agent.ctx.tracer, "jsonrpc_line_dropped", reason=why)
            )
            async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):  # type: ignore[arg-type]
                stdin.attach(write_stream.send)
                _setup_hints(agent)
                await server.run(
                    read_stream,
                    SettlingWriteStream(write_stream, settler),
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
