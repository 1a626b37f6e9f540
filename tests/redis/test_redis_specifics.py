"""Redis-only promises: URLs and names are validated, every key of a team sits in one hash tag,
a replayed script call applies once, and Redis failures surface as StoreError / StoreBusy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.retry import Retry

from oxtail_core.errors import StoreBusy, StoreError
from oxtail_core.limits import INBOX_MAX_BYTES
from oxtail_core.protocols import Holder
from oxtail_core.testing.contract import ALIVE, ME, OTHER, entry, mint, take_all
from oxtail_redis.inbox import Inboxes
from oxtail_redis.keys import Keys, prefix_from_env
from oxtail_redis.store import RedisStore
from oxtail_redis.url import RedisTarget, parse_url


@pytest.fixture
def store(redis_store_factory: Any) -> Iterator[RedisStore]:
    made, cleanup = redis_store_factory()
    try:
        yield made
    finally:
        cleanup()


def test_a_url_gives_host_port_db_tls_and_the_acl_user_and_password() -> None:
    assert parse_url("redis://localhost") == RedisTarget(host="localhost")
    target = parse_url("rediss://team%2Da:p%40ss@redis.example:6380/3?ssl_ca_certs=/etc/ca.pem")
    assert target == RedisTarget(
        host="redis.example",
        port=6380,
        db=3,
        tls=True,
        username="team-a",
        password="p@ss",
        ca_certs="/etc/ca.pem",
    )
    assert target.masked() == "rediss://team-a:***@redis.example:6380/3"
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost",
        "redis://",
        "redis://h/notadb",
        "redis://h?namespace=x",
        "redis://h?ssl_ca_certs=/ca",
        "redis://h:99999",
        "redis://h#frag",
    ],
)
def test_a_bad_url_is_a_clear_store_error_that_never_shows_the_password(url: str) -> None:
    with pytest.raises(StoreError, match="bad Redis URL"):
        parse_url(url)
    with pytest.raises(StoreError) as caught:
        parse_url("http://u:secret@h")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("team", ["", "Team", "a{b}", "a:b", "a*", "-x", "x" * 64])
def test_a_team_namespace_that_could_escape_its_hash_tag_is_refused(team: str) -> None:
    with pytest.raises(StoreError, match="invalid team"):
        Keys(team)


def test_the_prefix_comes_from_the_environment_and_is_validated() -> None:
    assert prefix_from_env({}) == "oxt"
    assert prefix_from_env({"OXTAIL_REDIS_PREFIX": "ox2"}) == "ox2"
    with pytest.raises(StoreError, match="invalid key prefix"):
        Keys("team", "a:b")


def test_every_key_a_team_writes_carries_its_hash_tag_and_no_caller_string(store: RedisStore) -> None:
    store.append(ME, [mint(1, "body {x}:*")])
    store.append(OTHER, [mint(2)])
    batch = take_all(store)
    store.ledger_record("weird {session}:*", mint(1), keep=10)
    store.registry_put(entry(4242))
    store.dedupe_claim("target:*", "reply", 5, 0)
    store.reservations_update("/some/{project}", lambda rs: ((), None))
    store.settle(batch)
    keys = [k.decode() for k in store._conn.client.scan_iter(match=store._keys.pattern)]
    assert keys and all(k.startswith(store._keys.base) for k in keys)
    assert not any("weird" in k or "target" in k or "project" in k for k in keys)


def test_a_replayed_append_or_take_commit_changes_the_store_once(store: RedisStore) -> None:
    inbox = store._keys.inbox(ME)
    regi = store._keys.key("regi")
    line = '{"id":"0000000000000001","body":"x"}'
    args = ["0000000000000001", "0", "", "", str(INBOX_MAX_BYTES), line]
    for _ in range(2):  # the same call twice: what a retry after a lost reply sends
        assert (
            store._conn.run("append", [inbox.lines, inbox.events, inbox.recent, regi, inbox.waiting], args)
            == 1
        )
    assert store.depth(ME) == 1
    assert int(store._conn.client.get(inbox.waiting)) == len(line) + 1  # counted once
    keys = [inbox.lines, inbox.head, inbox.flights, inbox.taken, inbox.quarantine, inbox.waiting]
    for _ in range(2):
        assert store._conn.run("take_commit", keys, ["0", "b" * 16, "{}", 0, 0]) == 1
    assert store.depth(ME) == 0 and store._conn.client.hlen(inbox.flights) == 1
    assert int(store._conn.client.get(inbox.waiting)) == 0


def test_a_replayed_single_winner_call_gives_the_first_answer_again(store: RedisStore) -> None:
    hashes = list(store._keys.indexed("dd"))
    op = store._keys.op("c" * 16)
    assert store._conn.run("claim_stamp", [*hashes, op], ["f", 5, 0]) == 1
    assert store._conn.run("claim_stamp", [*hashes, op], ["f", 5, 0]) == 1  # replay: still the winner
    assert store._conn.run("claim_stamp", [*hashes, store._keys.op("d" * 16)], ["f", 6, 0]) == 0


def test_a_take_whose_snapshot_went_stale_reads_again_and_takes_what_is_there(store: RedisStore) -> None:
    store.append(ME, [mint(1), mint(2), mint(3)])
    seen: list[int] = []

    def select(envelopes: Any) -> list[int]:
        seen.append(len(envelopes))
        if len(seen) == 1:  # another reader takes the head between our snapshot and our commit
            assert store.take(ME, lambda es: [0], Holder(pid=9)) is not None
        return [0]

    batch = store.take(ME, select, ALIVE)
    assert seen == [3, 2]  # the first commit was refused (head changed), the re-read saw two
    assert batch is not None and [e.id for e in batch.envelopes] == [mint(2).id]


def test_a_foreign_value_of_the_wrong_type_is_a_store_error_not_a_traceback(store: RedisStore) -> None:
    store._conn.client.set(store._keys.inbox(ME).lines, "not a list")
    with pytest.raises(StoreError):
        store.depth(ME)
    with pytest.raises(StoreError):
        store.append(ME, [mint(1)])


def test_an_unreachable_server_is_store_busy_for_reads_and_outcome_unknown_for_writes() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", "team", timeout_s=0.2)
    with pytest.raises(StoreBusy):
        store.depth(ME)
    with pytest.raises(StoreError, match="outcome unknown") as caught:
        store.append(ME, [mint(1)])
    assert not isinstance(caught.value, StoreBusy)
    assert store.peek(ME, mint(1).id) is False  # peek never raises


def test_the_store_never_uses_redis_py_default_retries(store: RedisStore) -> None:
    retry = store._conn.client.get_connection_kwargs()["retry"]
    assert isinstance(retry, Retry) and retry._retries == 3
    assert store._conn.blocking.get_connection_kwargs()["retry"]._retries == 0


def test_a_line_that_is_not_an_envelope_is_quarantined_by_take_and_never_handed_out(
    store: RedisStore,
) -> None:
    store.append(ME, [mint(1)])
    store._conn.client.rpush(store._keys.inbox(ME).lines, b"\xff not json")
    store.append(ME, [mint(2)])
    batch = take_all(store)
    assert batch is not None and [e.id for e in batch.envelopes] == [mint(1).id, mint(2).id]
    assert store.depth(ME) == 0
    assert store._conn.client.lrange(store._keys.inbox(ME).quarantine, 0, -1) == [b"\xff not json"]


def test_appends_and_restores_beyond_luas_unpack_limit_go_in_chunks_and_keep_order(store: RedisStore) -> None:
    many = [mint(n) for n in range(9_000)]
    assert store.append(ME, many)
    batch = take_all(store)
    assert batch is not None and len(batch.envelopes) == 9_000
    store.restore(batch)
    again = take_all(store)
    assert again is not None and [e.id for e in again.envelopes] == [e.id for e in many]


def test_a_take_whose_commit_got_no_answer_is_busy_and_put_back_by_the_next_take(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append(ME, [mint(1), mint(2)])
    original = Inboxes._commit

    def lost_reply(self: Inboxes, *args: Any) -> bool:
        original(self, *args)  # the server committed; the reply never came
        raise redis.ConnectionError("connection reset")

    monkeypatch.setattr(Inboxes, "_commit", lost_reply)
    with pytest.raises(StoreBusy):
        take_all(store)
    monkeypatch.setattr(Inboxes, "_commit", original)
    batch = take_all(store)  # the unresolved batch went back first: nothing stranded in flight
    assert batch is not None and [e.id for e in batch.envelopes] == [mint(1).id, mint(2).id]
    assert [b.batch_id for b in store.in_flight(ME)] == [batch.batch_id]


def test_two_teams_on_one_redis_never_see_each_other(redis_store_factory: Any) -> None:
    (a, drop_a), (b, drop_b) = redis_store_factory(), redis_store_factory()
    try:
        a.append(ME, [mint(1)])
        a.registry_put(entry(4242))
        assert b.depth(ME) == 0 and b.registry_entries() == [] and take_all(b) is None
        b.drop_namespace()
        assert a.depth(ME) == 1
    finally:
        drop_a()
        drop_b()


def test_scripts_flushed_from_the_server_are_loaded_again_without_running_twice(store: RedisStore) -> None:
    store.append(ME, [mint(1)])
    store._conn.client.script_flush()  # what a server restart does to every cached script
    store.append(ME, [mint(2)])  # NOSCRIPT means "not run": reloaded and run once
    batch = take_all(store)
    assert batch is not None and [e.id for e in batch.envelopes] == [mint(1).id, mint(2).id]
