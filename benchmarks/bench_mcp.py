"""oxtail-mcp over real stdio: start-up, memory, and the messaging tools' latency and throughput.

Run: ``.venv/bin/python benchmarks/bench_mcp.py [--quick]``. Every server is a
real ``oxtail-mcp`` child spawned by the official MCP client (``stdio_client`` +
``ClientSession``) with its own throwaway HOME/OXTAIL_HOME and no tmux (so no
wake keystrokes are typed). Prints medians and p95; the numbers in
docs/benchmarks.md ("MCP server") come from this script.

Measured:

* start to initialized (spawn + ``initialize``), ours vs a bare lowlevel MCP
  server serving one trivial tool, alternating, and each one's RSS after init;
* one trivial tool call (``get_my_session`` / the bare ``ping``): the floor set by
  stdio + JSON-RPC + the SDK;
* ``send_message`` + ``read_my_messages`` round trip between two servers;
* ``ask_peer`` answered by a peer that polls ``read_my_messages`` every 10 ms
  and answers with ``reply_to_message``;
* 4 senders x 50 messages to one receiver (reading concurrently): messages/s,
  exactly-once checked by message id.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import ClientSession, StdioServerParameters, stdio_client

BIN = Path(sys.executable).parent
OURS = str(BIN / "oxtail-mcp")

BARE_SERVER = textwrap.dedent(
    '''
    """A bare mcp 2.x lowlevel server with one trivial tool (the start-up baseline)."""
    import os

    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    SCHEMA = {"type": "object", "properties": {}}
    TOOL = types.Tool(name="ping", description="Answer pong.", input_schema=SCHEMA)


    async def on_list_tools(ctx, params):
        return types.ListToolsResult(tools=[TOOL])


    async def on_call_tool(ctx, params):
        return types.CallToolResult(content=[types.TextContent(type="text", text=str(os.getpid()))])


    async def main():
        server = Server("bare", version="0", on_list_tools=on_list_tools, on_call_tool=on_call_tool)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


    anyio.run(main)
    '''
)


def sid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(samples), "median": statistics.median(samples), "p95": p95, "min": ordered[0]}


def fmt_ms(s: dict[str, float]) -> str:
    median, p95, low = s["median"] * 1000, s["p95"] * 1000, s["min"] * 1000
    return f"median {median:8.2f} ms   p95 {p95:8.2f} ms   min {low:7.2f} ms  (n={s['n']})"


class Env:
    """A throwaway HOME / OXTAIL_HOME / project directory, and no tmux to talk to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "proj"
        (self.project / ".git").mkdir(parents=True)
        (root / "home").mkdir()
        (root / "tmux").mkdir()
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TMUX", "CODEX_", "CLAUDE_CODE_", "OXTAIL_")) and key != "CLAUDECODE"
        }
        self.env.update(
            HOME=str(root / "home"), OXTAIL_HOME=str(root / "oxtail"), TMUX_TMPDIR=str(root / "tmux")
        )

    def params(self, command: str, args: list[str] | None = None) -> StdioServerParameters:
        return StdioServerParameters(command=command, args=args or [], env=self.env, cwd=str(self.project))


@asynccontextmanager
async def session(params: StdioServerParameters, errlog: Any) -> AsyncIterator[ClientSession]:
    async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        yield s


async def call(s: ClientSession, tool: str, args: dict | None = None) -> dict:
    result = await s.call_tool(tool, args or {})
    assert not result.is_error, result
    return json.loads(result.content[0].text)


def newest_child() -> psutil.Process:
    """The server a ``session`` just spawned (the youngest child of this process)."""
    return max(psutil.Process().children(), key=lambda p: p.create_time())


def newest_child_rss() -> int:
    return newest_child().memory_info().rss


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """CPU seconds (user + system, every thread) the processes have used so far."""
    return sum(sum(p.cpu_times()[:2]) for p in processes)


async def bench_startup(env: Env, bare_path: Path, runs: int, errlog: Any) -> dict[str, Any]:
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    rss: dict[str, list[int]] = {"ours": [], "bare": []}
    first_call: dict[str, list[float]] = {"ours": [], "bare": []}
    params = {"ours": env.params(OURS), "bare": env.params(sys.executable, [str(bare_path)])}
    for _ in range(runs):
        for kind in ("ours", "bare"):
            started = time.perf_counter()
            async with session(params[kind], errlog) as s:
                times[kind].append(time.perf_counter() - started)
                rss[kind].append(newest_child_rss())
                t = time.perf_counter()
                await s.call_tool("get_my_session" if kind == "ours" else "ping", {})
                first_call[kind].append(time.perf_counter() - t)
    return {"start": {k: stats(v) for k, v in times.items()}, "rss": rss, "first_call": first_call}


