"""FsStore's reservation files: private, hashed names, whole-file replacement, hostile files refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from oxtail_core.errors import StoreError
from oxtail_core.ids import hash32
from oxtail_core.reservations import Reservation
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.names import RESERVATIONS_MAX_BYTES

PROJECT = "/work/../etc/passwd project"
HELD = Reservation("src/*.py", "A", True, 1, 2)


def put(store: FsStore, *records: Reservation) -> None:
    store.reservations_update(PROJECT, lambda _: (list(records), None))


def test_a_projects_file_is_private_and_named_by_a_hash_of_the_project(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    put(store, HELD)
    directory = tmp_path / "home" / "reservations"
    assert sorted(os.listdir(directory)) == sorted(
        [f"{hash32(PROJECT)}.json", f"{hash32(PROJECT)}.json.lock"]
    )
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for name in os.listdir(directory):
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    put(store)  # nothing left: the data file goes
    assert os.listdir(directory) == [f"{hash32(PROJECT)}.json.lock"]


def test_a_corrupt_record_is_skipped_and_the_rest_served(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    path = tmp_path / "home" / "reservations" / f"{hash32(PROJECT)}.json"
    unmatchable = {**HELD.to_json(), "pattern": "!src/*.py"}  # hand-edited: a negation cannot be held
    path.write_text(json.dumps([{"pattern": 5}, "x", unmatchable, HELD.to_json()]))
    assert store.reservations_list(PROJECT) == [HELD]
    path.write_bytes(b"\xff not json")
    assert store.reservations_list(PROJECT) == []


def test_a_planted_link_or_a_huge_file_is_refused_never_followed_or_overwritten(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    path = tmp_path / "home" / "reservations" / f"{hash32(PROJECT)}.json"
    target = tmp_path / "precious"
    target.write_text("[]")
    path.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        put(store, HELD)
    assert target.read_text() == "[]"
    path.unlink()
    path.write_bytes(b" " * (RESERVATIONS_MAX_BYTES + 1))
    with pytest.raises(StoreError, match="refusing"):
        store.reservations_list(PROJECT)
    assert path.stat().st_size == RESERVATIONS_MAX_BYTES + 1


def test_a_linked_reservations_directory_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    FsStore(home)
    (home / "reservations").rmdir()
    (tmp_path / "elsewhere").mkdir()
    (home / "reservations").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="symlink"):
        FsStore(home)


RACER = """
import sys
from pathlib import Path
from oxtail_core.reservations import Reservation, reserve_step
from oxtail_fs.store.fs_store import FsStore
home, who = Path(sys.argv[1]), sys.argv[2]
sys.stdin.readline()  # start together
want = [Reservation("src/**", who, True, 1, 10**13)]
result = FsStore(home).reservations_update("/p", reserve_step(want, 2, frozenset({who}), 10_000))
print("granted" if result.granted else "refused", flush=True)
"""


def test_concurrent_processes_reserving_one_path_exclusively_grant_exactly_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    FsStore(tmp_path / "home")
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "home"), f"S{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    for racer in racers:  # all of them are up and importing; release them at once
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    outputs = [r.communicate(timeout=60)[0].strip() for r in racers]
    assert sorted(outputs) == ["granted"] + ["refused"] * 5
    (held,) = FsStore(tmp_path / "home").reservations_list("/p")
    assert outputs[int(held.holder_session_id[1:])] == "granted"
