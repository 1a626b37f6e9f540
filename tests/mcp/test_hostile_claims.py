"""Issue 15 item 7: sticky claim records never follow a planted ``claims/`` link or temp-name link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oxtail_core.model import Ancestor, ClaimRecord
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.identity import sticky


def record(tmp_path: Path, sid: str = "11111111-2222-3333-4444-555555555555") -> ClaimRecord:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("{}\n")
    ancestors = (Ancestor(os.getppid(), "sig"),)
    return ClaimRecord("claude-code", str(tmp_path), ancestors, sid, str(transcript), 1.0, os.getpid())


def test_a_symlinked_claims_dir_is_refused_and_files_there_are_never_deleted(tmp_path: Path) -> None:
    state, outside = tmp_path / "state", tmp_path / "outside"
    store = FsStore(state)  # the link is planted after the store was opened
    (state / "claims").rmdir()
    outside.mkdir()
    for name in ("package.json", "tsconfig.json", "precious.json"):
        (outside / name).write_text('{"name": "app"}')
    (state / "claims").symlink_to(outside, target_is_directory=True)
    assert sticky.write_claim(store, record(tmp_path), now_ms=2000) is False
    assert sorted(p.name for p in outside.iterdir()) == ["package.json", "precious.json", "tsconfig.json"]


def test_a_link_at_the_old_predictable_temp_name_is_never_written_through(tmp_path: Path) -> None:
    state, outside = tmp_path / "state", tmp_path / "outside"
    (state / "claims").mkdir(parents=True)
    outside.mkdir()
    notes = outside / "notes.txt"
    notes.write_text("mine")
    os.chmod(notes, 0o644)
    rec = record(tmp_path)
    (state / "claims" / f"{rec.key}.json.{os.getpid()}.tmp").symlink_to(notes)
    assert sticky.write_claim(FsStore(state), rec, now_ms=2000) is True
    assert notes.read_text() == "mine"
    assert stat.S_IMODE(os.stat(notes).st_mode) == 0o644
    assert (state / "claims" / f"{rec.key}.json").is_file()


def test_a_fifo_among_the_claims_does_not_hang_a_claim(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "claims").mkdir(parents=True)
    os.mkfifo(state / "claims" / ("0" * 32 + ".json"))
    assert sticky.write_claim(FsStore(state), record(tmp_path), now_ms=2000) is True


def test_the_process_ancestry_is_snapshotted_once_per_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    calls: list[int] = []
    real = sticky.ps_snapshot

    def counting() -> dict[int, tuple[int, str]]:
        calls.append(1)
        return real()

    mp.setattr(sticky, "ps_snapshot", counting)
    mp.setattr(sticky, "_ANCESTRY", {})
    first = sticky.current_ancestors(os.getppid())
    for _ in range(5):
        assert sticky.current_ancestors(os.getppid()) == first
    assert len(calls) == 1