async def bench_trivial_call(s: ClientSession, tool: str, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await s.call_tool(tool, {})
        samples.append(time.perf_counter() - t)
    return stats(samples)


async def bench_send_read(a: ClientSession, b: ClientSession, n: int) -> dict[str, Any]:
    both, send_only, read_only = [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        sent = await call(a, "send_message", {"target": sid(2), "body": f"m{i}"})
        t1 = time.perf_counter()
        got = await call(b, "read_my_messages")
        t2 = time.perf_counter()
        assert [m["id"] for m in got["messages"]] == [sent["message_id"]], got
        both.append(t2 - t0)
        send_only.append(t1 - t0)
        read_only.append(t2 - t1)
    return {"round_trip": stats(both), "send": stats(send_only), "read": stats(read_only)}


async def bench_ask(a: ClientSession, peer: ClientSession, n: int, poll_ms: float) -> dict[str, Any]:
    answered: list[str] = []
    seen_at: list[float] = []
    replied_at: list[float] = []
    samples = []
    to_seen, seen_to_replied, replied_to_return = [], [], []
    wake_statuses: dict[str, int] = {}
    async with anyio.create_task_group() as tg:

        async def responder() -> None:
            while True:
                got = await call(peer, "read_my_messages")
                for message in got["messages"]:
                    if message.get("request_id"):
                        seen_at.append(time.perf_counter())
                        await call(peer, "reply_to_message", {"message_id": message["id"], "body": "ok"})
                        replied_at.append(time.perf_counter())
                        answered.append(message["id"])
                await anyio.sleep(poll_ms / 1000)

        tg.start_soon(responder)
        for i in range(n):
            # A random phase against the peer's poll (else the ask runs in lock-step with it, always
            # starting right after the peer's last read and so always waiting the full 10 ms).
            await anyio.sleep(random.uniform(0, poll_ms / 1000))
            t = time.perf_counter()
            got = await call(a, "ask_peer", {"target": sid(3), "body": f"q{i}", "timeout_ms": 10_000})
            end = time.perf_counter()
            samples.append(end - t)
            while len(replied_at) <= i:  # the peer's reply_to_message call may return after our ask
                await anyio.sleep(0.001)
            to_seen.append(seen_at[i] - t)
            seen_to_replied.append(replied_at[i] - seen_at[i])
            replied_to_return.append(end - seen_at[i])
            assert got["timed_out"] is False and got["reply"]["body"] == "ok", got
            wake_statuses[got["wake_status"]] = wake_statuses.get(got["wake_status"], 0) + 1
        tg.cancel_scope.cancel()
    assert len(answered) == n
    return {
        "ask": stats(samples),
        "wake_status": wake_statuses,
        "until_peer_saw_question": stats(to_seen),
        "peer_reply_call": stats(seen_to_replied),
        "peer_saw_question_to_ask_returned": stats(replied_to_return),
    }


async def bench_throughput(
    senders: list[ClientSession], receiver: ClientSession, per_sender: int, receiver_sid: str
) -> dict[str, Any]:
    sent: list[str] = []
    received: list[str] = []
    total = per_sender * len(senders)
    done = anyio.Event()
    children = psutil.Process().children()
    servers_cpu = cpu_seconds(children)
    client_cpu = time.process_time()
    started = time.perf_counter()
    finished = started
    async with anyio.create_task_group() as tg:

        async def send_all(s: ClientSession, k: int) -> None:
            for i in range(per_sender):
                got = await call(s, "send_message", {"target": receiver_sid, "body": f"s{k}-{i}"})
                sent.append(got["message_id"])

        async def receive_all() -> None:
            nonlocal finished
            while len(received) < total:
                got = await call(receiver, "read_my_messages")
                received.extend(m["id"] for m in got["messages"])
            finished = time.perf_counter()
            done.set()

        tg.start_soon(receive_all)
        for k, s in enumerate(senders):
            tg.start_soon(send_all, s, k)
        with anyio.fail_after(120):
            await done.wait()
    assert len(received) == len(set(received)) == total, "duplicate or missing messages"
    assert set(received) == set(sent), "received ids differ from sent ids"
    elapsed = finished - started
    servers_cpu = cpu_seconds(children) - servers_cpu
    return {
        "seconds": elapsed,
        "rate": total / elapsed,
        "client_cpu_share": (time.process_time() - client_cpu) / elapsed,
        "servers_cpu_share": servers_cpu / elapsed,
    }


async def main(quick: bool) -> None:
    runs = 4 if quick else 12
    n = 40 if quick else 200
    asks = 10 if quick else 40
    tp_runs = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        root = Path(tmp)
        bare_path = root / "bare_server.py"
        bare_path.write_text(BARE_SERVER)
        errlog = open(root / "servers.log", "a")  # noqa: SIM115 - closed below
        try:
            print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()}")
            startup = await bench_startup(Env(root / "startup"), bare_path, runs, errlog)
            for kind in ("ours", "bare"):
                print(f"start->initialized {kind:4}: {fmt_ms(startup['start'][kind])}")
            for kind in ("ours", "bare"):
                mib = [r / 2**20 for r in startup["rss"][kind]]
                print(
                    f"RSS after init {kind:4}: median {statistics.median(mib):6.1f} MiB, max {max(mib):.1f}"
                )
            for kind in ("ours", "bare"):
                print(f"first tool call {kind:4}: {fmt_ms(stats(startup['first_call'][kind]))}")
            async with session(Env(root / "bare").params(sys.executable, [str(bare_path)]), errlog) as bare:
                print(
                    f"trivial call, bare server (ping): {fmt_ms(await bench_trivial_call(bare, 'ping', n))}"
                )
            diff = startup["start"]["ours"]["median"] - startup["start"]["bare"]["median"]
            rss_diff = statistics.median(startup["rss"]["ours"]) - statistics.median(startup["rss"]["bare"])
            print(f"  ours - bare: start {diff * 1000:+.0f} ms, RSS {rss_diff / 2**20:+.1f} MiB")

            env = Env(root / "messaging")
            async with AsyncExitStack() as stack:
                # Sequential: an async context must be exited by the task that entered it.
                sessions = [
                    await stack.enter_async_context(session(env.params(OURS), errlog)) for _ in range(7)
                ]
                a, b, peer, receiver, *senders = sessions
                await call(a, "claim_session", {"session_id": sid(1)})
                await call(b, "claim_session", {"session_id": sid(2)})
                await call(peer, "claim_session", {"session_id": sid(3)})
                await call(receiver, "claim_session", {"session_id": sid(4)})
                for k, s in enumerate([*senders, a]):
                    await call(s, "set_my_state", {"purpose": f"sender {k}"})
                print(f"get_my_session: {fmt_ms(await bench_trivial_call(a, 'get_my_session', n))}")
                print(
                    f"read_my_messages, empty: {fmt_ms(await bench_trivial_call(b, 'read_my_messages', n))}"
                )
                sr = await bench_send_read(a, b, n)
                print(f"send_message + read_my_messages: {fmt_ms(sr['round_trip'])}")
                print(f"  send_message alone:            {fmt_ms(sr['send'])}")
                print(f"  read_my_messages (1 message):  {fmt_ms(sr['read'])}")
                ask = await bench_ask(a, peer, asks, poll_ms=10)
                print(f"ask_peer, peer polling every 10 ms: {fmt_ms(ask['ask'])} {ask['wake_status']}")
                print(f"  ask start -> peer saw question: {fmt_ms(ask['until_peer_saw_question'])}")
                print(f"  peer's reply_to_message call:   {fmt_ms(ask['peer_reply_call'])}")
                print(
                    f"  peer saw question -> ask returned: {fmt_ms(ask['peer_saw_question_to_ask_returned'])}"
                )
                rates, shares = [], []
                for _ in range(tp_runs):
                    got = await bench_throughput([*senders, a], receiver, 50, sid(4))
                    rates.append(got["rate"])
                    shares.append((got["client_cpu_share"], got["servers_cpu_share"]))
                print(
                    f"4 senders x 50 -> 1 receiver: median {statistics.median(rates):7.0f} msg/s "
                    f"(runs: {', '.join(f'{r:.0f}' for r in rates)}), exactly once by id"
                )
                print(
                    "  CPU during the run, in cores (client process / the 5 servers): "
                    + ", ".join(f"{c:.2f}/{srv:.2f}" for c, srv in shares)
                )
        finally:
            errlog.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    anyio.run(main, parser.parse_args().quick)
