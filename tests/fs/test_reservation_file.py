"""The reservation file's memos never serve a state the file does not hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oxtail_core.reservations import Reservation, release_step, reserve_step, sweep_step
from oxtail_core.wire import dumps, utf8
from oxtail_fs.store import reservation_file
from oxtail_fs.store.fs_store import FsStore
from tests.support.e2e import sid

A, B = sid(1), sid(2)
NOW = 1_700_000_000_000


def held(pattern: str, holder: str, expires: int = NOW + 60_000, **kw: object) -> Reservation:
    return Reservation(
        pattern=pattern, holder_session_id=holder, exclusive=True, reserved_at=NOW, expires_at=expires, **kw
    )  # type: ignore[arg-type]


def test_the_encoding_is_byte_for_byte_the_wire_dumps_of_the_records() -> None:
    records = [
        held("src/*.py", A, reason='é \ud800 "q" \n', holder_tmux="alpha", client_type="codex"),
        held("docs/", B, orphaned_at=NOW),
    ]
    for _ in range(2):  # computed, then remembered
        assert reservation_file.encode("k", records) == utf8(dumps([r.to_json() for r in records]))
    assert reservation_file.encode("k", []) == b"[]"


def test_a_file_another_process_rewrote_is_read_again_even_at_the_same_size(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    project = str(tmp_path / "p")
    live = frozenset({A, B})
    store.reservations_update(project, reserve_step([held("src/a.py", A)], NOW, live, 10_000))
    assert [r.pattern for r in store.reservations_list(project)] == ["src/a.py"]
    # Another process replaces the file with content of the same length: one different byte.
    script = (
        "import sys\n"
        "from oxtail_core.reservations import Reservation, release_step, reserve_step\n"
        "from oxtail_fs.store.fs_store import FsStore\n"
        "s = FsStore(sys.argv[1]); p = sys.argv[2]; a = sys.argv[3]; now = int(sys.argv[4])\n"
        "s.reservations_update(p, release_step(a, None, now, frozenset({a}), 10_000))\n"
        "w = Reservation(pattern='src/b.py', holder_session_id=a, exclusive=True, reserved_at=now,"
        " expires_at=now + 60_000)\n"
        "s.reservations_update(p, reserve_step([w], now, frozenset({a}), 10_000))\n"
    )
    path = store._reservations_file(project)
    before = path.read_bytes()
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), project, A, str(NOW)], check=True, timeout=60
    )
    after = path.read_bytes()
    assert len(after) == len(before) and after != before
    assert [r.pattern for r in store.reservations_list(project)] == ["src/b.py"]
    stepped = store.reservations_update(project, sweep_step(NOW, live, 10_000))
    assert [r.pattern for r in stepped] == ["src/b.py"]


def test_a_hand_edited_or_emptied_file_is_what_the_next_step_sees(tmp_path: Path) -> None:
    store = FsStore(tmp_path)
    project = str(tmp_path / "p")
    live = frozenset({A})
    store.reservations_update(project, reserve_step([held("x", A), held("y", A)], NOW, live, 10_000))
    path = store._reservations_file(project)
    path.write_bytes(b"[{torn")
    assert store.reservations_list(project) == []
    path.write_bytes(utf8(dumps([held("z", A).to_json()])))
    assert [r.pattern for r in store.reservations_list(project)] == ["z"]
    assert store.reservations_update(project, release_step(A, ["z"], NOW, live, 10_000)) == ["z"]
    assert not os.path.exists(path)
    assert store.reservations_list(project) == []


def test_content_past_the_memo_limit_is_parsed_each_time_and_never_kept(tmp_path: Path) -> None:
    records = [held(f"src/m{i}/" + "x" * 400 + ".py", A) for i in range(3000)]
    body = reservation_file.encode("big", records)
    assert len(body) > reservation_file.PARSED_MAX_BYTES
    assert "big" not in reservation_file._parsed
    assert reservation_file.parse("big", body) == records
    assert "big" not in reservation_file._parsed
