"""Real ``oxtail-mcp`` servers on a shared Redis store, chosen by ``OXTAIL_STORE`` or ``store.json``.

Two servers with *different* state directories share nothing but Redis: what one sends the other
receives, exactly once, and ``status`` (from a third state directory) sees both. The start-up
checks of design note §7.4 run on real servers: an evicting Redis is refused unless allowed, and
AOF off is a warning in ``status`` and in the server's trace.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_core.errors import StoreError
from oxtail_mcp import storage
from oxtail_redis.store import RedisStore
from tests.redis.server import RedisServer, start_server
from tests.support.e2e import SERVER_COMMAND, sid, wait_until, world


@pytest.fixture
def team(redis_url: str) -> Iterator[str]:
    name = "m" + uuid.uuid4().hex[:12]
    yield name
    store = RedisStore(redis_url, name, prefix="oxt")
    store.drop_namespace()
    store.close()


@pytest.fixture
def evicting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_server(tmp_path_factory.mktemp("evicting"), "--maxmemory-policy", "allkeys-lru")
    yield server
    server.stop()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SERVER_COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_two_servers_with_their_own_state_dirs_share_one_redis_and_deliver_exactly_once(
    tmp_path: Path, redis_url: str, team: str
) -> None:
    shared = {"OXTAIL_STORE": redis_url, "OXTAIL_REDIS_TEAM": team}
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    trace = tmp_path / "a.trace"
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs(
            [
                ("a", proj, {**shared, "OXTAIL_HOME": str(host_a), "MCP_TRACE_FILE": str(trace)}),
                ("b", proj, {**shared, "OXTAIL_HOME": str(host_b)}),
            ]
        )
        a.claim(sid(1))
        b.claim(sid(2))
        sent = a.ok("send_message", {"target": sid(2), "body": "across one Redis", "wake": "off"})
        assert sent["ok"] is True and sent["target_session_id"] == sid(2)
        got = b.read()
        assert [(m["body"], m["from_session_id"]) for m in got["messages"]] == [("across one Redis", sid(1))]
        assert b.read()["count"] == 0  # exactly once
        fate = wait_until(
            lambda: a.ok("message_status", {"message_id": sent["message_id"]}).get("status") == "delivered"
        )
        assert fate, a.ok("message_status", {"message_id": sent["message_id"]})  # the receipt is in Redis too

        for state in (host_a, host_b):  # the store is Redis: no state dir holds an inbox or an entry
            assert not (state / "inboxes").exists() and not (state / "registry").exists()
        seen = cli(w.env({**shared, "OXTAIL_HOME": str(tmp_path / "host-c")}), "status", "--json", str(proj))
        assert seen.returncode == 0, seen.stderr
        doc = json.loads(seen.stdout)
        assert {sid(1), sid(2)} <= {agent["session_id"] for agent in doc["agents"]}
        assert doc["store"] == {
            "kind": "redis",
            "source": "OXTAIL_STORE",
            "where": redis_url,
            "team": team,
            "prefix": "oxt",
            "aof_enabled": False,
            "aof_last_write_status": "ok",
            "maxmemory_policy": "noeviction",
            "warnings": ["Redis has appendonly off: a Redis restart loses all mail (set appendonly yes)"],
        }
        events = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
        warned = [e for e in events if e.get("event") == "store_warning"]
        assert warned and "appendonly off" in warned[0]["warning"], events[:5]


def test_a_server_whose_store_file_names_redis_runs_on_it_and_status_shows_the_store(
    tmp_path: Path, redis_url: str, team: str
) -> None:
    with world(tmp_path) as w:
        done = cli(w.env(), "use-store", redis_url, "--team", team)
        assert done.returncode == 0, done.stderr
        assert "appendonly off" in done.stderr  # the warning, and the file written anyway
        assert stat.S_IMODE((w.oxtail_home / "store.json").stat().st_mode) == 0o600
        proj = w.project("proj")
        agent = w.direct("a", proj)
        agent.claim(sid(7))
        store = RedisStore(redis_url, team, prefix="oxt")
        try:
            assert wait_until(lambda: any(e.session_id == sid(7) for e in store.registry_entries()))
        finally:
            store.close()
        text = cli(w.env(), "status", str(proj))
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert any(sid(7)[:8] in line for line in lines), text.stdout
        assert (
            f"store: redis {redis_url} · team {team} · prefix oxt · aof off · maxmemory-policy noeviction"
            " (from store.json)" in lines
        )
        assert "⚠ Redis has appendonly off: a Redis restart loses all mail (set appendonly yes)" in lines
        assert cli(w.env(), "use-store", "fs").returncode == 0
        assert not (w.oxtail_home / "store.json").exists()


def test_an_evicting_redis_is_refused_unless_the_user_accepts_the_risk(
    tmp_path: Path, evicting: RedisServer
) -> None:
    env = {"OXTAIL_HOME": str(tmp_path), "OXTAIL_STORE": evicting.url, "OXTAIL_REDIS_TEAM": "evict"}
    with pytest.raises(StoreError, match="maxmemory-policy allkeys-lru: it may evict inboxes") as caught:
        storage.open_store(env)
    assert "\n" not in str(caught.value)
    store, info = storage.open_with_info({**env, "OXTAIL_STORE_ALLOW_EVICTION": "1"})
    try:
        assert info["maxmemory_policy"] == "allkeys-lru"
        assert any("may evict inboxes" in w for w in info.get("warnings", []))
    finally:
        store.drop_namespace()  # type: ignore[attr-defined]
        store.close()  # type: ignore[attr-defined]
    served = cli({**os.environ, **env}, "serve")
    assert served.returncode == 1 and "Traceback" not in served.stderr
    assert served.stderr.strip().startswith("oxtail-mcp: cannot start: the Redis store at ")
    written = cli(
        {**os.environ, "OXTAIL_HOME": str(tmp_path / "u")}, "use-store", evicting.url, "--team", "e"
    )
    assert written.returncode == 1 and "nothing written" in written.stderr
    assert not (tmp_path / "u" / "store.json").exists()


def test_a_redis_with_aof_on_opens_without_a_warning(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--appendonly", "yes")
    try:
        env = {"OXTAIL_HOME": str(tmp_path), "OXTAIL_STORE": server.url, "OXTAIL_REDIS_TEAM": "aof"}
        store, info = storage.open_with_info(env)
        store.close()  # type: ignore[attr-defined]
        assert (info["aof_enabled"], info["maxmemory_policy"], info["warnings"]) == (True, "noeviction", [])
    finally:
        server.stop()
