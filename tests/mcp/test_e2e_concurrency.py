"""One server, many calls at once: a slow call never holds up another, and a slow client never
gets a read twice.

Every test drives a real ``oxtail-mcp`` child through the official MCP client
(``tests/mcp/e2e.py``); the contention comes from real processes (a file lock
held by another process, a client that stops reading its pipe).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.e2e import SERVER_COMMAND, World, sid, world

HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def inbox_lock(w: World, session_id: str) -> Path:
    from oxtail_core.protocols import InboxId
    from oxtail_fs.store.layout import Layout, lock_path

    return lock_path(Layout(w.oxtail_home).inbox(InboxId.for_session(session_id)))


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process takes ``path``'s flock and keeps it ``seconds``; returns once it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_lock_held_by_another_process_never_delays_a_concurrent_call(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        a, b = w.directs([("a", tmp_path, None), ("b", tmp_path, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        b.ok("send_message", {"target": sid(1), "body": "behind the lock"})
        a.ok("get_my_session")  # warm: the handshake refinement has run

        holder = hold_lock(inbox_lock(w, sid(1)), 1.5)
        read: dict = {}

        def reader() -> None:
            started = time.monotonic()
            read["body"] = a.ok("read_my_messages")
            read["took"] = time.monotonic() - started

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.3)  # the read is now waiting for the lock inside the server
        timings = []
        for _ in range(3):
            started = time.monotonic()
            entry = a.ok("get_my_session")["entry"]
            timings.append(time.monotonic() - started)
            assert entry["client"]["session_id"] == sid(1)
        assert thread.is_alive(), "the read should still be waiting for the lock"
        thread.join(10)
        holder.wait(10)

        assert max(timings) < 0.050, timings
        assert read["took"] > 1.0, read  # it really waited for the other process
        assert [m["body"] for m in read["body"]["messages"]] == ["behind the lock"]


def test_cancelled_asks_free_everything_at_once_so_a_later_ask_takes_its_own_time(tmp_path: Path) -> None:
    """Ten 60 s asks cancelled by the client (``notifications/cancelled`` on its timeout) hold
    nothing: a 2 s ask after them takes about 2 s, not the 60 s the cancelled waits would have had."""
    with world(tmp_path) as w:
        a, b = w.directs([("a", tmp_path, None), ("b", tmp_path, None)])
        a.claim(sid(1))
        b.claim(sid(2))  # b never reads: nobody answers

        async def cancelled_asks() -> list[str]:
            import anyio

            outcomes: list[str] = []

            async def one(n: int) -> None:
                try:
                    await a.holder.session.call_tool(
                        "ask_peer",
                        {"target": sid(2), "body": f"q{n}", "timeout_ms": 60_000},
                        read_timeout_seconds=1.0,  # past the 0.5 s grace: into the long wait
                    )
                    outcomes.append("answered")
                except Exception as exc:  # noqa: BLE001 - the client's timeout is the point
                    outcomes.append(type(exc).__name__)

            async with anyio.create_task_group() as tg:
                for n in range(10):
                    tg.start_soon(one, n)
            return outcomes

        outcomes = a._portal.call(cancelled_asks)
        assert len(outcomes) == 10 and "answered" not in outcomes, outcomes

        started = time.monotonic()
        late = a.ok("ask_peer", {"target": sid(2), "body": "last", "timeout_ms": 2000}, timeout_s=30)
        took = time.monotonic() - started
        assert late["timed_out"] is True and late["timeout_ms"] == 2000
        assert 1.9 < took < 4.0, took
        questions = [m["body"] for m in b.read()["messages"]]
        assert sorted(questions) == sorted([f"q{n}" for n in range(10)] + ["last"])  # all stay delivered


def test_a_slow_client_that_drains_a_large_read_late_never_gets_it_twice(tmp_path: Path) -> None:
    """A read response larger than the pipe buffer (~100 kB) that the client drains only after the
    unsent-restore window has passed was on its way: it settles, and the next read is empty."""
    import json

    with world(tmp_path) as w:
        (b,) = w.directs([("b", tmp_path, None)])
        b.claim(sid(2))
        env = w.env({"OXTAIL_UNSENT_RESTORE_MS": "500", "OXTAIL_READ_MAX_BODY_BYTES": "1000000"})
        proc = subprocess.Popen(
            [SERVER_COMMAND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stdin is not None and proc.stdout is not None
        pending = iter(range(1, 100))

        def send(method: str, params: dict, *, notify: bool = False) -> int | None:
            message: dict = {"jsonrpc": "2.0", "method": method, "params": params}
            request_id = None if notify else next(pending)
            if request_id is not None:
                message["id"] = request_id
            proc.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            return request_id

        def answer(request_id: int | None) -> dict:
            while True:
                message = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
                if message.get("id") == request_id:
                    return message

        def tool(name: str, arguments: dict) -> dict:
            reply = answer(send("tools/call", {"name": name, "arguments": arguments}))
            return json.loads(reply["result"]["content"][0]["text"])

        try:
            info = {"name": "slow-client", "version": "0"}
            params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": info}
            answer(send("initialize", params))
            send("notifications/initialized", {}, notify=True)
            assert tool("claim_session", {"session_id": sid(1)})["ok"] is True
            bodies = [f"{n:02d}" + "x" * 8000 for n in range(12)]
            for body in bodies:
                b.ok("send_message", {"target": sid(1), "body": body})

            request_id = send("tools/call", {"name": "read_my_messages", "arguments": {}})
            time.sleep(1.5)  # the client does not read its pipe: three restore windows pass
            first = json.loads(answer(request_id)["result"]["content"][0]["text"])
            assert [m["body"] for m in first["messages"]] == bodies
            assert tool("read_my_messages", {})["count"] == 0  # never delivered twice
        finally:
            proc.stdin.close()
            proc.wait(10)
