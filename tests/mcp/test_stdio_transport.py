"""Our stdio transport (``oxtail_mcp.server.stdio``) against real servers over real pipes.

The server under test is driven over raw pipes, so the test controls how (and whether) its stdout is
read; its peers are real servers driven by the official MCP client.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.routing import session_inbox
from oxtail_mcp.server.stdio import Urgent
from tests.support.e2e import World, sid, spawn_raw, wait_until, world

BIG = '"' * 8192
"""A maximal body that JSON-escapes twice (the tool's text, then the response): ~32 KiB on the wire."""
_INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}


class Raw:
    """One ``oxtail-mcp`` on raw pipes; the test reads its stdout itself, as slowly as it likes."""

    def __init__(self, w: World, cwd: Path, pipe_bytes: int | None = None) -> None:
        self.proc = spawn_raw(w, cwd)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.out = self.proc.stdout.fileno()
        if pipe_bytes is not None:
            fcntl.fcntl(self.out, fcntl.F_SETPIPE_SZ, pipe_bytes)
        self.buffer = b""
        self.next_id = 0
        assert "result" in self.call("initialize", _INIT)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message))

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}})
        return self.next_id

    def tool(self, name: str, args: dict[str, Any] | None = None) -> int:
        return self.request("tools/call", {"name": name, "arguments": args or {}})

    def line(self, chunk: int = 1 << 16, pause_s: float = 0.0, timeout_s: float = 30.0) -> dict[str, Any]:
        """The next whole line, read ``chunk`` bytes at a time with ``pause_s`` between reads."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            assert time.monotonic() < deadline, "no complete line"
            data = os.read(self.out, chunk)
            assert data, "the server closed its stdout"
            self.buffer += data
            time.sleep(pause_s)
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        rid = self.request(method, params)
        answer = self.line()
        assert answer.get("id") == rid, answer
        return answer

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _body(answer: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer["result"]["content"][0]["text"])
    return body


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def _raw_reader(w: World, pipe_bytes: int | None = None) -> Raw:
    raw = Raw(w, w.project("proj"), pipe_bytes)
    assert _body(raw.call("tools/call", {"name": "claim_session", "arguments": {"session_id": sid(2)}}))["ok"]
    return raw


def _send_big(w: World, count: int) -> list[str]:
    sender = w.direct("a", w.project("proj"))
    sender.claim(sid(1))
    return [
        sender.ok("send_message", {"target": sid(2), "body": BIG, "wake": "off"})["message_id"]
        for _ in range(count)
    ]


def test_a_client_reading_a_large_response_slowly_holds_up_no_other_call(w: World) -> None:
    raw = _raw_reader(w)
    sent = _send_big(w, 3)
    try:
        read = raw.tool("read_my_messages")  # ~100 KiB: half again the pipe; nobody reads it yet
        sender = w.agents[0]
        assert wait_until(lambda: w.store().in_flight(session_inbox(sid(2))), 10)
        time.sleep(0.2)  # the writer is blocked on the full pipe now
        started = time.monotonic()
        raw.tool("send_message", {"target": sid(1), "body": "meanwhile", "wake": "off"})
        got = wait_until(lambda: sender.read()["messages"], 10, 0.005)
        elapsed = time.monotonic() - started
        assert [m["body"] for m in got] == ["meanwhile"]
        assert elapsed < 0.2, f"the other call took {elapsed * 1000:.0f} ms"
        answer = raw.line(chunk=4096, pause_s=0.002)  # a slow reader, 4 KiB at a time
        assert answer["id"] == read and [m["id"] for m in _body(answer)["messages"]] == sent
        assert [m["body"] for m in _body(answer)["messages"]] == [BIG] * 3
        assert _body(raw.line())["ok"] is True
    finally:
        raw.close()


def test_an_invalid_line_costs_nothing_and_the_next_request_is_answered(w: World) -> None:
    raw = Raw(w, w.project("proj"))
    try:
        raw.send_line("this is not json")
        raw.send_line('{"jsonrpc":"2.0","id":"broken","method":"ping"} trailing')
        rid = raw.request("ping")
        assert raw.line() == {
            "jsonrpc": "2.0",
            "id": "broken",
            "error": {"code": -32700, "message": "Parse error: trailing data after the JSON object"},
        }
        assert raw.line() == {"jsonrpc": "2.0", "id": rid, "result": {}}
    finally:
        raw.close()


def test_eof_on_stdin_ends_the_server_within_a_second_and_puts_back_the_read_it_could_not_write(
    w: World,
) -> None:
    raw = _raw_reader(w)
    sent = _send_big(w, 3)
    inbox = session_inbox(sid(2))
    try:
        raw.tool("read_my_messages")  # never read: the response stays stuck in the writer
        assert wait_until(lambda: w.store().in_flight(inbox), 10)
        time.sleep(0.2)
        assert raw.proc.stdin is not None
        started = time.monotonic()
        raw.proc.stdin.close()
        assert raw.proc.wait(5) == 0
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"exit took {elapsed * 1000:.0f} ms"
        assert w.store().in_flight(inbox) == [] and w.store().depth(inbox) == 3
        reader = w.direct("b", w.project("proj"))
        reader.claim(sid(2))
        assert [m["id"] for m in reader.read()["messages"]] == sent
    finally:
        raw.close()


def _writer_waits_for_room(pid: int) -> bool:
    """Some thread of ``pid`` is in ``poll`` on one descriptor with no timeout: the writer's wait for
    room for the newline (inotify waits have a timeout; the loop uses epoll, the reader ``read``)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            parts = Path(f"/proc/{pid}/task/{task}/syscall").read_text().split()
        except OSError:
            continue
        if parts[:1] == ["7"] and parts[2:4] == ["0x1", "0xffffffff"]:
            return True
    return False


