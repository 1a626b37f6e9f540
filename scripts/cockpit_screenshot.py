"""Regenerate docs/cockpit.svg: the cockpit, as Textual exports it, over a small troubled fleet.

    .venv/bin/python scripts/cockpit_screenshot.py [OUT.svg]

The fleet is real state made through the core in a temporary state directory: each agent's
"server" is a ``sleep`` process (killing one makes that agent dead, as a crashed server is).
``lead`` and ``review`` ask each other (a live deadlock), ``docs`` waits on ``tests``, which died
holding its question (an orphaned wait and stranded mail), ``build`` owes ``lead`` a delegation, and
the operator has nudged ``build``. Everything is stopped and removed at the end.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from oxtail_core import Context, Peer, RecordingWaker, SystemClock
from oxtail_core.effects import run
from oxtail_core.model import ActivityMarker
from oxtail_core.operator import NUDGE_BODY, Target, send
from oxtail_fs.host import proctree
from oxtail_fs.host.project import LocalHost
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.cockpit.app import CockpitApp
from oxtail_mcp.cockpit.source import Source

OUT = Path(__file__).resolve().parents[1] / "docs" / "cockpit.svg"
SIZE = (150, 46)
AGENTS = {
    "lead": ("1ead0000-0000-4000-8000-000000000001", "planning the v2 migration"),
    "review": ("2e0e0000-0000-4000-8000-000000000002", "reviewing the storage layer"),
    "docs": ("d0c50000-0000-4000-8000-000000000003", "rewriting getting-started"),
    "tests": ("7e570000-0000-4000-8000-000000000004", "fixing the flaky e2e test"),
    "build": ("b0110000-0000-4000-8000-000000000005", "packaging the wheels"),
}


def build_fleet(proj: Path, ctx: Context, servers: list[subprocess.Popen[bytes]]) -> dict[str, Peer]:
    peers = {}
    for name, (sid, purpose) in AGENTS.items():
        server = subprocess.Popen(["sleep", "600"], cwd=proj)
        servers.append(server)
        peer = Peer.join(
            ctx,
            server.pid,
            session_id=sid,
            client_type="codex" if name == "build" else "claude-code",
            cwd=str(proj),
            process_start=proctree.process_start(server.pid),
            tmux_session=name,
        )
        peer.set_state(purpose)
        peers[name] = peer
    peers["lead"].send(AGENTS["build"][0], "cut the 0.3 wheels and smoke-test them", action_required=True)
    for asker, asked in (("lead", "review"), ("review", "lead"), ("docs", "tests")):
        peers[asker].ask(AGENTS[asked][0], f"{asker} needs an answer from {asked}", timeout_ms=50)
    peers["build"].send(AGENTS["docs"][0], "the install commands changed: pipx install oxtail-mcp")
    now = ctx.clock.now_ms()
    ctx.store.activity_put(AGENTS["build"][0], ActivityMarker("busy", now))
    ctx.store.activity_put(AGENTS["docs"][0], ActivityMarker("idle", now - 30_000))
    run(send(ctx, Target(AGENTS["build"][0], peers["build"].me.server_pid), NUDGE_BODY), ctx.store, ctx.clock)
    tests = servers[list(AGENTS).index("tests")]
    tests.kill()
    tests.wait()
    return peers


async def shoot(source: Source, out: Path) -> None:
    app = CockpitApp(source, tick_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        while app.frame is None:
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        out.write_text(app.export_screenshot(title="oxtail cockpit"))


def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="oxtail-shot-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        proj = tmp / "acme"
        (proj / ".git").mkdir(parents=True)
        home = tmp / "state"
        ctx = Context(FsStore(home), RecordingWaker(), SystemClock(), LocalHost())
        build_fleet(proj, ctx, servers)
        asyncio.run(shoot(Source(ctx, str(proj), home, {}), out))
    finally:
        for server in servers:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
