"""Two "hosts" end to end on one Redis: real ``oxtail-mcp`` servers behind the official MCP client.

A host here is what a machine is to oxtail: its own HOME and OXTAIL_HOME, its own private tmux
server (``tmux -L``), its own ``OXTAIL_HOST_ID``; they share nothing but the Redis server (and
one project, cloned once per host: same root commit, different paths). Host ``h2``'s agent runs
in a pane of h2's tmux server; a wake sent to it from h1 can only reach it through the relay of
h2's own MCP server, which types into the pane it verified from h2's process tree.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from oxtail_core.model import ActivityMarker
from oxtail_redis.store import RedisStore
from tests.support.e2e import SERVER_COMMAND, WAKE_TEXT, World, sid, wait_until, world

LINE = WAKE_TEXT + "\n"


@pytest.fixture
def team(redis_url: str) -> Iterator[str]:
    name = "x" + uuid.uuid4().hex[:12]
    yield name
    store = RedisStore(redis_url, name)
    store.drop_namespace()
    store.close()


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def clones(tmp: Path) -> tuple[Path, Path]:
    """One repository, cloned for each host: one project (same root commit) at two paths."""
    origin = tmp / "origin"
    origin.mkdir()
    git("init", "-q", cwd=origin)
    git(
        "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "root", cwd=origin
    )
    one, two = tmp / "h1" / "proj", tmp / "h2" / "proj"
    for clone in (one, two):
        clone.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", str(origin), str(clone), cwd=tmp)
    return one.resolve(), two.resolve()


def mark_idle(url: str, team: str, session_id: str) -> None:
    """The marker h2's hooks would leave (a Stop hook on an empty inbox), in the shared store."""
    store = RedisStore(url, team)
    try:
        store.activity_put(session_id, ActivityMarker("idle", time.time_ns() // 1_000_000))
    finally:
        store.close()


def hosts_of(url: str, team: str) -> dict[str | None, str | None]:
    store = RedisStore(url, team)
    try:
        return {e.session_id: e.host_id for e in store.registry_entries()}
    finally:
        store.close()


def status_json(w: World, env: dict[str, str], proj: Path) -> dict:
    done = subprocess.run(
        [SERVER_COMMAND, "status", "--json", str(proj)],
        env=w.env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.tmux
def test_two_hosts_send_ask_with_a_relayed_wake_delegate_and_see_each_other(
    tmp_path: Path, redis_url: str, team: str
) -> None:
    shared = {"OXTAIL_STORE": redis_url, "OXTAIL_REDIS_TEAM": team}
    one, two = clones(tmp_path)
    with ExitStack() as stack:
        h1 = stack.enter_context(world(tmp_path / "h1", tmux=True))
        h2 = stack.enter_context(world(tmp_path / "h2", tmux=True))
        (asker,) = h1.directs([("asker", one, {**shared, "OXTAIL_HOST_ID": "h1"})])
        (peer,) = h2.panes([("peer", two, {**shared, "OXTAIL_HOST_ID": "h2", "CLAUDECODE": "1"})])
        asker.claim(sid(1))
        peer.claim(sid(2))
        assert hosts_of(redis_url, team) == {sid(1): "h1", sid(2): "h2"}

        # A message across hosts: delivered once, no keystroke asked for.
        sent = asker.ok("send_message", {"target": sid(2), "body": "hello from h1", "wake": "off"})
        assert sent["ok"] is True
        assert [m["body"] for m in peer.read()["messages"]] == ["hello from h1"]

        # ask_peer: its wake goes to h2's stream; h2's server's relay types into the verified pane.
        mark_idle(redis_url, team, sid(2))
        out: list[dict] = []
        ask = threading.Thread(
            target=lambda: out.append(
                asker.ok("ask_peer", {"target": sid(2), "body": "ready?", "timeout_ms": 30_000}, timeout_s=60)
            )
        )
        ask.start()
        peer.wait_typed(LINE, timeout_s=20)  # what reached h2's pane, typed by h2's relay
        (question,) = peer.read()["messages"]
        assert question["body"] == "ready?"
        peer.ok("reply_to_message", {"message_id": question["id"], "body": "yes"})
        ask.join(60)
        assert (out[0]["wake_status"], out[0]["timed_out"], out[0]["reply"]["body"]) == (
            "fired",
            False,
            "yes",
        )
        assert peer.typed() == LINE  # exactly one wake line, nothing else

        # A delegation across hosts: h2 owes it, completes it, and h1 gets the completion and the
        # delivery receipt (both written on the other machine, read through the shared store).
        delegation = {"target": sid(2), "body": "please tag 0.3", "action_required": True, "wake": "off"}
        job = asker.ok("send_message", delegation)
        assert (job["action_required"], job["obligation_durable"]) == (True, True)
        (owed,) = peer.read()["messages"]
        assert owed["id"] == job["message_id"] and owed["action_required"] is True
        assert [i["message_id"] for i in peer.ok("my_open_work")["open"]] == [job["message_id"]]
        done = peer.ok("complete_work", {"message_id": job["message_id"], "body": "tagged 0.3"})
        assert (done["ok"], done["obligation_state"], done["requester_session_id"]) == (True, "done", sid(1))
        assert peer.ok("my_open_work")["count"] == 0
        completion = [m for m in asker.read()["messages"] if m["id"] == done["completion_message_id"]]
        assert [m["body"] for m in completion] == ["tagged 0.3"]
        receipt = asker.ok("message_status", {"message_id": job["message_id"]})
        assert (receipt["status"], receipt["recipient_session_id"]) == ("delivered", sid(2))

        # status from either host lists both hosts' agents.
        for w, proj, host in ((h1, one, "h1"), (h2, two, "h2")):
            doc = status_json(w, {**shared, "OXTAIL_HOST_ID": host}, proj)
            hosts = {agent["session_id"]: agent["host_id"] for agent in doc["agents"]}
            assert hosts == {sid(1): "h1", sid(2): "h2"}, doc
        text = subprocess.run(
            [SERVER_COMMAND, "status", str(one)],
            env=h1.env({**shared, "OXTAIL_HOST_ID": "h1"}),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert text.splitlines()[1].rstrip().endswith("HOST") and "(h2)" in text, text


@pytest.mark.tmux
def test_a_cross_host_ask_answered_on_notice_round_trip(tmp_path: Path, redis_url: str, team: str) -> None:
    """The round trip of an ask whose peer on the other host answers as soon as it notices (a
    responder polling every 10 ms): printed for docs/benchmarks.md, bounded loosely here (shared CI)."""
    shared = {"OXTAIL_STORE": redis_url, "OXTAIL_REDIS_TEAM": team}
    one, two = clones(tmp_path)
    with ExitStack() as stack:
        h1 = stack.enter_context(world(tmp_path / "h1", tmux=True))
        h2 = stack.enter_context(world(tmp_path / "h2", tmux=True))
        (asker,) = h1.directs([("asker", one, {**shared, "OXTAIL_HOST_ID": "h1"})])
        (peer,) = h2.panes([("peer", two, {**shared, "OXTAIL_HOST_ID": "h2"})])
        asker.claim(sid(1))
        peer.claim(sid(2))
        peer.start_responder(interval_ms=10)
        times = []
        for n in range(20):
            started = time.perf_counter()
            got = asker.ok("ask_peer", {"target": sid(2), "body": f"q{n}", "timeout_ms": 10_000})
            times.append((time.perf_counter() - started) * 1000)
            assert got["reply"]["body"] == f"re: q{n}" and got["timed_out"] is False
        times.sort()
        print(f"cross-host ask_peer round trip: p50 {times[10]:.1f} ms, max {times[-1]:.1f} ms")
        assert wait_until(lambda: times[10] < 2_000)