def test_a_kill_after_all_but_the_newline_of_a_read_brings_the_batch_back_and_loses_nothing(
    w: World,
) -> None:
    """A one-page pipe: the writer can put the newline only once the client has read everything
    before it. The client reads all it can, stops when the writer waits for room, and the server
    is SIGKILLed there: the client never got a complete line, and the next reader gets every
    message, same ids. So the settle comes after the newline, and nothing but the newline is
    left to write when it does."""
    raw = _raw_reader(w, pipe_bytes=4096)
    sent = _send_big(w, 3)
    inbox = session_inbox(sid(2))
    try:
        read = raw.tool("read_my_messages")
        deadline = time.monotonic() + 30
        while not _writer_waits_for_room(raw.proc.pid):
            assert time.monotonic() < deadline, "the writer never waited for room"
            assert b"\n" not in raw.buffer, "the newline was written without waiting for room"
            if select.select([raw.out], [], [], 0.05)[0]:
                raw.buffer += os.read(raw.out, 4096)
        os.kill(raw.proc.pid, signal.SIGKILL)
        raw.proc.wait(10)
        while chunk := os.read(raw.out, 1 << 16):
            raw.buffer += chunk
        assert b"\n" not in raw.buffer  # the client never had a complete line...
        held = json.loads(raw.buffer)  # ...though it held the whole response but its newline
        assert held["id"] == read and [m["id"] for m in _body(held)["messages"]] == sent
        assert len(w.store().in_flight(inbox)) == 1  # still in flight: the dead holder never settled
        reader = w.direct("b", w.project("proj"))
        reader.claim(sid(2))
        assert [m["id"] for m in reader.read()["messages"]] == sent
    finally:
        raw.close()


def test_the_writer_runs_real_time_only_across_the_newline_and_the_settle_and_only_its_own_thread() -> None:
    """stdio.Urgent: where the system allows it (root here), the thread in the block is SCHED_FIFO
    and every other thread, and the same thread afterwards, is an ordinary one again."""
    urgent = Urgent()
    seen: dict[str, int] = {}

    def writer() -> None:
        with urgent:
            seen["inside"] = os.sched_getscheduler(0)
            seen["other thread"] = os.sched_getscheduler(main_tid)
        seen["after"] = os.sched_getscheduler(0)

    main_tid = threading.get_native_id()
    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(10)
    if not urgent.allowed:
        pytest.skip("this user may not use real-time scheduling (the writer then runs as before)")
    assert seen == {"inside": os.SCHED_FIFO, "other thread": os.SCHED_OTHER, "after": os.SCHED_OTHER}
