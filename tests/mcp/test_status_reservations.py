"""``oxtail-mcp status`` shows the project's standing reservations (and leaves the store untouched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.reservations import Reservation
from oxtail_fs.host import proctree
from oxtail_fs.store.fs_store import FsStore
from tests.support.e2e import sid


def status(home: Path, proj: Path, *flags: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXTAIL")}
    env["OXTAIL_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "oxtail_mcp", "status", str(proj), *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_status_lists_standing_reservations_in_the_table_and_the_json(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    home = tmp_path / "oxtail"
    store = FsStore(home)
    assert "File reservations" not in status(home, proj)
    assert "reservations" not in json.loads(status(home, proj, "--json"))
    server = subprocess.Popen(["sleep", "60"])
    try:
        store.registry_put(
            RegistryEntry(
                server_pid=server.pid,
                started_at=1,
                client=ClientInfo(type="codex", session_id=sid(1), cwd=str(proj)),
                process_start=proctree.process_start(server.pid),
            )
        )
        now = int(time.time() * 1000)
        held = Reservation("src/*.py", sid(1), True, now, now + 600_000, "parser", "alpha", "codex")
        ended = Reservation("old/", sid(1), True, now - 10, now - 1)
        store.reservations_update(os.path.realpath(proj), lambda _: ([held, ended], None))
        text = status(home, proj)
        assert f"File reservations:\n  src/*.py  exclusive  {sid(1)} (alpha)  until " in text
        assert text.rstrip().endswith("parser") and "old/" not in text
        body = json.loads(status(home, proj, "--json"))
        assert body["reservations"] == [held.view()]
        assert len(store.reservations_list(os.path.realpath(proj))) == 2  # read-only: nothing swept
    finally:
        server.kill()
        server.wait()
