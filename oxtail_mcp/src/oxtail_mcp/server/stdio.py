"""The MCP stdio transport: one reader thread, one writer thread, the SDK's session on top.

The SDK's ``stdio_server`` hops to a worker thread for every line it reads and twice for every
message it writes, and its sends wait for the write, so a client that stops reading holds up
every send. Here two dedicated threads own the pipes:

=========  =====================================================================================
thread     does
=========  =====================================================================================
reader     reads stdin line by line, parses each line, hands the loop a ``SessionMessage``;
           a line that does not parse goes through :func:`~oxtail_mcp.server.screen.screen`
           (answered, dropped and traced, or, as the SDK does, handed on as the exception);
           EOF closes the read stream, which ends the server
writer     writes each line the session sends, in order, through the :class:`Outbox`, which
           settles a read's batch right after the newline of its response is written (the
           duplicate window, docs/protocol.md §5); the loop never waits for a write
=========  =====================================================================================

The loop only serializes and enqueues: ``send`` appends the message's slot to ``Outbox.queued``
and puts its line on the writer's queue, on the loop thread (so slots and lines keep one order).
The reader hands items to the loop with ``call_soon_threadsafe`` (anyio's asyncio backend).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import fcntl
import math
import os
import queue
import select
import sys
import termios
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import anyio
import attrs
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from oxtail_mcp.server.screen import Drop, screen

PAGE = 4096
DRAIN_S = 0.5
"""At the end of the session, how long the writer may take to write what is still queued."""


class Outbox(Protocol):
    """What the writer needs from the server: the slots, and the delivery of one message."""

    queued: collections.deque[Any]

    def deliver(self, request_id: Any, data: bytes, pipe: Pipe) -> None: ...

    def restore(self, request_id: Any) -> None: ...


class Pipe:
    """The protocol pipe (stdout), written only by the writer thread.

    :meth:`write_held` and :meth:`unread` call libc with the GIL held (``ctypes.PyDLL`` calls never
    release it), so what follows them runs without waiting to get the GIL back: an ``os.write``
    releases the GIL, and re-taking it can wait a whole switch interval (5 ms) when the event loop
    or the reader thread runs. ``ctypes`` is loaded at the first use (about 2 ms): the first read.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)
        self._libc: Any = None
        try:
            self.capacity = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)  # Linux only
        except (AttributeError, OSError):
            self.capacity = 0  # not a pipe (a terminal, a file): never assume room nor count bytes

    def write_all(self, data: bytes | memoryview) -> None:
        """Write everything, blocking as long as the client takes to read it (the GIL is free meanwhile)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def wait_writable(self) -> None:
        """Until the pipe has room (a pipe that is not full takes a 1-byte write at once), or is broken."""
        self._poll.poll()

    def unread(self) -> int:
        """Bytes in the pipe the client has not read yet (-1: unknown, not a pipe)."""
        if not self.capacity:
            return -1
        libc = self._libc or self._load()
        count = libc.count
        if libc.ioctl(self.fd, termios.FIONREAD, libc.count_ref) != 0:
            return -1
        return int(count.value)

    def takes_at_once(self, size: int) -> bool:
        """Whether a write of ``size`` bytes cannot block: the pipe is empty (the client has read
        all) and ``size`` fits with a page to spare. Only we write, so the room can only grow."""
        return size <= self.capacity - PAGE and self.unread() == 0

    def write_held(self, data: bytes) -> None:
        """Write ``data`` without releasing the GIL; the caller knows it does not block (an empty
        pipe with room for it, or one byte after :meth:`wait_writable`)."""
        libc = self._libc or self._load()
        view = memoryview(data)
        while view:
            done = libc.write(self.fd, bytes(view), len(view))
            if done >= 0:
                view = view[done:]
                continue
            err = libc.get_errno()
            if err == errno.EAGAIN:
                self.wait_writable()
            elif err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    def _load(self) -> Any:
        import ctypes

        dll = ctypes.PyDLL(None, use_errno=True)
        write, ioctl = dll.write, dll.ioctl
        write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
        write.restype = ctypes.c_ssize_t
        count = ctypes.c_int(0)
        ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.POINTER(ctypes.c_int))
        ioctl.restype = ctypes.c_int
        self._libc = _Libc(write, ioctl, count, ctypes.pointer(count), ctypes.get_errno)
        return self._libc


class Urgent:
    """While a read's newline goes out and its batch settles, the writer thread runs real-time
    (``SCHED_FIFO``, priority 1) where the system allows it (root, ``CAP_SYS_NICE`` or an
    ``RLIMIT_RTPRIO``); elsewhere it runs as before.

    Why: the newline wakes the client, pipe wake-ups are synchronous, and an ordinary thread is
    often preempted by the client it woke before its write returns, which keeps the batch
    unsettled for the client's whole burst (milliseconds: the tail of the duplicate window,
    docs/protocol.md §5). A real-time thread is not preempted by an ordinary one; it holds that
    class for two syscalls and the settle, then goes back. A refusal is remembered: one try.
    """

    def __init__(self) -> None:
        self.allowed = hasattr(os, "sched_setscheduler")
        self.on = False

    def __enter__(self) -> None:
        if not self.allowed:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # 0: the calling thread
            self.on = True
        except OSError:
            self.allowed = False

    def __exit__(self, *exc: object) -> None:
        if self.on:
            self.on = False
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@attrs.frozen
class _Libc:
    write: Any
    ioctl: Any
    count: Any
    count_ref: Any
    get_errno: Callable[[], int]


def claim_stdout() -> int:
    """Our own descriptor of the protocol pipe (fd 1), with fd 1 then pointing at stderr.

    Stray output of anything in this process (a print, a child) can no longer corrupt the wire.
    """
    wire = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return wire


def claim_stdin() -> int:
    """Our own descriptor of the client's stream (fd 0), with fd 0 then reading the null device:
    children and handlers read EOF, never the protocol."""
    wire = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return wire


class Outgoing:
    """The session's write stream: ``send`` never blocks the loop (the writer thread writes)."""

    def __init__(self, outbox: Outbox, pipe: Pipe, on_error: Callable[[str], None]) -> None:
        self.outbox = outbox
        self.pipe = pipe
        self.on_error = on_error
        self._queue: queue.SimpleQueue[tuple[bytes, Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="oxtail-stdout", daemon=True)

    def put(self, item: SessionMessage) -> None:
        """On the loop thread: the message as a line, its slot, then the line for the writer, in order."""
        message = item.message
        text = message.model_dump_json(by_alias=True, exclude_unset=True)
        request_id = message.id if isinstance(message, types.JSONRPCResponse) else None
        self.outbox.queued.append(request_id)
        self._queue.put(((text + "\n").encode("utf-8", errors="replace"), request_id))

    async def send(self, item: SessionMessage, /) -> None:
        self.put(item)

    async def aclose(self) -> None:
        self._queue.put(None)

    async def __aenter__(self) -> Outgoing:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _run(self) -> None:
        """Write in order until the session closes the stream. After a failed write (the client is
        gone, or we are leaving) write nothing more: what the client cannot get goes back now."""
        broken = False
        while (entry := self._queue.get()) is not None:
            data, request_id = entry
            try:
                if broken:
                    self.outbox.queued.popleft()
                else:
                    self.outbox.deliver(request_id, data, self.pipe)  # releases the slot either way
                    continue
            except Exception as exc:  # noqa: BLE001 - a broken pipe, or the batch was withdrawn
                broken = True
                self.on_error(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):  # a failed restore: the next reader recovers it
                self.outbox.restore(request_id)


class Reader:
    """The reader thread: stdin lines to the loop, as the SDK's transport would have parsed them."""

    def __init__(
        self,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        incoming: MemoryObjectSendStream[SessionMessage | Exception],
        reply: Callable[[SessionMessage], None],
        on_drop: Callable[[str], None],
    ) -> None:
        self.file = os.fdopen(fd, "rb", buffering=1 << 16)
        self.loop = loop
        self.incoming = incoming
        self.reply = reply
        self.on_drop = on_drop
        self.thread = threading.Thread(target=self._run, name="oxtail-stdin", daemon=True)

    def _run(self) -> None:
        try:
            for raw in self.file:
                self._line(raw.decode("utf-8", errors="replace"))
        except (OSError, ValueError, RuntimeError):
            pass  # stdin is unreadable (the same end as EOF), or the loop is gone
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is already gone
                self.loop.call_soon_threadsafe(self.incoming.close)

    def _line(self, line: str) -> None:
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except Exception as exc:  # noqa: BLE001 - the screen decides what a bad line gets
            verdict = screen(line)
            if isinstance(verdict, Drop):
                self.on_drop(verdict.reason)
            elif isinstance(verdict, str):
                self._hand(exc)  # what the SDK's transport does with a line it cannot parse
            else:
                for reject in verdict:
                    data = types.ErrorData(code=reject.code, message=reject.message)
                    error = types.JSONRPCError(jsonrpc="2.0", id=reject.id, error=data)
                    self.loop.call_soon_threadsafe(self.reply, SessionMessage(error))
            return
        self._hand(SessionMessage(message))

    def _hand(self, item: SessionMessage | Exception) -> None:
        self.loop.call_soon_threadsafe(self._give, item)

    def _give(self, item: SessionMessage | Exception) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.incoming.send_nowait(item)


@contextlib.asynccontextmanager
async def stdio_transport(
    outbox: Outbox, on_drop: Callable[[str], None], on_write_error: Callable[[str], None]
) -> AsyncIterator[tuple[MemoryObjectReceiveStream[SessionMessage | Exception], Outgoing]]:
    """Claim fds 0 and 1, start both threads, yield the session's read and write streams.

    On exit the writer gets up to :data:`DRAIN_S` to write what is queued; whatever it has not
    written by then is the server's to put back (``Settler.restore_all``). The reader thread is
    left blocked in its ``read`` (nothing can interrupt it; the process exits without joining it).
    """
    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](math.inf)
    outgoing = Outgoing(outbox, Pipe(claim_stdout()), on_write_error)
    reader = Reader(claim_stdin(), asyncio.get_running_loop(), send, outgoing.put, on_drop)
    outgoing.thread.start()
    reader.thread.start()
    try:
        yield receive, outgoing
    finally:
        await outgoing.aclose()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(outgoing.thread.join, DRAIN_S)
