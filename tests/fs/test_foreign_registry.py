"""Ours and the reference (Node) oxtail on one state directory: who sees whom (issue 9, defect 1).

The reference files are written by hand in the shapes discovery.md §3.1 gives
(0.15.0) and 0.32.1's ``registry.ts`` adds (``proc_sig``, ``mailbox_key``, two
more capabilities). The reference reads ``sessions/<pid>.json`` only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oxtail_core import Context, FakeClock, MemoryHost, RecordingWaker
from oxtail_core.convert import to_wire
from oxtail_core.foreign import ForeignEntry
from oxtail_core.model import ClientInfo, Envelope, RegistryEntry
from oxtail_core.routing import live_entries, process_inbox, resolve_target, session_inbox
from oxtail_fs.store.fs_store import FsStore

OURS = "aaaaaaaa-0000-4000-8000-000000000001"
NODE = "bbbbbbbb-0000-4000-8000-000000000002"


def reference_015(pid: int, session_id: str | None, tmux_session: str | None = None) -> dict:
    return {
        "server_pid": pid,
        "started_at": 1_780_000_000,
        "client": {
            "type": "claude-code",
            "session_id": session_id,
            "transcript_path": None,
            "session_id_source": "env" if session_id else None,
            "cwd": "/p",
        },
        "tmux_pane": "%3",
        "tmux_session": tmux_session,
        "state": None,
        "capabilities": {"mailbox": {"reply_to": True, "provenance": True, "push_budget": True}},
    }


def reference_0321(pid: int, session_id: str | None) -> dict:
    entry = reference_015(pid, session_id)
    entry["proc_sig"] = "Wed Dec  2 00:04:17 2026"
    entry["mailbox_key"] = "3f1c0a9e" if session_id else None
    entry["capabilities"]["mailbox"].update(session_keyed=True, obligations=True)
    return entry


def write_reference(home: Path, entry: dict) -> Path:
    """As the reference's ``register`` does: ``sessions/<pid>.json``, 2-space JSON, no newline."""
    sessions = home / "sessions"
    sessions.mkdir(mode=0o700, exist_ok=True)
    path = sessions / f"{entry['server_pid']}.json"
    path.write_text(json.dumps(entry, indent=2))
    return path


def ours(pid: int, session_id: str | None, process_start: float | None = 1234.5) -> RegistryEntry:
    return RegistryEntry(
        server_pid=pid,
        started_at=1_780_000_000,
        client=ClientInfo(type="codex", session_id=session_id, cwd="/p"),
        process_start=process_start,
    )


def reference_reads(home: Path) -> list[int]:
    """The pids the reference's registry reader accepts: ``sessions/<pid>.json`` whose server_pid matches."""
    found = []
    sessions = home / "sessions"
    for path in sessions.iterdir() if sessions.is_dir() else ():
        if path.stem.isdigit() and path.suffix == ".json":
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            if data.get("server_pid") == int(path.stem):
                found.append(int(path.stem))
    return found


@pytest.fixture
def fs(tmp_path: Path) -> FsStore:
    return FsStore(tmp_path / "oxtail")


def test_our_entries_are_published_where_the_reference_never_looks(fs: FsStore) -> None:
    fs.registry_put(ours(10, OURS))
    assert (fs.home / "registry" / "10.json").is_file()
    assert not (fs.home / "sessions").exists()
    write_reference(fs.home, reference_015(20, NODE))
    assert reference_reads(fs.home) == [20]  # the reference sees only itself: its sends to us fail
    assert [(e.server_pid, type(e)) for e in fs.registry_entries()] == [
        (10, RegistryEntry),
        (20, ForeignEntry),
    ]


