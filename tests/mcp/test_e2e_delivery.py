"""Delivery guarantees across real server processes: exactly once under concurrency, nothing
acknowledged is lost when the receiving server is SIGKILLed and restarted (README improvement 8)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from tests.support.e2e import DirectAgent, sid, wait_until, world


def reader(
    agent: DirectAgent,
    stop: threading.Event,
    got: list[dict],
    errors: list[str],
    ended: list[int] | None = None,
) -> threading.Thread:
    """Read the agent's inbox in a loop until ``stop``; a failed call (server down) is retried.

    ``ended`` (one counter) counts the calls that have returned, either way.
    """

    def run() -> None:
        while not stop.is_set():
            try:
                body = agent.read()
            except Exception as exc:  # noqa: BLE001 - the server (or its client) is being killed or restarted
                errors.append(str(exc)[:200])
                time.sleep(0.01)
                continue
            finally:
                if ended is not None:
                    ended[0] += 1
            got.extend(body["messages"])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts: it runs nothing any more)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_concurrent_senders_exactly_once_in_order(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        receiver, *senders = w.directs([(f"a{i}", proj, None) for i in range(5)])
        for n, agent in enumerate([receiver, *senders], start=1):
            agent.claim(sid(n))
        sent: dict[int, list[str]] = {k: [] for k in range(len(senders))}
        stop = threading.Event()
        got: list[dict] = []
        errors: list[str] = []
        read_thread = reader(receiver, stop, got, errors)

        def send_all(k: int) -> None:
            for i in range(50):
                result = senders[k].ok("send_message", {"target": sid(1), "body": f"{k}:{i}"})
                sent[k].append(result["message_id"])

        threads = [threading.Thread(target=send_all, args=(k,)) for k in range(len(senders))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert wait_until(lambda: len(got) >= 200, 20)
        stop.set()
        read_thread.join(10)
        assert errors == []
        ids = [m["id"] for m in got]
        assert len(ids) == len(set(ids)) == 200
        assert set(ids) == {i for k in sent for i in sent[k]}
        for k, ids_sent in sent.items():  # each sender's messages arrive in the order it sent them
            assert [m["id"] for m in got if m["from_session_id"] == sid(k + 2)] == ids_sent


def test_receiver_sigkilled_and_restarted_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        receiver, s1, s2 = w.directs([("receiver", proj, None), ("s1", proj, None), ("s2", proj, None)])
        receiver.claim(sid(1))
        s1.claim(sid(2))
        s2.claim(sid(3))
        acked: list[str] = []
        refused = Counter()
        stop_sending = threading.Event()

        def send_loop(agent: DirectAgent, tag: str) -> None:
            i = 0
            while not stop_sending.is_set():
                body = agent.ok("send_message", {"target": sid(1), "body": f"{tag}{i}"})
                if body["ok"]:
                    acked.append(body["message_id"])
                else:
                    refused[body["error"]] += 1
                i += 1
                time.sleep(0.005)  # pacing, so the kills land in the middle of the stream

        stop_reading = threading.Event()
        got: list[dict] = []
        errors: list[str] = []
        ended = [0]
        read_thread = reader(receiver, stop_reading, got, errors, ended)
        senders = [threading.Thread(target=send_loop, args=(a, t)) for a, t in ((s1, "a"), (s2, "b"))]
        for thread in senders:
            thread.start()
        for _ in range(2):
            assert wait_until(lambda: len(got) > 20, 10)
            pid = receiver.server_pid()
            os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda p=pid: gone(p))
            # What the dead server wrote before the kill is in the pipe: the client must read it before
            # the test tears that client down, exactly as a live host would (the read in flight ends).
            calls = ended[0]
            assert wait_until(lambda n=calls: ended[0] > n, 10)
            receiver.restart()
            receiver.claim(sid(1))
            got_before = len(got)
            assert wait_until(lambda n=got_before: len(got) > n + 20, 10)
        stop_sending.set()
        for thread in senders:
            thread.join(30)
        final = set(acked)
        if not wait_until(lambda: final <= {m["id"] for m in got}, 15):
            missing = sorted(final - {m["id"] for m in got})
            statuses = {m: s1.ok("message_status", {"message_id": m}).get("status") for m in missing[:5]}
            raise AssertionError(
                f"acknowledged mail was lost: {len(missing)} ids, {statuses}, errors {errors[-3:]}"
            )
        stop_reading.set()
        read_thread.join(10)
        counts = Counter(m["id"] for m in got)
        assert set(counts) == final
        # Only the microsecond window between the response write and the commit may duplicate.
        assert sum(c - 1 for c in counts.values()) <= 2, counts.most_common(3)
        assert set(refused) <= {"target-not-found"}
