"""The server's Settler settles a read right after its response's last byte is written, with only the
store's commit in between, writes receipts then, and none for a read it puts back."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from oxtail_core import Context, FakeClock, MemoryHost, Peer, RecordingWaker
from oxtail_core.errors import StoreError
from oxtail_core.trace import ListTracer
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.server.app import Settler
from tests.support.world import A, B, make_world


class _Pipe:
    """The stdout pipe as :meth:`Settler.deliver` drives it; ``flush`` writes the line's last byte."""

    def __init__(self, flush: Any) -> None:
        self.flush = flush
        self.written = b""

    def write_all(self, data: bytes | memoryview) -> None:
        self.written += bytes(data)

    def wait_writable(self) -> None:
        pass

    def takes_at_once(self, size: int) -> bool:
        return False

    def write_held(self, data: bytes) -> None:
        assert data == b"\n", "only the newline is written with the GIL held here"
        self.flush()
        self.written += data


def _flush_then_settle(settler: Settler, request_id: int, flush: Any) -> None:
    settler.queued.append(request_id)
    settler.deliver(request_id, b'{"result":{}}\n', _Pipe(flush))  # type: ignore[arg-type]


def test_a_flushed_read_is_receipted_and_a_read_put_back_is_not() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    first, second = a.send(B, "one"), a.send(B, "two")
    settler = Settler(SimpleNamespace(ctx=w.ctx))  # type: ignore[arg-type]
    got = b.read_messages(settle=False)
    assert got.handoff is not None and len(got.messages) == 2
    settler.hold(7, got.handoff)
    settler.restore(7)  # the response never reached the pipe (A6)
    assert w.store.receipt_get(first.message_id) is None  # type: ignore[union-attr]
    again = b.read_messages(settle=False)
    assert again.handoff is not None and [m.id for m in again.messages] == [m.id for m in got.messages]
    settler.hold(8, again.handoff)
    _flush_then_settle(settler, 8, lambda: None)
    assert settler.waiting == {} and list(settler.queued) == []
    for sent in (first, second):
        receipt = w.store.receipt_get(sent.message_id)  # type: ignore[union-attr]
        assert receipt is not None and (receipt.via, receipt.recipient_session_id) == ("read_my_messages", B)


def test_a_failed_flush_keeps_the_batch_to_be_put_back() -> None:
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    sent = a.send(B, "one")
    settler = Settler(SimpleNamespace(ctx=w.ctx))  # type: ignore[arg-type]
    got = b.read_messages(settle=False)
    assert got.handoff is not None
    settler.hold(9, got.handoff)

    def broken_pipe() -> None:
        raise BrokenPipeError

    with pytest.raises(BrokenPipeError):
        _flush_then_settle(settler, 9, broken_pipe)
    assert w.store.receipt_get(sent.message_id) is None  # type: ignore[union-attr]
    settler.restore_all()
    assert [m.id for m in b.read_messages().messages] == [sent.message_id]


def test_between_the_write_and_settled_there_is_one_unlink_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate window: a kill after the response is on the pipe and before the batch file is
    gone brings the batch back, so that stretch holds the commit alone (no listing, lock or open)."""
    store = FsStore(tmp_path / "state")
    ctx = Context(store, RecordingWaker({"%1"}), FakeClock(), MemoryHost(), tracer=ListTracer())
    a = Peer.join(ctx, 1, session_id=A, cwd="/p")
    b = Peer.join(ctx, 2, session_id=B, cwd="/p")
    a.send(B, "one")
    got = b.read_messages(settle=False)
    assert got.handoff is not None
    settler = Settler(SimpleNamespace(ctx=ctx))  # type: ignore[arg-type]
    settler.hold(3, got.handoff)
    calls: list[tuple[str, str]] = []
    recording = [False]

    def spy(name: str) -> Any:
        real = getattr(os, name)

        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if recording[0]:
                calls.append((name, os.fspath(path) if isinstance(path, str | os.PathLike) else repr(path)))
            return real(path, *args, **kwargs)

        return call

    for name in ("open", "listdir", "scandir", "unlink", "rename", "replace", "stat", "lstat", "mkdir"):
        monkeypatch.setattr(os, name, spy(name))

    def write() -> None:
        recording[0] = True  # the response is on the pipe from here on

    _flush_then_settle(settler, 3, write)
    recording[0] = False
    batch_files = [c for c in calls if c[0] == "unlink" and got.handoff.batch.batch_id in c[1]]
    assert batch_files and calls[0] == batch_files[0], calls[:5]
    assert store.in_flight(got.handoff.batch.inbox) == []


def test_a_commit_that_fails_after_the_newline_is_traced_and_the_writer_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The response is on the pipe: the client has the messages, so a failed commit is no failed
    write (the writer must not stop, nor the batch be put back to be delivered again while we live)."""
    w = make_world()
    a, b = w.join(1, A), w.join(2, B)
    a.send(B, "one")
    got = b.read_messages(settle=False)
    assert got.handoff is not None
    tracer = ListTracer()
    settler = Settler(SimpleNamespace(ctx=attrs.evolve(w.ctx, tracer=tracer)))  # type: ignore[arg-type]
    settler.hold(4, got.handoff)

    def refuse(batch: Any) -> Any:
        def commit() -> None:
            raise StoreError("the disk is gone")

        return commit

    monkeypatch.setattr(w.store, "prepare_settle", refuse)
    pipe = _Pipe(lambda: None)
    settler.queued.append(4)
    settler.deliver(4, b'{"result":{}}\n', pipe)  # type: ignore[arg-type]
    assert pipe.written == b'{"result":{}}\n' and list(settler.queued) == [] and settler.waiting == {}
    assert [f["error"] for f in tracer.named("settle_failed")] == ["the disk is gone"]
    assert [x.batch_id for x in w.store.in_flight(got.handoff.batch.inbox)] == [got.handoff.batch.batch_id]
