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

from e2e import World, sid, world

HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def inbox_lock(w: World, session_id: str) -> Path:
    from oxtail_core.protocols import InboxId
    from oxtail_fs.layout import Layout, lock_path

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
