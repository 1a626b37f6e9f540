"""Issue 15 items 7, 8, 12, 13: planted symlinks, FIFOs and devices, loose modes and floods in the state dir.

Each test plants what a hostile same-user process (T2) could plant, then
checks the store refuses it with a StoreError, never follows, hangs or loses.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.errors import InboxFull, StoreError
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.model import Envelope
from oxtail_core.protocols import Holder, InboxId
from oxtail_fs.store.atomic import open_regular
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import TOP_DIRS, Layout, inbox_stem, lock_path

INBOX = InboxId("session", "agent-b")
HOLDER = Holder(pid=os.getpid(), process_start=None)


def env(n: int, body: str = "hi") -> Envelope:
    return Envelope(id=f"{n:016x}", body=body, enqueued_at=1, body_bytes=len(body))


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it has not returned in time."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(("ok", call()))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out.append(("raised", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"{call} did not return within {seconds}s"
    return out[0]


def world(tmp_path: Path) -> tuple[Path, Path]:
    home, outside = tmp_path / "home", tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.json").write_text('{"name": "app"}')
    return home, outside


@pytest.mark.parametrize("name", TOP_DIRS)
def test_a_symlinked_state_directory_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path, name: str
) -> None:
    home, outside = world(tmp_path)
    FsStore(home)
    (home / name).rmdir()
    (home / name).symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="symlink"):
        FsStore(home)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.json"]


def test_a_symlinked_in_flight_directory_is_refused_not_written_through(tmp_path: Path) -> None:
    home, outside = world(tmp_path)
    store = FsStore(home)
    store.append(INBOX, [env(1)])
    (home / "inflight" / inbox_stem(INBOX)).symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="symlink"):
        store.take(INBOX, lambda msgs: range(len(msgs)), HOLDER)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.json"]
    assert store.depth(INBOX) == 1


def test_a_symlinked_ledger_is_never_read_so_a_forged_record_cannot_route_a_reply(tmp_path: Path) -> None:
    home, outside = world(tmp_path)
    store = FsStore(home)
    forged = outside / "ledger.jsonl"
    forged.write_text('{"schema_version":1,"id":"00000000000000aa","body":"x","from_session_id":"evil"}\n')
    Layout(home).ledger("agent-b").symlink_to(forged)
    with pytest.raises(StoreError):
        store.ledger_lookup("agent-b", "00000000000000aa")
    with pytest.raises(StoreError):
        store.ledger_record("agent-b", env(2), 10)
    assert forged.read_text().count("\n") == 1


def test_a_symlinked_inbox_is_refused_for_reads_too(tmp_path: Path) -> None:
    home, _ = world(tmp_path)
    store = FsStore(home)
    Layout(home).inbox(INBOX).symlink_to("/dev/zero")
    kind, result = within(10, lambda: store.take(INBOX, lambda msgs: range(len(msgs)), HOLDER))
    assert kind == "raised" and isinstance(result, StoreError), result
    with pytest.raises(StoreError):
        store.depth(INBOX)


def test_a_fifo_inbox_refuses_the_sender_and_does_not_hang_the_reader(tmp_path: Path) -> None:
    home, _ = world(tmp_path)
    store = FsStore(home)
    os.mkfifo(Layout(home).inbox(INBOX))
    kind, result = within(10, lambda: store.append(INBOX, [env(1)]))
    assert kind == "raised" and isinstance(result, StoreError), result
    kind, result = within(10, lambda: store.take(INBOX, lambda msgs: range(len(msgs)), HOLDER))
    assert kind == "raised" and isinstance(result, StoreError), result
    assert "not a regular file" in str(result)


def test_a_fifo_ledger_does_not_hang_the_sender(tmp_path: Path) -> None:
    home, _ = world(tmp_path)
    store = FsStore(home)
    os.mkfifo(Layout(home).ledger("agent-b"))
    kind, result = within(10, lambda: store.ledger_record("agent-b", env(1), 10))
    assert kind == "raised" and isinstance(result, StoreError), result
    kind, result = within(10, lambda: store.ledger_lookup("agent-b", env(1).id))
    assert kind == "raised" and isinstance(result, StoreError), result


def test_a_fifo_lock_sidecar_is_refused_without_hanging(tmp_path: Path) -> None:
    home, _ = world(tmp_path)
    store = FsStore(home)
    os.mkfifo(lock_path(Layout(home).inbox(INBOX)))
    kind, result = within(10, lambda: store.append(INBOX, [env(1)]))
    assert kind == "raised" and isinstance(result, StoreError), result


def test_open_regular_refuses_devices_and_fifos_and_caps_what_it_reads(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_regular(Path("/dev/zero"), 1 << 20)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    kind, result = within(10, lambda: open_regular(fifo, 1 << 20))
    assert kind == "raised" and isinstance(result, StoreError), result
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 5000 + b"\n" + b"y" * 5000)
    with open_regular(big, 4096) as fh:
        assert len(fh.read()) == 4096
    with open_regular(big, 1 << 20) as fh:
        assert [len(line) for line in fh] == [5001, 5000]


def test_pre_existing_loose_files_and_dirs_are_tightened_when_we_open_them(tmp_path: Path) -> None:
    home, _ = world(tmp_path)
    FsStore(home)
    os.chmod(home / "claims", 0o755)
    inbox = Layout(home).inbox(INBOX)
    inbox.write_bytes(b"")
    os.chmod(inbox, 0o644)
    lock = lock_path(inbox)
    lock.write_bytes(b"")
    os.chmod(lock, 0o666)
    store = FsStore(home)
    store.append(INBOX, [env(1)])
    assert stat.S_IMODE(os.stat(home / "claims").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(inbox).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600


def test_an_inbox_at_its_cap_refuses_the_sender_with_inbox_full_and_keeps_what_it_holds(
    tmp_path: Path,
) -> None:
    home, _ = world(tmp_path)
    store = FsStore(home)
    inbox = Layout(home).inbox(INBOX)
    store.append(INBOX, [env(1)])
    with open(inbox, "ab") as fh:  # a flood, written fast: pad to just under the cap
        fh.truncate(INBOX_MAX_BYTES - 10)
    with pytest.raises(InboxFull, match="inbox-full") as caught:
        store.append(INBOX, [env(2)])
    assert caught.value.code == "inbox-full"
    assert os.stat(inbox).st_size == INBOX_MAX_BYTES - 10
    os.truncate(inbox, 0)
    assert store.append(INBOX, [env(3)]) is True


def test_a_waiting_line_is_parsed_once_however_many_reads_it_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oxtail_fs.store.inbox as inbox_module

    store = FsStore(tmp_path / "home")
    store.append(INBOX, [env(n) for n in range(100)])
    parsed: list[str] = []
    real = inbox_module.envelope_from_line

    def counting(line: str) -> Envelope:
        parsed.append(line)
        return real(line)

    monkeypatch.setattr(inbox_module, "envelope_from_line", counting)
    for _ in range(5):
        batch = store.take(INBOX, lambda msgs: range(min(10, len(msgs))), HOLDER)
        assert batch is not None
        store.settle(batch)
    assert len(parsed) == 100
    assert store.depth(INBOX) == 50
