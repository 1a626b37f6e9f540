"""Issue 15 item 13: ``MCP_TRACE_FILE`` is private and never followed or waited on."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from oxtail_mcp.server.tracefile import FileTracer


def test_the_trace_file_is_created_0600_and_a_looser_one_is_tightened(tmp_path: Path) -> None:
    trace = tmp_path / "t" / "trace.jsonl"
    FileTracer(trace).emit("hello", session_id="s")
    assert stat.S_IMODE(os.stat(trace).st_mode) == 0o600
    os.chmod(trace, 0o644)
    FileTracer(trace).emit("again")
    assert stat.S_IMODE(os.stat(trace).st_mode) == 0o600
    assert trace.read_text().count("\n") == 2


def test_a_symlinked_trace_file_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "notes.txt"
    outside.write_text("mine")
    os.chmod(outside, 0o644)
    (tmp_path / "trace.jsonl").symlink_to(outside)
    FileTracer(tmp_path / "trace.jsonl").emit("hello")
    assert outside.read_text() == "mine"
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644


def test_a_fifo_trace_file_never_blocks_an_emit(tmp_path: Path) -> None:
    fifo = tmp_path / "trace.jsonl"
    os.mkfifo(fifo)
    done = threading.Event()

    def emit() -> None:
        FileTracer(fifo).emit("hello")
        done.set()

    threading.Thread(target=emit, daemon=True).start()
    assert done.wait(10)