@pytest.mark.parametrize("shape", [reference_015, reference_0321], ids=["0.15.0", "0.32.1"])
def test_a_reference_entry_is_read_as_foreign_with_its_fields(fs: FsStore, shape: object) -> None:
    write_reference(fs.home, shape(20, NODE))  # type: ignore[operator]
    (entry,) = fs.registry_entries()
    assert isinstance(entry, ForeignEntry)
    assert (entry.session_id, entry.tmux_pane, entry.client.type) == (NODE, "%3", "claude-code")
    assert entry.process_start is None


def test_a_forged_or_broken_reference_file_is_skipped(fs: FsStore) -> None:
    write_reference(fs.home, reference_015(20, NODE))
    (fs.home / "sessions" / "21.json").write_text(json.dumps(reference_015(20, NODE)))  # name says 21
    (fs.home / "sessions" / "22.json").write_text("{not json")
    (fs.home / "sessions" / "23.json.4242.tmp").write_text(json.dumps(reference_015(23, NODE)))
    assert [e.server_pid for e in fs.registry_entries()] == [20]


def test_a_symlinked_reference_directory_is_not_followed(fs: FsStore, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "20.json").write_text(json.dumps(reference_015(20, NODE)))
    (fs.home / "sessions").symlink_to(elsewhere, target_is_directory=True)
    fs.registry_put(ours(10, OURS))
    assert [e.server_pid for e in fs.registry_entries()] == [10]


def test_a_reference_entry_is_never_removed_by_us(fs: FsStore) -> None:
    path = write_reference(fs.home, reference_0321(20, None))
    (entry,) = fs.registry_entries()
    assert fs.registry_remove_if_drained(entry, process_inbox(entry)) is False
    fs.registry_remove(20)
    assert path.is_file()


def test_mail_is_never_appended_for_a_reference_entry(fs: FsStore) -> None:
    write_reference(fs.home, reference_015(20, NODE))
    (entry,) = fs.registry_entries()
    assert (
        fs.append(session_inbox(NODE), [Envelope(id="00000000000000aa", body="x")], only_if_registered=entry)
        is False
    )
    assert fs.depth(session_inbox(NODE)) == 0


def test_our_entry_from_before_the_move_stays_reachable_and_reapable(fs: FsStore) -> None:
    old = ours(30, None)
    legacy = fs.home / "sessions"
    legacy.mkdir()
    (legacy / "30.json").write_text(json.dumps(to_wire(old), indent=2))
    (entry,) = fs.registry_entries()
    assert type(entry) is RegistryEntry and entry == old
    mail = Envelope(id="00000000000000ab", body="to the old server")
    assert fs.append(process_inbox(old), [mail], only_if_registered=entry) is True
    assert fs.registry_remove_if_drained(entry, process_inbox(old)) is False  # mail waits: kept
    assert (legacy / "30.json").is_file()


def test_a_drained_entry_of_ours_from_before_the_move_is_reaped(fs: FsStore) -> None:
    old = ours(30, OURS)
    (fs.home / "sessions").mkdir()
    (fs.home / "sessions" / "30.json").write_text(json.dumps(to_wire(old), indent=2))
    (entry,) = fs.registry_entries()
    assert fs.registry_remove_if_drained(entry, process_inbox(entry)) is True
    assert fs.registry_entries() == []


def test_a_reference_entry_on_the_pid_of_our_live_server_is_stale_and_hidden(fs: FsStore) -> None:
    host = MemoryHost()
    ctx = Context(fs, RecordingWaker(set()), FakeClock(), host)
    me = ours(os.getpid(), OURS)
    fs.registry_put(me)
    write_reference(fs.home, reference_015(os.getpid(), NODE, tmux_session="node"))
    write_reference(fs.home, reference_015(40, None, tmux_session="node"))
    assert [(e.server_pid, type(e)) for e in live_entries(ctx)] == [
        (os.getpid(), RegistryEntry),
        (40, ForeignEntry),
    ]
    refused = resolve_target(ctx, ours(50, None), "node")
    assert getattr(refused, "error", None) == "foreign-peer"
