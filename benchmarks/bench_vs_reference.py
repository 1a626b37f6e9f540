"""Ours beside the reference oxtail 0.32.1 (Node) over real stdio, alternating in one run.

Run: ``.venv/bin/python benchmarks/bench_vs_reference.py [--quick] [--reference DIR]`` with the
reference built in ``DIR`` (default ``/tmp/ref/v0.32.1``: ``npm ci --ignore-scripts && npx tsc``
there, never in this tree). Both servers are driven by the same official MCP client with the same
inputs, each side with its own throwaway HOME (the reference has no ``OXTAIL_HOME``) and no tmux.
Rounds rotate which side goes first, so all see the same machine load; ``--baseline DIR`` adds
an earlier checkout of ours as a third side (see ``_from_sources``); the numbers in
docs/benchmarks.md ("Beside the reference") are medians of the rounds' medians and their ratio.

Measured per side: spawn to initialized (and, in every round, that of a bare lowlevel SDK server
with one trivial tool: the floor the start-up target is set against); one trivial call (``get_my_session``);
``send_message`` + ``read_my_messages`` between two claimed servers, and the CPU time the two
servers spent on it (all threads, user + system, per pair of calls); 4 senders x 50 messages to one
reading receiver (messages/s, exactly once by id).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mcp import BARE_SERVER, OURS, Env, bench_throughput, call, cpu_seconds, newest_child, session, sid


async def _starts(params: StdioServerParameters, errlog: Any) -> list[float]:
    """Three spawn-to-initialized times (seconds)."""
    starts = []
    for _ in range(3):
        t = time.perf_counter()
        async with session(params, errlog):
            starts.append(time.perf_counter() - t)
    return starts


async def _side(env: Env, command: list[str], n: int, errlog: Any) -> dict[str, float]:
    params = env.params(command[0], command[1:])
    starts = await _starts(params, errlog)
    async with AsyncExitStack() as stack:
        servers, processes = [], []
        for _ in range(6):
            servers.append(await stack.enter_async_context(session(params, errlog)))
            processes.append(newest_child())
        a, b, receiver, *senders = servers
        pair = processes[:2]  # a's and b's
        for k, s in enumerate(servers[:3]):
            await call(s, "claim_session", {"session_id": sid(k + 1)})
        trivial, round_trip = [], []
        for _ in range(n):
            t = time.perf_counter()
            await call(a, "get_my_session")
            trivial.append(time.perf_counter() - t)
        cpu_before = cpu_seconds(pair)
        for i in range(n):
            t = time.perf_counter()
            sent = await call(a, "send_message", {"target": sid(2), "body": f"m{i}", "wake": "off"})
            got = await call(b, "read_my_messages")
            round_trip.append(time.perf_counter() - t)
            assert [m["id"] for m in got["messages"]] == [sent["message_id"]], got
        pair_cpu = (cpu_seconds(pair) - cpu_before) / n
        rate = (await bench_throughput(senders, receiver, 50, sid(3)))["rate"]
    return {
        "start_ms": statistics.median(starts) * 1000,
        "get_my_session_ms": statistics.median(trivial) * 1000,
        "send_read_ms": statistics.median(round_trip) * 1000,
        "send_read_server_cpu_ms": pair_cpu * 1000,
        "throughput_msg_s": rate,
    }


def _from_sources(tree: Path) -> list[str]:
    """Run the server of an earlier checkout of ours (``git archive <commit> | tar -x -C tree``) from
    its sources, on this venv's dependencies."""
    packages = ("oxtail_core", "oxtail_fs", "oxtail_mcp", "oxtail_redis")
    paths = [str(tree / package / "src") for package in packages]
    return ["/usr/bin/env", "PYTHONPATH=" + os.pathsep.join(paths), sys.executable, "-m", "oxtail_mcp"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reference", type=Path, default=Path("/tmp/ref/v0.32.1"))
    parser.add_argument("--baseline", type=Path, help="an earlier checkout of ours, measured as a third side")
    opts = parser.parse_args()
    server = opts.reference / "dist" / "server.js"
    if not server.is_file():
        sys.exit(f"{server} is missing: build the reference there (npm ci --ignore-scripts && npx tsc)")
    commands = {"ours": [OURS], "reference": ["node", str(server)]}
    if opts.baseline is not None:
        commands["baseline"] = _from_sources(opts.baseline)
    sides = list(commands)
    rounds = 2 if opts.quick else 5
    n = 40 if opts.quick else 150
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    floor: list[float] = []
    print(f"load average at the start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp, open(Path(tmp) / "log", "w") as errlog:
        bare = Path(tmp) / "bare_server.py"
        bare.write_text(BARE_SERVER)
        for r in range(rounds):
            floor.append(
                statistics.median(
                    await _starts(Env(Path(tmp) / f"sdk-{r}").params(sys.executable, [str(bare)]), errlog)
                )
                * 1000
            )
            for side in sides[r % len(sides) :] + sides[: r % len(sides)]:  # each side goes first in turn
                env = Env(Path(tmp) / f"{side}-{r}")
                results[side].append(await _side(env, commands[side], n, errlog))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    for metric in results["ours"][0]:
        median = {side: statistics.median(x[metric] for x in results[side]) for side in sides}
        line = "   ".join(f"{side} {median[side]:9.2f}" for side in sides)
        ratios = "   ".join(f"ours/{side} {median['ours'] / median[side]:6.2f}" for side in sides[1:])
        print(f"{metric:24} {line}   {ratios}")
    sdk = statistics.median(floor)
    extra = statistics.median(x["start_ms"] for x in results["ours"]) - sdk
    print(f"{'start_ms, bare SDK server':24} {sdk:9.2f}   ours - bare SDK {extra:+.0f} ms")


if __name__ == "__main__":
    anyio.run(main)
