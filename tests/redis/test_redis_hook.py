"""The hook on a shared Redis store: real ``oxtail-mcp hook`` processes, a real redis-server.

The empty-inbox PreToolUse path is one pipelined round trip of the standard-library RESP client
(no redis-py: it costs a hook 124-152 ms); only mail loads the store. The marker it writes is
byte for byte what ``RedisStore.activity_put`` writes, so servers read it back. Also: the RESP
client's promises (pipelining, AUTH and SELECT, bounded replies, timeouts).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from oxtail_core.model import ActivityMarker, Envelope
from oxtail_core.protocols import Holder
from oxtail_core.routing import session_inbox
from oxtail_core.testing.contract import take_all
from oxtail_redis.keys import Keys
from oxtail_redis.resp import Client, ReplyError, RespError
from oxtail_redis.store import RedisStore
from oxtail_redis.url import RedisTarget, parse_url
from tests.support.e2e import SERVER_COMMAND

SID = "12345678-1234-4234-8234-123456789abc"
OURS = {
    *("oxtail_core", "oxtail_core.naming", "oxtail_fs", "oxtail_fs.store", "oxtail_fs.store.names"),
    *("oxtail_mcp", "oxtail_mcp.__main__", "oxtail_mcp.hooks", "oxtail_mcp.hooks.hook", "oxtail_mcp.storage"),
    *("oxtail_redis", "oxtail_redis.keys", "oxtail_redis.url", "oxtail_redis.resp"),
}
"""Every module of ours the empty-inbox hook may load on a Redis store: the naming rules, the choice,
the key names, the URL and the RESP client; never the store."""
FORBIDDEN = ("redis", "attrs", "json", "re", "typing", "ssl", "hashlib", "urllib")
"""Costly to import, and the hot path has no use for them (plain TCP: ``ssl`` only for rediss)."""


@pytest.fixture
def team(redis_url: str) -> Iterator[str]:
    name = "h" + uuid.uuid4().hex[:12]
    yield name
    store = RedisStore(redis_url, name, prefix="oxt")
    store.drop_namespace()
    store.close()


@pytest.fixture
def home(tmp_path: Path, redis_url: str, team: str) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "store.json").write_text(json.dumps({"url": redis_url, "team": team}))
    (state / "store.json").chmod(0o600)
    return state


@pytest.fixture
def store(redis_url: str, team: str) -> Iterator[RedisStore]:
    opened = RedisStore(redis_url, team, prefix="oxt")
    yield opened
    opened.close()


def hook_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXTAIL_")}
    return {**env, "OXTAIL_HOME": str(home)}


def payload(event: str = "PreToolUse", **extra: object) -> bytes:
    return json.dumps({"session_id": SID, "hook_event_name": event, "tool_name": "Bash", **extra}).encode()


def run_hook(
    home: Path, event: str = "pretooluse", data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SERVER_COMMAND, "hook", event],
        input=payload() if data is None else data,
        env=hook_env(home),
        capture_output=True,
        timeout=60,
        check=True,
    )


def raw(redis_url: str) -> redis.Redis:
    target = parse_url(redis_url)
    return redis.Redis(host=target.host, port=target.port, db=target.db)


def test_the_empty_inbox_hook_stamps_the_marker_in_redis_without_importing_redis_py(
    home: Path, store: RedisStore, redis_url: str, team: str
) -> None:
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from oxtail_mcp.__main__ import main\n"
        "try:\n"
        "    main(['hook', 'pretooluse'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    before_ms = int(time.time() * 1000)
    done = subprocess.run(
        [sys.executable, "-c", probe], input=payload(), env=hook_env(home), capture_output=True, check=True
    )
    loaded = set(done.stdout.decode().split())
    assert {
        "oxtail_mcp.hooks.hook",
        "oxtail_redis.resp",
        "oxtail_mcp.storage",
    } <= loaded  # it took the Redis path
    ours = {m for m in loaded if m.startswith("oxtail")}
    assert ours <= OURS, ours - OURS
    assert not [m for m in loaded if m.split(".")[0] in FORBIDDEN], sorted(loaded)
    found = store.activity_get(SID)
    assert (
        found is not None and found.status == "busy" and before_ms <= found.at_ms <= int(time.time() * 1000)
    )
    assert not (home / "activity").exists()  # nothing in files: the servers read Redis


def test_the_hooks_marker_is_what_the_store_writes_same_key_same_bytes_same_expiry(
    home: Path, store: RedisStore, redis_url: str, team: str
) -> None:
    run_hook(home)
    keys = Keys(team)
    client = raw(redis_url)
    hooked = client.get(keys.activity(SID))
    at = json.loads(hooked)["at"]
    store.activity_put("another-session", ActivityMarker("busy", at))
    assert hooked == client.get(keys.activity("another-session"))
    assert client.pttl(keys.activity(SID)) == client.pttl(keys.activity("another-session"))
    client.close()


def test_a_message_is_delivered_receipted_and_settled_exactly_once(home: Path, store: RedisStore) -> None:
    store.append(
        session_inbox(SID), [Envelope(id="00000000000000a1", body="please review PR 7", enqueued_at=1)]
    )
    first = run_hook(home)
    context = json.loads(first.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "1 new peer message(s)" in context and "please review PR 7" in context
    receipt = store.receipt_get("00000000000000a1")
    assert receipt is not None and (receipt.via, receipt.recipient_session_id) == ("hook", SID)
    assert store.depth(session_inbox(SID)) == 0 and store.in_flight(session_inbox(SID)) == []
    assert run_hook(home).stdout == b""  # settled: the second run has nothing to deliver
    marker = store.activity_get(SID)
    assert marker is not None and marker.status == "busy"


def test_a_batch_a_dead_reader_left_in_flight_is_recovered_and_delivered_by_the_hook(
    home: Path, store: RedisStore
) -> None:
    inbox = session_inbox(SID)
    store.append(inbox, [Envelope(id="00000000000000b2", body="left behind", enqueued_at=1)])
    gone = subprocess.Popen(["true"])
    gone.wait()
    batch = take_all(store, inbox, Holder(gone.pid, 1))
    assert batch is not None and store.depth(inbox) == 0  # only the in-flight hash says "mail"
    delivered = run_hook(home)
    assert b"left behind" in delivered.stdout
    assert store.in_flight(inbox) == [] and run_hook(home).stdout == b""


def test_the_stop_hook_delivers_by_blocking_else_stamps_idle(home: Path, store: RedisStore) -> None:
    store.append(session_inbox(SID), [Envelope(id="00000000000000c3", body="one more thing", enqueued_at=1)])
    blocked = json.loads(run_hook(home, "stop", payload("Stop")).stdout)
    assert blocked["decision"] == "block" and "one more thing" in blocked["reason"]
    assert store.activity_get(SID) is None  # not stamped idle: the turn goes on
    assert run_hook(home, "stop", payload("Stop")).stdout == b""
    marker = store.activity_get(SID)
    assert marker is not None and marker.status == "idle"


def test_a_subagents_tool_call_stamps_but_never_delivers(home: Path, store: RedisStore) -> None:
    store.append(session_inbox(SID), [Envelope(id="00000000000000d4", body="for the agent", enqueued_at=1)])
    assert run_hook(home, data=payload(agent_id="sub-1")).stdout == b""
    assert store.depth(session_inbox(SID)) == 1
    marker = store.activity_get(SID)
    assert marker is not None and marker.status == "busy"


# The RESP client ------------------------------------------------------------------------------------------
def test_a_pipeline_answers_in_order_with_an_error_reply_in_its_place(redis_url: str, team: str) -> None:
    key = Keys(team).key("resp-probe")
    with Client(parse_url(redis_url)) as client:
        replies = client.pipeline(
            [("SET", key, b"v\r\n\x00"), ("LPUSH", key, "x"), ("GET", key), ("DEL", key), ("GET", key)]
        )
    assert replies[0] == b"OK" and replies[2] == b"v\r\n\x00" and replies[3] == 1 and replies[4] is None
    assert isinstance(replies[1], ReplyError) and replies[1].message.startswith("WRONGTYPE")


def test_the_client_authenticates_as_an_acl_user_and_selects_its_database(redis_url: str) -> None:
    admin = raw(redis_url)
    user = "u" + uuid.uuid4().hex[:8]
    admin.acl_setuser(user, enabled=True, passwords=["+pa:ss w@rd"], keys=["*"], commands=["+@all"])
    try:
        target = parse_url(redis_url)
        mine = RedisTarget(target.host, port=target.port, db=3, username=user, password="pa:ss w@rd")
        with Client(mine) as client:
            assert client.call("SET", f"{user}:k", "in db 3") == b"OK"
        assert redis.Redis(host=target.host, port=target.port, db=3).get(f"{user}:k") == b"in db 3"
        wrong = RedisTarget(target.host, port=target.port, username=user, password="nope")
        with pytest.raises(RespError, match="refused us"), Client(wrong) as client:
            client.call("PING")
    finally:
        redis.Redis(host=parse_url(redis_url).host, port=parse_url(redis_url).port, db=3).delete(f"{user}:k")
        admin.acl_deluser(user)
        admin.close()


def fake_server(answer: bytes) -> tuple[int, threading.Thread]:
    """A one-connection TCP server that sends ``answer`` after the request (then holds the line open)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(65536)
            conn.sendall(answer)
            conn.settimeout(3)
            with contextlib.suppress(OSError):
                conn.recv(1)  # until the client hangs up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return int(listener.getsockname()[1]), thread


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"$999999999\r\n", "bulk string of 999999999 bytes"),
        (b"*100000\r\n", "an array of 100000 items"),
        (b"*1\r\n" * 10, "at depth 4"),
        (b"?what\r\n", "unknown reply type"),
        (b":12x\r\n", "malformed integer"),
        (b"+" + b"x" * 70_000, "longer than this client reads"),
        (b"$3\r\nabcd\r\n", "without its CRLF"),
        (b"", "did not answer"),
    ],
)
def test_a_reply_past_the_bounds_or_a_silent_server_is_a_resp_error_not_a_hang(
    answer: bytes, said: str
) -> None:
    port, thread = fake_server(answer)
    started = time.monotonic()
    with (
        pytest.raises(RespError, match=said),
        Client(RedisTarget("127.0.0.1", port=port), timeout_s=0.5) as c,
    ):
        c.call("PING")
    assert time.monotonic() - started < 2.5
    thread.join(5)
