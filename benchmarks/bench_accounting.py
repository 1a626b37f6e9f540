"""Accounting over real stdio (issue 9): message_status, my_open_work, complete_work, and the send/read
path beside the build before accounting.

Run: ``.venv/bin/python benchmarks/bench_accounting.py [--quick] [--baseline-bin DIR]``. Servers are
real ``oxtail-mcp`` children of the official MCP client, each with a throwaway HOME and no tmux
(see bench_mcp.py). Prints medians and p95; docs/benchmarks.md ("Accounting") quotes them.

Measured:

* the floor: ``get_my_session``, a call that touches nothing (stdio + JSON-RPC + the SDK);
* ``message_status`` for a delivered, a pending and an unknown id (target: ≤ 2 ms);
* ``my_open_work`` with 10 open obligations (target: ≤ 2 ms);
* ``complete_work``: the call, which delivers the completion into the requester's inbox before it
  returns (target: ≤ 5 ms), checked by ``message_status`` saying ``pending`` for the completion;
* ``send_message`` + ``read_my_messages`` with ours and, given ``--baseline-bin`` (the ``bin`` dir
  of a venv holding the build before accounting, e.g. commit b9425ca), with that build, alternating
  in one run (target: ours ≤ 1.10 x the baseline).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mcp import OURS, Env, call, fmt_ms, session, sid, stats


async def _timed(s: Any, tool: str, args: dict[str, Any], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await call(s, tool, args)
        samples.append(time.perf_counter() - t)
    return stats(samples)


async def bench_accounting(env: Env, n: int, errlog: Any) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(session(env.params(OURS), errlog))
        b = await stack.enter_async_context(session(env.params(OURS), errlog))
        await call(a, "claim_session", {"session_id": sid(1)})
        await call(b, "claim_session", {"session_id": sid(2)})
        delivered = (await call(a, "send_message", {"target": sid(2), "body": "read me", "wake": "off"}))[
            "message_id"
        ]
        await call(b, "read_my_messages")
        pending = (await call(a, "send_message", {"target": sid(2), "body": "wait", "wake": "off"}))[
            "message_id"
        ]
        out: dict[str, Any] = {
            "floor_get_my_session": await _timed(a, "get_my_session", {}, n),
            "status_delivered": await _timed(a, "message_status", {"message_id": delivered}, n),
            "status_pending": await _timed(a, "message_status", {"message_id": pending}, n),
            "status_unknown": await _timed(a, "message_status", {"message_id": "0" * 16}, n),
        }
        await call(b, "read_my_messages")
        for i in range(10):
            await call(a, "send_message", {"target": sid(2), "body": f"task {i}", "action_required": True})
        work = await call(b, "my_open_work")
        assert work["count"] == 10, work
        out["my_open_work_10"] = await _timed(b, "my_open_work", {}, n)
        closes = []
        for i in range(n):
            sent = await call(
                a, "send_message", {"target": sid(2), "body": f"do {i}", "action_required": True}
            )
            t = time.perf_counter()
            closed = await call(b, "complete_work", {"message_id": sent["message_id"], "body": "done"})
            closes.append(time.perf_counter() - t)
            status = await call(a, "message_status", {"message_id": closed["completion_message_id"]})
            assert status["status"] == "pending", status
            await call(a, "read_my_messages")
        out["complete_work"] = stats(closes)
        return out


async def bench_send_read_pair(env: Env, command: str, n: int, errlog: Any) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(session(env.params(command), errlog))
        b = await stack.enter_async_context(session(env.params(command), errlog))
        await call(a, "claim_session", {"session_id": sid(1)})
        await call(b, "claim_session", {"session_id": sid(2)})
        samples = []
        for i in range(n):
            t = time.perf_counter()
            sent = await call(a, "send_message", {"target": sid(2), "body": f"m{i}"})
            got = await call(b, "read_my_messages")
            samples.append(time.perf_counter() - t)
            assert [m["id"] for m in got["messages"]] == [sent["message_id"]], got
        return stats(samples)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline-bin", type=Path, help="bin dir of a venv with the build to compare")
    opts = parser.parse_args()
    n = 30 if opts.quick else 200
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "servers.log", "w") as errlog:
        root = Path(tmp)
        results = await bench_accounting(Env(root / "acct"), n, errlog)
        for name, s in results.items():
            print(f"{name:18} {fmt_ms(s)}")
        if opts.baseline_bin is None:
            return
        rounds = {"ours": [], "baseline": []}
        commands = {"ours": OURS, "baseline": str(opts.baseline_bin / "oxtail-mcp")}
        for i in range(3 if opts.quick else 5):  # alternate, so both see the same machine load
            for kind in ("baseline", "ours") if i % 2 else ("ours", "baseline"):
                s = await bench_send_read_pair(Env(root / f"{kind}{i}"), commands[kind], n // 2, errlog)
                rounds[kind].append(s["median"])
        ours, base = sorted(rounds["ours"]), sorted(rounds["baseline"])
        mid_ours, mid_base = ours[len(ours) // 2], base[len(base) // 2]
        print(
            f"send+read median of medians: ours {mid_ours * 1000:.2f} ms, baseline {mid_base * 1000:.2f} ms"
        )
        print(f"ratio ours / baseline: {mid_ours / mid_base:.3f} (target <= 1.10)")


if __name__ == "__main__":
    anyio.run(main)
