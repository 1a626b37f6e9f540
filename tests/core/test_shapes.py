"""Records validate at construction; the converter writes the reference's exact shapes."""

from __future__ import annotations

import pytest

from oxtail_core.convert import ShapeError, envelope_from_line, envelope_to_line, from_wire, to_wire
from oxtail_core.model import (
    BODY_MAX_BYTES,
    ActivityMarker,
    ClientInfo,
    Envelope,
    PendingAsk,
    RegistryEntry,
    StateCard,
    check_body,
)


def test_mailbox_line_key_order_and_prefix() -> None:
    env = Envelope(
        id="0123456789abcdef", body="abc", enqueued_at=5, body_bytes=None, from_session_id="s1", reply_to=""
    )
    line = envelope_to_line(env)
    assert line == (
        '{"schema_version":1,"id":"0123456789abcdef","body":"abc","enqueued_at":5,'
        '"body_bytes":3,"origin":"peer","from_session_id":"s1"}\n'
    )
    assert envelope_from_line(line) == Envelope(
        id="0123456789abcdef", body="abc", enqueued_at=5, body_bytes=3, from_session_id="s1"
    )


@pytest.mark.parametrize("body", ['a"b', "a\\b", "a\nb", "🦊", "\x00", "\ud83e"])
def test_bodies_round_trip(body: str) -> None:
    env = Envelope(id="0123456789abcdef", body=body, enqueued_at=1)
    assert envelope_from_line(envelope_to_line(env)).body == body


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1]",
        '{"schema_version":true,"id":"x","body":"b"}',
        '{"schema_version":2,"id":"x","body":"b"}',
        '{"schema_version":1,"id":5,"body":"b"}',
        '{"schema_version":1,"id":"x"}',
        '{"schema_version":1,"id":"x","body":"b","reply_to":7}',
    ],
)
def test_invalid_lines_are_rejected_with_a_reason(line: str) -> None:
    with pytest.raises(ShapeError):
        envelope_from_line(line)


def test_bad_field_names_itself() -> None:
    with pytest.raises(TypeError, match="'body'"):
        Envelope(id="x", body=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'enqueued_at'"):
        Envelope(id="x", body="b", enqueued_at=True)
    with pytest.raises(ValueError, match="'server_pid'"):
        RegistryEntry(server_pid=0, started_at=1, client=ClientInfo(type="unknown"))


def test_body_cap_is_in_utf8_bytes() -> None:
    check_body("a" * BODY_MAX_BYTES)
    with pytest.raises(ValueError, match="body exceeds 8192 UTF-8 bytes"):
        check_body("a" * (BODY_MAX_BYTES + 1))
    with pytest.raises(ValueError, match="8192"):
        check_body("é" * 4097)
    with pytest.raises(ValueError):
        check_body("")


def test_registry_entry_round_trip_and_shape() -> None:
    entry = RegistryEntry(
        server_pid=9351,
        started_at=1795609014,
        client=ClientInfo(type="codex", session_id="e", session_id_source="self-register", cwd="/p"),
        state=StateCard(purpose="x", updated_at=5),
        process_start=1795609013.25,
    )
    wire = to_wire(entry)
    assert list(wire) == [
        "server_pid",
        "started_at",
        "client",
        "tmux_pane",
        "tmux_session",
        "state",
        "capabilities",
        "process_start",
    ]
    assert list(wire["client"]) == ["type", "session_id", "transcript_path", "session_id_source", "cwd"]
    assert wire["capabilities"] == {
        "mailbox": {
            "reply_to": True,
            "provenance": True,
            "push_budget": True,
            "session_keyed": True,
            "obligations": True,
        }
    }
    assert from_wire(wire, RegistryEntry) == entry


def test_old_registry_entries_are_tolerated_and_broken_ones_refused() -> None:
    old = {
        "server_pid": 3,
        "started_at": 1,
        "client": {"type": "claude-code", "session_id": None, "cwd": "/"},
    }
    entry = from_wire(old, RegistryEntry)
    assert entry.capabilities is None and not entry.reply_to_capable and entry.state is None
    for bad in ({"server_pid": 3, "started_at": 1}, {"server_pid": "3", "started_at": 1, "client": {}}, []):
        with pytest.raises(ShapeError):
            from_wire(bad, RegistryEntry)


def test_pending_and_activity_shapes() -> None:
    ask = PendingAsk(requester="s", request_id="r", at_ms=7, peer="p")
    wire = {"sessionId": "s", "requestId": "r", "at": 7, "target": "p", "attempts": 0, "lastRepokeAt": None}
    assert to_wire(ask) == wire
    assert from_wire(to_wire(ask), PendingAsk) == ask
    ours_020 = {"sessionId": "s", "requestId": "r", "at": 7, "peerSessionId": "p"}
    assert from_wire(ours_020, PendingAsk) == ask
    expectation = PendingAsk(
        "s", "r", 7, peer="p", message_id="m", owner_epoch=5, attempts=2, last_repoke_at=9
    )
    assert list(to_wire(expectation)) == [
        "sessionId",
        "requestId",
        "at",
        "target",
        "messageId",
        "ownerEpoch",
        "attempts",
        "lastRepokeAt",
    ]
    assert from_wire(to_wire(expectation), PendingAsk) == expectation
    marker = ActivityMarker(status="idle", at_ms=9)
    assert from_wire(to_wire(marker), ActivityMarker) == marker
    with pytest.raises(ShapeError):
        from_wire({"status": 1}, ActivityMarker)


def test_a_state_card_round_trips_and_a_record_without_a_codec_is_refused() -> None:
    card = StateCard(purpose="p", updated_at=3)
    assert from_wire(to_wire(card), StateCard) == card
    with pytest.raises(ShapeError):
        from_wire([], StateCard)
    with pytest.raises(TypeError):
        to_wire(object())
