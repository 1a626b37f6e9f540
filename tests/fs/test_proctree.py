"""Process ancestry from /proc, start times and pid-reuse-safe liveness."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from oxtail_fs.host import proctree
from oxtail_fs.host.proctree import (
    ancestry,
    is_alive,
    nearest_ancestor_in,
    parse_ppid,
    ppid_of,
    process_start,
)


def _stat_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


# parse_ppid -------------------------------------------------------------------
def test_parse_ppid_splits_at_the_last_parenthesis() -> None:
    assert parse_ppid("123 (a) (b) S 45 123 123 0 -1") == 45
    assert parse_ppid("7 (x) ( y) R 1 7 7") == 1
    assert parse_ppid("9 (plain) S 3 9 9") == 3


@pytest.mark.parametrize("text", ["", "no parens here", "1 (a)", "1 (a) S notanumber"])
def test_parse_ppid_rejects_other_shapes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ppid(text)


def test_ppid_of_a_process_whose_comm_holds_paren_space_paren(tmp_path: Path) -> None:
    odd = tmp_path / "x) (y) z"
    odd.symlink_to("/usr/bin/sleep")
    child = subprocess.Popen([str(odd), "100"])
    try:
        deadline = time.monotonic() + 5
        while ") (" not in Path(f"/proc/{child.pid}/comm").read_text() and time.monotonic() < deadline:
            time.sleep(0.005)  # until the child has exec'd and taken its odd name
        assert ") (" in Path(f"/proc/{child.pid}/comm").read_text()
        assert ppid_of(child.pid) == os.getpid()
    finally:
        child.kill()
        child.wait()


def test_ppid_of_a_missing_process_is_none() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert ppid_of(child.pid) is None


# ancestry -------------------------------------------------------------------
def test_ancestry_matches_psutil_parents() -> None:
    mine = list(ancestry(os.getpid()))
    expected = [os.getpid(), *(p.pid for p in psutil.Process().parents() if p.pid > 1)]
    assert mine == expected


def test_ancestry_of_a_grandchild_passes_through_its_parent() -> None:
    script = "import subprocess,sys; p=subprocess.Popen(['sleep','100']); print(p.pid, flush=True); p.wait()"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        chain = list(ancestry(grandchild))
        assert chain[:3] == [grandchild, parent.pid, os.getpid()]
        assert chain == [grandchild, *(p.pid for p in psutil.Process(grandchild).parents() if p.pid > 1)]
    finally:
        for proc in psutil.Process(parent.pid).children():
            proc.kill()
        parent.wait()


FAKE_PARENTS = {4000: 3000, 3000: 2000, 2000: 1000, 1000: 1, 1: 1, 100: 200, 200: 100}


def test_nearest_ancestor_walks_up_to_a_wanted_pid() -> None:
    assert nearest_ancestor_in(4000, {2000: "%7"}, FAKE_PARENTS.get) == "%7"
    assert nearest_ancestor_in(2000, {2000: "%7"}, FAKE_PARENTS.get) == "%7"  # the start itself


def test_nearest_ancestor_stops_at_init_and_unknown_parents() -> None:
    assert nearest_ancestor_in(4000, {1: "%1"}, FAKE_PARENTS.get) is None  # 1 -> 1 never loops
    assert nearest_ancestor_in(4000, {9: "%9"}, FAKE_PARENTS.get) is None
    assert nearest_ancestor_in(555, {9: "%9"}, FAKE_PARENTS.get) is None  # unknown start


def test_nearest_ancestor_terminates_on_a_ppid_cycle() -> None:
    calls: list[int] = []

    def parent_of(pid: int) -> int | None:
        calls.append(pid)
        return FAKE_PARENTS.get(pid)

    assert nearest_ancestor_in(100, {9: "%9"}, parent_of) is None
    assert len(calls) == proctree.MAX_HOPS


def test_nearest_ancestor_with_nothing_wanted_reads_no_parents() -> None:
    def parent_of(pid: int) -> int | None:
        raise AssertionError("the process table must not be read")

    assert nearest_ancestor_in(4000, {}, parent_of) is None


# start time and liveness ------------------------------------------------------
def test_process_start_matches_psutil() -> None:
    start = process_start(os.getpid())
    assert start is not None
    assert start == psutil.Process().create_time()


def test_is_alive_for_self_with_and_without_start() -> None:
    start = process_start(os.getpid())
    assert start is not None
    assert is_alive(os.getpid())
    assert is_alive(os.getpid(), start)
    assert is_alive(os.getpid(), start + 0.04)  # within clock-tick tolerance


def test_is_alive_rejects_a_different_start_time() -> None:
    start = process_start(os.getpid())
    assert start is not None
    assert not is_alive(os.getpid(), start - 1.0)
    assert not is_alive(os.getpid(), start + 0.2)


def test_a_reaped_child_is_dead() -> None:
    child = subprocess.Popen(["true"])
    start = process_start(child.pid)
    child.wait()
    assert not is_alive(child.pid)
    assert not is_alive(child.pid, start)
    assert process_start(child.pid) is None


def test_a_zombie_is_dead() -> None:
    child = subprocess.Popen(["true"])
    try:
        for _ in range(500):
            if _stat_state(child.pid) == "Z":
                break
            time.sleep(0.01)
        assert _stat_state(child.pid) == "Z"
        assert ppid_of(child.pid) == os.getpid()  # still in the table...
        assert not is_alive(child.pid)  # ...but finished
    finally:
        child.wait()


@pytest.mark.parametrize("pid", [0, -1])
def test_non_positive_pids_are_never_alive(pid: int) -> None:
    assert not is_alive(pid)


def test_start_times_from_proc_equal_psutils() -> None:
    from oxtail_fs.host.proctree import process_start

    for pid in (1, os.getpid(), os.getppid()):
        assert process_start(pid) == pytest.approx(psutil.Process(pid).create_time(), abs=0.011)


def test_a_zombie_is_not_alive() -> None:
    from oxtail_fs.host.proctree import is_alive

    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        assert not is_alive(child.pid)
    finally:
        child.wait()
