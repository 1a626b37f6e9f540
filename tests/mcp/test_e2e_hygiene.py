"""Lifecycle hygiene over real ``oxtail-mcp`` processes (selfheal §4): a server sweeps what killed
processes left in the store as it starts, and a server whose stdin ends before it ever served
(EOF during startup, S32) still exits and leaves no registry entry behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from oxtail_core.protocols import Holder, InboxId
from oxtail_core.testing.contract import mint
from oxtail_fs.store.fs_store import FsStore
from tests.support.e2e import World, spawn_raw, wait_until


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def test_a_starting_server_sweeps_a_dead_writers_temp_and_an_empty_orphaned_inbox(tmp_path: Path) -> None:
    w = World(tmp_path)
    proj = w.project("proj")
    store = FsStore(w.oxtail_home)
    orphan = InboxId.for_process(dead_pid(), 1)
    store.append(orphan, [mint(1)])
    batch = store.take(orphan, lambda es: range(len(es)), Holder(pid=os.getpid()))
    assert batch is not None
    store.settle(batch)
    box = store._layout.inbox(orphan)
    lock = box.with_name(box.name + ".lock")
    for path in (box, lock):
        age(path, 8 * 86_400)
    temp = w.oxtail_home / "registry" / f"5.json.{dead_pid()}.0123456789ab.tmp"
    temp.write_bytes(b"{half")
    age(temp, 3600)
    mail = InboxId.for_session("someone-with-mail")
    store.append(mail, [mint(2)])
    age(store._layout.inbox(mail), 8 * 86_400)
    proc = spawn_raw(w, proj)
    try:
        assert wait_until(lambda: not temp.exists() and not box.exists() and not lock.exists(), 20)
        assert store.depth(mail) == 1  # mail is never swept
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        w.close()


def test_stdin_closed_before_the_server_ever_served_still_exits_and_unregisters(tmp_path: Path) -> None:
    w = World(tmp_path)
    proj = w.project("proj")
    proc = spawn_raw(w, proj)
    try:
        assert proc.stdin is not None
        proc.stdin.close()  # EOF during startup: before any handshake, perhaps before any listener
        assert proc.wait(20) == 0
        assert not list((w.oxtail_home / "registry").glob("*.json"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        w.close()
