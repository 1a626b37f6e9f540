"""The duplicate window, measured (issue 13 item 7): SIGKILL a reading ``oxtail-mcp`` at random
moments while peers send, restart it, and count what the reader's client received.

A message's response is written to the pipe, then its batch is settled. A kill between the two
leaves the batch in flight; the next server recovers it and the client receives those messages a
second time, with the same ids. A kill anywhere else loses and duplicates nothing. So per run:
``lost`` (acknowledged sends never received: must be 0) and ``duplicated`` (extra copies received).

Used by tests/mcp/test_e2e_kill_window.py (a few kills) and benchmarks/bench_kill_window.py (200).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import attrs
import psutil

from tests.support.e2e import DirectAgent, World, sid, wait_until, world


@attrs.frozen
class KillWindowRun:
    kills: int
    sent: int
    received: int
    lost: int
    duplicated: int
    largest_read: int
    """The most messages one response carried: a kill can bring back at most one such batch."""
    refused: dict[str, int]
    seconds: float

    @property
    def duplicated_per_kill(self) -> float:
        return self.duplicated / self.kills if self.kills else 0.0


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def run_kills(
    tmp_path: Path, *, kills: int, senders: int, seed: int, max_pause_s: float = 0.3
) -> KillWindowRun:
    """``kills`` SIGKILLs of the reading server, each at a random moment up to ``max_pause_s`` after it
    served its first read since the previous restart, with ``senders`` peers sending all along."""
    rng = random.Random(seed)
    started = time.monotonic()
    with world(tmp_path) as w:
        proj = w.project("proj")
        agents = w.directs([(f"a{i}", proj, None) for i in range(senders + 1)])
        receiver, peers = agents[0], agents[1:]
        for n, agent in enumerate(agents, start=1):
            agent.claim(sid(n))
        acked: list[str] = []
        refused: Counter[str] = Counter()
        got: list[dict] = []
        reads = [0]
        calls = [0]
        largest = [0]
        stop_sending = threading.Event()
        stop_reading = threading.Event()

        def send_loop(agent: DirectAgent, tag: str) -> None:
            i = 0
            while not stop_sending.is_set():
                body = agent.ok("send_message", {"target": sid(1), "body": f"{tag}{i}"})
                if body["ok"]:
                    acked.append(body["message_id"])
                else:
                    refused[body["error"]] += 1
                i += 1
                time.sleep(rng.uniform(0.001, 0.02))

        def read_loop() -> None:
            while not stop_reading.is_set():
                try:
                    body = receiver.read()
                except Exception:  # noqa: BLE001 - the server is being killed or restarted
                    calls[0] += 1
                    time.sleep(0.005)
                    continue
                calls[0] += 1
                got.extend(body["messages"])
                largest[0] = max(largest[0], len(body["messages"]))
                reads[0] += 1

        threads = [
            threading.Thread(target=send_loop, args=(a, f"s{k}-"), daemon=True) for k, a in enumerate(peers)
        ]
        threads.append(threading.Thread(target=read_loop, daemon=True))
        for thread in threads:
            thread.start()
        for _ in range(kills):
            seen = reads[0]
            assert wait_until(lambda s=seen: reads[0] > s, 30), "the reader made no progress"
            time.sleep(rng.uniform(0, max_pause_s))
            pid = _server_pid(w, sid(1))
            os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda p=pid: _gone(p), 10)
            # Let the client finish the call in flight (it reads the pipe to EOF) before replacing
            # it: a response the dead server wrote and settled must still reach the reader.
            done = calls[0]
            wait_until(lambda d=done: calls[0] > d, 10)
            receiver.restart()
            receiver.claim(sid(1))
        stop_sending.set()
        for thread in threads[:-1]:
            thread.join(60)
        final = set(acked)
        wait_until(lambda: final <= {m["id"] for m in got}, 30)
        stop_reading.set()
        threads[-1].join(30)
        counts = Counter(m["id"] for m in got)
        return KillWindowRun(
            kills=kills,
            sent=len(final),
            received=len(counts),
            lost=len(final - set(counts)),
            duplicated=sum(c - 1 for c in counts.values()),
            largest_read=largest[0],
            refused=dict(refused),
            seconds=time.monotonic() - started,
        )


def _server_pid(w: World, session_id: str) -> int:
    """The live server of ``session_id``, from the registry (a dead one's entry may linger)."""
    from oxtail_fs.store.fs_store import FsStore

    store = FsStore(w.oxtail_home)
    pids = [e.server_pid for e in store.registry_entries() if e.session_id == session_id]
    alive = [p for p in pids if not _gone(p)]
    assert alive, f"no live server for {session_id}"
    return max(alive)


@attrs.frozen
class SettleGaps:
    """The duplicate window as the server measured it (the ``read_settled`` trace events): for each
    settled read, nanoseconds from the issue of the write of the response's newline to the issue of
    the batch's settle (an upper bound: it holds that write itself). A kill inside that stretch is
    what brings a batch back."""

    reads: int
    gaps_ns: list[int]
    seconds: float

    def quantile_us(self, q: float) -> float:
        ordered = sorted(self.gaps_ns)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1000


def measure_settle_gaps(tmp_path: Path, *, reads: int, senders: int, seed: int) -> SettleGaps:
    """``reads`` reads of a receiver whose server traces each settle, with ``senders`` peers sending
    all along (the kill benchmark's load, without the kills)."""
    rng = random.Random(seed)
    trace = tmp_path / "trace.jsonl"
    started = time.monotonic()
    with world(tmp_path) as w:
        proj = w.project("proj")
        specs: list[tuple[str, Path, dict[str, str] | None]] = [("r", proj, {"MCP_TRACE_FILE": str(trace)})]
        agents = w.directs(specs + [(f"a{i}", proj, None) for i in range(senders)])
        receiver, peers = agents[0], agents[1:]
        for n, agent in enumerate(agents, start=1):
            agent.claim(sid(n))
        stop = threading.Event()

        def send_loop(agent: DirectAgent, tag: str) -> None:
            i = 0
            while not stop.is_set():
                agent.ok("send_message", {"target": sid(1), "body": f"{tag}{i}", "wake": "off"})
                i += 1
                time.sleep(rng.uniform(0.001, 0.02))

        threads = [
            threading.Thread(target=send_loop, args=(a, f"s{k}-"), daemon=True) for k, a in enumerate(peers)
        ]
        for thread in threads:
            thread.start()
        done = 0
        while done < reads:
            if receiver.read()["messages"]:
                done += 1
        stop.set()
        for thread in threads:
            thread.join(60)
    gaps = [
        event["gap_ns"]
        for event in map(json.loads, trace.read_text().splitlines())
        if event.get("event") == "read_settled"
    ]
    return SettleGaps(reads=reads, gaps_ns=gaps, seconds=time.monotonic() - started)
