"""A cross-host ``ask_peer`` round trip (issue 11: ≤ 20 ms with a peer that answers on notice).

Run: ``.venv/bin/python benchmarks/bench_cross_host.py [--asks 50] [--poll-ms 2]``.

Two "hosts" as tests/redis/test_two_hosts_e2e.py builds them (own HOME and OXTAIL_HOME, own
private tmux server, own OXTAIL_HOST_ID, one real redis-server, one repository cloned per host):
the asker is a real ``oxtail-mcp`` on h1 behind the official client; the peer is a real
``oxtail-mcp`` in a pane of h2, whose agent answers every question it reads (a read every
``--poll-ms``: "on notice"). The same asks are measured in the same run between two agents on one
machine's filesystem store, the baseline. Prints p50 / p90 / max per side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.redis.server import start_server
from tests.support.e2e import AgentBase, sid, world


def clones(tmp: Path) -> tuple[Path, Path]:
    origin = tmp / "origin"
    origin.mkdir()
    git("init", "-q", cwd=origin)
    who = ("-c", "user.email=b@e", "-c", "user.name=b")
    git(*who, "commit", "-q", "--allow-empty", "-m", "root", cwd=origin)
    one, two = tmp / "h1" / "proj", tmp / "h2" / "proj"
    for clone in (one, two):
        clone.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", str(origin), str(clone), cwd=tmp)
    return one.resolve(), two.resolve()


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def asks(asker: AgentBase, target: str, count: int) -> list[float]:
    times = []
    for n in range(count):
        started = time.perf_counter()
        got = asker.ok("ask_peer", {"target": target, "body": f"q{n}", "timeout_ms": 10_000})
        times.append((time.perf_counter() - started) * 1000)
        assert got["reply"]["body"] == f"re: q{n}" and got["timed_out"] is False, got
    return times


def summary(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    p50 = statistics.median(ordered)
    return f"{name:<32} p50 {p50:6.1f} ms   p90 {p90:6.1f} ms   max {ordered[-1]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oxtail-xhost-") as raw, ExitStack() as stack:
        tmp = Path(raw)
        (tmp / "redis").mkdir()
        server = start_server(tmp / "redis")
        stack.callback(server.stop)
        shared = {"OXTAIL_STORE": server.url, "OXTAIL_REDIS_TEAM": "b" + uuid.uuid4().hex[:12]}
        one, two = clones(tmp)
        h1 = stack.enter_context(world(tmp / "h1", tmux=True))
        h2 = stack.enter_context(world(tmp / "h2", tmux=True))
        (asker,) = h1.directs([("asker", one, {**shared, "OXTAIL_HOST_ID": "h1"})])
        (peer,) = h2.panes([("peer", two, {**shared, "OXTAIL_HOST_ID": "h2"})])
        asker.claim(sid(1))
        peer.claim(sid(2))
        peer.start_responder(interval_ms=args.poll_ms)

        (tmp / "one").mkdir()
        local = stack.enter_context(world(tmp / "one", tmux=False))
        proj = local.project("proj")
        here, there = local.directs([("a", proj, None), ("b", proj, None)])
        here.claim(sid(3))
        there.claim(sid(4))
        there.start_responder(interval_ms=args.poll_ms)

        asks(asker, sid(2), 5)  # warm both paths up (script loads, first connections)
        asks(here, sid(4), 5)
        cross, same = [], []
        for _ in range(args.asks // 10):  # alternate in rounds: both sides see the same load
            cross += asks(asker, sid(2), 10)
            same += asks(here, sid(4), 10)
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
    print(f"{args.asks} asks per side, peer reads every {args.poll_ms:g} ms, load average {' '.join(load)}")
    print(summary("two hosts on Redis (relayed)", cross))
    print(summary("one host, filesystem store", same))


if __name__ == "__main__":
    main()
