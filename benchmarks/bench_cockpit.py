"""CPU per cockpit refresh with 20 agents (issue 10's target: at most 20 ms per tick).

A tick is what the cockpit does when something changed: one frame read (the ``status`` snapshot
and the comms log) in its worker thread, then the redraw of every panel on the UI loop. Measured
as process CPU time (``time.process_time``), not wall time, so a loaded machine inflates it less;
the cheap poll between ticks (the state directory's fingerprint) is measured on its own.

The fleet is real state in a temp state directory: 20 agents whose servers are ``sleep``
processes, each with mail, a ledger of messages, half of them with an open ask and some with an
open delegation. Run: ``.venv/bin/python benchmarks/bench_cockpit.py [ticks]``.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oxtail_core import Context, Peer, RecordingWaker, SystemClock
from oxtail_fs.host import proctree
from oxtail_fs.host.project import LocalHost
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.cockpit.app import CockpitApp
from oxtail_mcp.cockpit.source import Source

AGENTS = 20


def fleet(proj: Path, ctx: Context, servers: list[subprocess.Popen[bytes]]) -> list[Peer]:
    peers = []
    for n in range(AGENTS):
        server = subprocess.Popen(["sleep", "600"], cwd=proj)
        servers.append(server)
        peer = Peer.join(
            ctx,
            server.pid,
            session_id=f"{n + 1:08x}-0000-4000-8000-{n + 1:012x}",
            client_type="claude-code",
            cwd=str(proj),
            process_start=proctree.process_start(server.pid),
        )
        peer.set_state(f"agent {n} working on part {n}")
        peers.append(peer)
    for n, peer in enumerate(peers):
        nxt = peers[(n + 1) % AGENTS].me.session_id or ""
        for k in range(5):
            peer.send(nxt, f"message {k} from {n}", action_required=k == 0 and n % 3 == 0)
        if n % 2:
            peer.ask(nxt, "are you done?", timeout_ms=10)
    return peers


async def ticks(source: Source, count: int) -> tuple[list[float], list[float], list[float]]:
    app = CockpitApp(source, poll_s=3600, tick_s=3600)
    reads, draws, polls = [], [], []
    async with app.run_test(size=(160, 60)) as pilot:
        while app.frame is None:
            await pilot.pause(0.05)
        for _ in range(count):
            started = time.process_time()
            frame = source.read()
            reads.append((time.process_time() - started) * 1000)
            started = time.process_time()
            app.show(frame)
            await pilot.pause()
            draws.append((time.process_time() - started) * 1000)
            started = time.process_time()
            source.fingerprint()
            polls.append((time.process_time() - started) * 1000)
    return reads, draws, polls


def main(count: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="oxtail-bench-cockpit-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        proj = tmp / "proj"
        (proj / ".git").mkdir(parents=True)
        home = tmp / "state"
        ctx = Context(FsStore(home), RecordingWaker(), SystemClock(), LocalHost())
        fleet(proj, ctx, servers)
        reads, draws, polls = asyncio.run(ticks(Source(ctx, str(proj), home, {}), count))
    finally:
        for server in servers:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    total = [r + d for r, d in zip(reads, draws, strict=True)]
    for name, samples in (("frame read", reads), ("redraw", draws), ("tick total", total), ("poll", polls)):
        p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
        median = statistics.median(samples)
        print(f"{name:>11}: median {median:6.2f} ms CPU, p95 {p95:6.2f} ms ({len(samples)} ticks)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
