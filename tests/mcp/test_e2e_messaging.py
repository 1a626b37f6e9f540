"""The four messaging tools end to end: real ``oxtail-mcp`` servers, the official MCP client, real tmux.

Exact response texts, key orders, error strings and wake_status / wake_reason
values are those of messaging.md §2 and §8 (Appendix E checks E27-E43 where a
real server can reach them).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from oxtail_core import texts
from tests.support.e2e import WAKE_TEXT, AgentBase, Result, World, sid, wait_until, wake_timing, world
from tests.support.transcripts import claude_dir

SEND_KEYS = ["schema_version", "ok", "message_id", "target_session_id", "target_server_pid"]
HOOKLESS_KEYS = [*SEND_KEYS, "wake_status", "wake_reason"]  # a plain send to a claimed, markerless peer
OUTLOOK_KEYS = [*SEND_KEYS, "delivery_outlook", "hint"]  # a plain send to an idle hooked peer
STRANDED_HINT = (
    "Peer isn't actively reading right now — it reads this at its next turn. If this is context/FYI, "
    "that's fine, leave it. If it must ACT: ask_peer (you need an answer this turn / will block on it), "
    'action_required:true (a durable task you track via my_open_work), or wake:"auto" (just nudge it to '
    "read now)."
)
READ_KEYS = ["schema_version", "ok", "drained", "count", "messages"]
ENVELOPE_KEYS = ["schema_version", "id", "body", "enqueued_at", "body_bytes", "origin", "from_session_id"]
ASK_KEYS = [
    "schema_version",
    "ok",
    "message_id",
    "request_id",
    "wake_status",
    "reply",
    "correlation",
    "timeout_ms",
    "timed_out",
]
REPLY_KEYS = ["id", "body", "enqueued_at", "from_session_id", "reply_to", "correlation"]
REPLY_TOOL_KEYS = [
    "schema_version",
    "ok",
    "message_id",
    "in_reply_to_message_id",
    "target_session_id",
    "target_server_pid",
    "correlation",
]
EMPTY_READ = '{"schema_version":1,"ok":true,"drained":true,"count":0,"messages":[]}'
NOT_FOUND = '{"schema_version":1,"ok":false,"error":"target-not-found"}'


def text(result: Result) -> str:
    assert not result.is_error, result
    return result.text


def ask_in_thread(agent: AgentBase, args: dict, timeout_s: float = 60) -> tuple[threading.Thread, list]:
    out: list = []

    def run() -> None:
        started = time.monotonic()
        out.append(agent.call("ask_peer", args, timeout_s=timeout_s))
        out.append(time.monotonic() - started)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# ---------------------------------------------------------------------------------------------------------
# Without tmux
# ---------------------------------------------------------------------------------------------------------


def test_send_and_read_exact_shapes(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        assert text(b.call("read_my_messages")) == EMPTY_READ

        bodies = ['a"b', "a\\b", "a\nb", "🦊 é", "x" * 8192]
        sent = []
        for body in bodies:
            got = a.ok("send_message", {"target": sid(2), "body": body})
            # b is claimed and has no marker (hookless): a plain send wakes it; it has no pane
            assert list(got) == HOOKLESS_KEYS
            assert (got["wake_status"], got["wake_reason"]) == ("skipped_no_target", "hookless_default")
            assert got["ok"] is True and got["target_session_id"] == sid(2)
            assert got["target_server_pid"] == b.server_pid()
            assert len(got["message_id"]) == 16 and int(got["message_id"], 16) >= 0
            sent.append(got["message_id"])
        assert len(set(sent)) == len(sent)
        extra = a.ok("send_message", {"target": sid(2), "body": "r", "reply_to": "req-x", "wake": "off"})
        assert list(extra) == SEND_KEYS  # wake off: no wake_status, no wake_reason
        sourced = a.ok("send_message", {"target": sid(2), "body": "s", "source_message_id": "m-1"})
        assert list(sourced) == HOOKLESS_KEYS

        got = b.read()
        assert list(got) == READ_KEYS and got["count"] == len(bodies) + 2
        messages = got["messages"]
        assert [m["id"] for m in messages] == [*sent, extra["message_id"], sourced["message_id"]]
        assert [m["body"] for m in messages[: len(bodies)]] == bodies
        for message, body in zip(messages, bodies, strict=False):
            assert list(message) == ENVELOPE_KEYS
            assert message["body_bytes"] == len(body.encode()) and message["origin"] == "peer"
            assert message["from_session_id"] == sid(1) and isinstance(message["enqueued_at"], int)
        assert list(messages[-2]) == [*ENVELOPE_KEYS, "reply_to"] and messages[-2]["reply_to"] == "req-x"
        assert list(messages[-1]) == [*ENVELOPE_KEYS, "source_message_id"]
        assert text(b.call("read_my_messages")) == EMPTY_READ
        # The response text is compact JSON with raw non-ASCII (messaging.md §0.2).
        a.ok("send_message", {"target": sid(2), "body": "🦊"})
        raw = text(b.call("read_my_messages"))
        assert '"body":"🦊"' in raw and ", " not in raw


def test_resolution_and_reply_errors(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        other = w.project("other")
        nested = w.project("proj/nested")
        plain_sub = proj / "plain-sub"
        plain_sub.mkdir()
        me, peer, far, inner, sub, anon = w.directs(
            [
                ("me", proj, None),
                ("peer", proj, None),
                ("far", other, None),
                ("inner", nested, None),
                ("sub", plain_sub, None),
                ("anon", proj, None),
            ]
        )
        for n, agent in enumerate((me, peer, far, inner, sub), start=1):
            agent.claim(sid(n))
        ghost = sid(99)

        # target-not-found, the four examples of messaging.md §2.1.
        assert text(me.call("send_message", {"target": ghost, "body": "x"})) == NOT_FOUND
        assert text(me.call("send_message", {"target": ghost, "body": "x", "reply_to": "r"})) == (
            '{"schema_version":1,"ok":false,"error":"target-not-found",'
            '"wake_status":"skipped_no_target","wake_reason":"reply_to_default"}'
        )
        assert text(me.call("send_message", {"target": ghost, "body": "x", "wake": "auto"})) == (
            '{"schema_version":1,"ok":false,"error":"target-not-found","wake_status":"skipped_no_target"}'
        )
        assert text(
            me.call("send_message", {"target": ghost, "body": "x", "wake": "off", "reply_to": "r"})
        ) == (NOT_FOUND)
        assert text(me.call("send_message", {"target": "no-such-tmux-session", "body": "x"})) == NOT_FOUND
        assert text(me.call("ask_peer", {"target": ghost, "body": "x"})) == (
            '{"schema_version":1,"ok":false,"error":"target-not-found","wake_status":"skipped_no_target"}'
        )

        # self-send, by session id (and reply_to only adds the reason, never a status).
        assert text(me.call("send_message", {"target": sid(1), "body": "x"})) == (
            '{"schema_version":1,"ok":false,"error":"self-send"}'
        )
        assert text(me.call("send_message", {"target": sid(1), "body": "x", "reply_to": "r"})) == (
            '{"schema_version":1,"ok":false,"error":"self-send","wake_reason":"reply_to_default"}'
        )
        assert text(me.call("ask_peer", {"target": sid(1), "body": "x"})) == (
            '{"schema_version":1,"ok":false,"error":"self-send"}'
        )

        # cross-project: another repository, and a nested repository inside ours.
        cross = '{"schema_version":1,"ok":false,"error":"cross-project"}'
        for target in (sid(3), sid(4)):
            assert text(me.call("send_message", {"target": target, "body": "x"})) == cross
            assert text(me.call("ask_peer", {"target": target, "body": "x", "timeout_ms": 100})) == cross
            assert text(me.call("send_message", {"target": target, "body": "x", "wake": "auto"})) == cross
        assert text(far.call("send_message", {"target": sid(1), "body": "x"})) == cross
        # A plain subdirectory (no .git of its own) is the same project.
        assert me.ok("send_message", {"target": sid(5), "body": "to sub"})["ok"] is True
        assert sub.read()["messages"][0]["body"] == "to sub"

        # Upper-case UUIDs are session ids for us (case-insensitive match, README improvement 7).
        up = me.ok("send_message", {"target": sid(2).upper(), "body": "upper"})
        assert up["ok"] is True and up["target_session_id"] == sid(2)

        # reply_to_message errors, exact messages of messaging.md §2.4.
        assert text(anon.call("reply_to_message", {"message_id": "0123456789abcdef", "body": "x"})) == (
            '{"schema_version":1,"ok":false,"error":"no-session-id","message":"This session has not claimed '
            'a session_id, so it has no received-ledger to reply from. Call claim_session first."}'
        )
        assert text(peer.call("reply_to_message", {"message_id": "feedfacefeedface", "body": "x"})) == (
            '{"schema_version":1,"ok":false,"error":"message-not-found","message":"No received message '
            "feedfacefeedface in this session's ledger (it may have aged out of retention, or predates "
            'reply_to_message). Fall back to send_message with an explicit target."}'
        )
        unsigned = anon.ok("send_message", {"target": sid(2), "body": "from nobody"})
        assert unsigned["ok"] is True
        inbound = [m for m in peer.read()["messages"] if m["body"] == "from nobody"]
        assert len(inbound) == 1 and "from_session_id" not in inbound[0]
        mid = unsigned["message_id"]
        assert text(peer.call("reply_to_message", {"message_id": mid, "body": "x"})) == (
            f'{{"schema_version":1,"ok":false,"error":"no-reply-target","message":"Inbound message {mid} '
            'has no from_session_id, so there is no peer to reply to."}'
        )

        # A successful reply to a plain message: uncorrelated; a plain send, so the hookless default
        # wakes me (no marker), and finds no pane.
        plain = me.ok("send_message", {"target": sid(2), "body": "plain"})
        assert [m["body"] for m in peer.read()["messages"]] == ["plain"]
        reply = peer.ok("reply_to_message", {"message_id": plain["message_id"], "body": "answer"})
        assert list(reply) == [*REPLY_TOOL_KEYS, "wake_status", "wake_reason"]
        assert (reply["wake_status"], reply["wake_reason"]) == ("skipped_no_target", "hookless_default")
        assert reply["in_reply_to_message_id"] == plain["message_id"]
        assert (reply["target_session_id"], reply["correlation"]) == (sid(1), "uncorrelated")
        got = me.read()["messages"]
        assert [(m["body"], m.get("source_message_id"), m.get("reply_to")) for m in got] == [
            ("answer", plain["message_id"], None)
        ]
        # The reply landed in the original sender's ledger: it can be replied to in turn.
        back = me.ok("reply_to_message", {"message_id": reply["message_id"], "body": "thanks"})
        assert back["ok"] is True and back["target_session_id"] == sid(2)

        # A reply whose original sender is gone: resolution error with the provenance keys.
        assert (
            inner.call("send_message", {"target": sid(4).upper(), "body": "x"}).json["error"] == "self-send"
        )
        peer_msg = me.ok("send_message", {"target": sid(2), "body": "bye"})
        assert [m["body"] for m in peer.read()["messages"]] == ["thanks", "bye"]
        me_pid = me.server_pid()
        me.close()
        assert wait_until(lambda: not psutil.pid_exists(me_pid) or not w.registry_file(me_pid).exists(), 10)
        gone = peer.ok("reply_to_message", {"message_id": peer_msg["message_id"], "body": "late"})
        assert list(gone) == [
            "schema_version",
            "ok",
            "error",
            "in_reply_to_message_id",
            "original_from_session_id",
        ]
        assert (gone["error"], gone["in_reply_to_message_id"], gone["original_from_session_id"]) == (
            "target-not-found",
            peer_msg["message_id"],
            sid(1),
        )


def test_wake_statuses_without_panes(tmp_path: Path) -> None:
    """E27-E30, the plain seam of 0.32.1 and the strict gate's outcomes for claimed peers that have no
    tmux pane."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b, c, d = w.directs([("a", proj, None), ("b", proj, None), ("c", proj, None), ("d", proj, None)])
        for n, agent in enumerate((a, b, c, d), start=1):
            agent.claim(sid(n))

        def send(target: int, **args: str) -> dict:
            return a.ok("send_message", {"target": sid(target), "body": "m", **args})

        def wake_fields(body: dict) -> tuple:
            return body.get("wake_status"), body.get("wake_reason")

        # The plain seam (accounting §4, §5.2): a hookless peer is woken (hookless_default), a hooked
        # one that is fresh busy gets nothing, an idle / stale busy / future busy one the outlook.
        hookless = send(2)
        assert list(hookless) == HOOKLESS_KEYS
        assert wake_fields(hookless) == ("skipped_no_target", "hookless_default")
        w.set_activity(sid(2), "busy")
        assert list(send(2)) == SEND_KEYS  # E30: its hooks deliver this turn
        for status, age in (("idle", 0), ("busy", 600_001), ("busy", -60_000)):
            w.set_activity(sid(2), status, age_ms=age)
            advised = send(2)
            assert list(advised) == OUTLOOK_KEYS, (status, age)
            assert (advised["delivery_outlook"], advised["hint"]) == ("stranded_until_read", STRANDED_HINT)
        assert list(send(2, wake="off")) == SEND_KEYS  # wake off: neither a wake nor the outlook
        # E27: reply_to to a fresh-idle claimed peer without a pane, then the same again. The
        # reference answers the repeat with skipped_deduped; we stamp the dedupe and rate records only
        # when a keystroke was sent (README improvement 7, R59), so the repeat tries again.
        # (Dedupe and rate limiting after a real keystroke: test_wake_lines_in_panes_claude_and_codex.)
        w.set_activity(sid(2), "idle")
        first = send(2, reply_to="req-1")
        assert list(first) == [*SEND_KEYS, "wake_status", "wake_reason"]
        assert wake_fields(first) == ("skipped_no_target", "reply_to_default")
        assert wake_fields(send(2, reply_to="req-1")) == ("skipped_no_target", "reply_to_default")
        assert wake_fields(send(2, reply_to="req-2")) == ("skipped_no_target", "reply_to_default")
        assert not [n for n in os.listdir(w.oxtail_home / "autowake") if not n.startswith(".")]
        # E28: wake off -> neither field.
        assert list(send(2, reply_to="req-3", wake="off")) == SEND_KEYS
        # Not fresh idle: no marker / busy / stale idle / future idle.
        assert wake_fields(send(3, reply_to="req-1")) == ("skipped_no_fresh_idle", "reply_to_default")
        w.set_activity(sid(3), "busy")
        assert wake_fields(send(3, reply_to="req-1")) == ("skipped_no_fresh_idle", "reply_to_default")
        w.set_activity(sid(3), "idle", age_ms=300_001)
        assert wake_fields(send(3, reply_to="req-1")) == ("skipped_no_fresh_idle", "reply_to_default")
        w.set_activity(sid(3), "idle", age_ms=-60_000)
        assert wake_fields(send(3, reply_to="req-1")) == ("skipped_no_fresh_idle", "reply_to_default")
        # E29: reply_to with wake auto, no marker / busy marker: lenient, no wake_reason.
        auto = send(4, reply_to="req-1", wake="auto")
        assert list(auto) == [*SEND_KEYS, "wake_status"] and auto["wake_status"] == "skipped_no_target"
        w.set_activity(sid(4), "busy")
        assert wake_fields(send(4, reply_to="req-2", wake="auto")) == ("skipped_busy", None)
        assert wake_fields(send(4, wake="auto")) == ("skipped_busy", None)
        # Stale busy -> the lenient wake proceeds (and finds no pane).
        w.set_activity(sid(4), "busy", age_ms=600_001)
        assert wake_fields(send(4, wake="auto")) == ("skipped_no_target", None)
        # Every one of those messages was delivered, whatever the wake did.
        assert (b.read()["count"], c.read()["count"], d.read()["count"]) == (10, 4, 4)


def pending_files(w: World) -> list[str]:
    path = w.oxtail_home / "pending-ask"
    return sorted(n for n in os.listdir(path) if n.startswith("p-")) if path.exists() else []


def test_ask_peer_shapes_timeouts_and_late_replies(tmp_path: Path) -> None:
    """E31-E35, E38, E42-E43 and a polling peer's answer, over real servers."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        asker, peer, quiet, killsw, clamped, fast = w.directs(
            [
                ("asker", proj, None),
                ("peer", proj, None),
                ("quiet", proj, None),
                ("killsw", proj, {"OXTAIL_AUTOWAKE": "off"}),
                ("clamped", proj, {"OXTAIL_ASK_PEER_MAX_TIMEOUT_MS": "300"}),
                ("fast", proj, None),
            ]
        )
        for n, agent in enumerate((asker, peer, quiet, killsw, clamped, fast), start=1):
            agent.claim(sid(n))

        # A peer that polls every 10 ms answers; the ask returns its correlated reply.
        fast.start_responder(interval_ms=10, prefix="re: ")
        started = time.monotonic()
        got = asker.ok("ask_peer", {"target": sid(6), "body": "what is 6*7?", "timeout_ms": 20_000})
        elapsed = time.monotonic() - started
        assert list(got) == ASK_KEYS
        assert (got["ok"], got["timed_out"], got["correlation"], got["timeout_ms"]) == (
            True,
            False,
            "correlated",
            20_000,
        )
        # answered within the grace: skipped_busy (accounting A44); else woken, and no pane
        assert got["wake_status"] in {"skipped_busy", "skipped_no_target"}
        assert list(got["reply"]) == REPLY_KEYS
        assert got["reply"]["body"] == "re: what is 6*7?"
        assert (got["reply"]["from_session_id"], got["reply"]["reply_to"]) == (sid(6), got["request_id"])
        assert got["reply"]["correlation"] == "correlated"
        assert elapsed < 5, elapsed
        assert pending_files(w) == []

        # E35: no answer -> timed out, one durable pending record; the question is in the peer's inbox.
        got = asker.ok("ask_peer", {"target": sid(2), "body": "q1", "timeout_ms": 150})
        assert list(got) == ASK_KEYS
        assert (got["timed_out"], got["reply"], got["correlation"], got["timeout_ms"]) == (
            True,
            None,
            "none",
            150,
        )
        assert got["wake_status"] == "skipped_no_target"
        assert len(pending_files(w)) == 1
        (question,) = peer.read()["messages"]
        assert list(question) == [*ENVELOPE_KEYS, "request_id"]
        assert (question["body"], question["request_id"]) == ("q1", got["request_id"])
        # E31: the late reply consumes the record and gets the lenient pull-back attempt.
        w.set_activity(sid(1), "idle")
        late = peer.ok("reply_to_message", {"message_id": question["id"], "body": "a1"})
        assert list(late) == [*REPLY_TOOL_KEYS, "wake_status", "wake_reason"]
        assert (late["correlation"], late["wake_status"], late["wake_reason"]) == (
            "correlated",
            "skipped_no_target",
            "late_reply_to_pending",
        )
        assert pending_files(w) == []
        (answer,) = asker.read()["messages"]
        assert (answer["body"], answer["reply_to"], answer["source_message_id"]) == (
            "a1",
            got["request_id"],
            question["id"],
        )
        # E34: the same reply_to again, the requester fresh idle: strict path, deduped by the late stamp.
        again = peer.ok("send_message", {"target": sid(1), "body": "a1 again", "reply_to": got["request_id"]})
        assert (again["wake_status"], again["wake_reason"]) == ("skipped_deduped", "reply_to_default")

        # E32: late reply with wake off -> suppressed, no status, record deleted.
        got = asker.ok("ask_peer", {"target": sid(3), "body": "q2", "timeout_ms": 100})
        assert got["timed_out"] is True and len(pending_files(w)) == 1
        (question,) = quiet.read()["messages"]
        late = quiet.ok("reply_to_message", {"message_id": question["id"], "body": "a2", "wake": "off"})
        assert list(late) == [*REPLY_TOOL_KEYS, "wake_reason"]
        assert late["wake_reason"] == "late_reply_to_pending_suppressed"
        assert pending_files(w) == []

        # E33: kill switch on the replier's server, wake unset -> disabled; explicit auto -> lenient.
        got = asker.ok("ask_peer", {"target": sid(4), "body": "q3", "timeout_ms": 100})
        got2 = asker.ok("ask_peer", {"target": sid(4), "body": "q4", "timeout_ms": 100})
        assert got["timed_out"] and got2["timed_out"] and len(pending_files(w)) == 2
        q3, q4 = killsw.read()["messages"]
        late = killsw.ok("send_message", {"target": sid(1), "body": "a3", "reply_to": q3["request_id"]})
        assert (late["wake_status"], late["wake_reason"]) == ("disabled", "late_reply_to_pending")
        late = killsw.ok(
            "send_message", {"target": sid(1), "body": "a4", "reply_to": q4["request_id"], "wake": "auto"}
        )
        assert (late["wake_status"], late["wake_reason"]) == ("skipped_no_target", "late_reply_to_pending")
        assert pending_files(w) == []
        # Kill switch, strict path, no pending record: disabled without touching the store.
        plain = killsw.ok("send_message", {"target": sid(1), "body": "a5", "reply_to": "no-such-request"})
        assert (plain["wake_status"], plain["wake_reason"]) == ("disabled", "reply_to_default")
        assert [m["body"] for m in asker.read()["messages"]] == ["a1 again", "a2", "a3", "a4", "a5"]

        # E43: the server's ceiling clamps the default timeout; the requested value is reported.
        got = clamped.ok("ask_peer", {"target": sid(2), "body": "q5"})
        assert list(got) == [*ASK_KEYS[:-1], "timeout_clamped_from_ms", "timed_out"]
        assert (got["timeout_ms"], got["timeout_clamped_from_ms"], got["timed_out"]) == (300, 60000, True)
        got = clamped.ok("ask_peer", {"target": sid(2), "body": "q6", "timeout_ms": 5000})
        assert (got["timeout_ms"], got["timeout_clamped_from_ms"]) == (300, 5000)
        assert [m["body"] for m in peer.read()["messages"]] == ["q5", "q6"]


def test_ask_reply_from_third_party_is_not_taken(tmp_path: Path) -> None:
    """E38/E40: a reply without reply_to, or from another session, does not satisfy the ask; it stays."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        asker, peer, other = w.directs([("asker", proj, None), ("peer", proj, None), ("other", proj, None)])
        for n, agent in enumerate((asker, peer, other), start=1):
            agent.claim(sid(n))
        thread, out = ask_in_thread(asker, {"target": sid(2), "body": "q", "timeout_ms": 4000})
        question = wait_until(lambda: peer.read()["messages"], 10)
        assert question and question[0]["body"] == "q"
        rid = question[0]["request_id"]
        other.ok("send_message", {"target": sid(1), "body": "interloper", "reply_to": rid})
        peer.ok("send_message", {"target": sid(1), "body": "uncorrelated chatter"})
        peer.ok("send_message", {"target": sid(1), "body": "the answer", "reply_to": rid})
        thread.join(30)
        got = out[0].json
        assert (got["timed_out"], got["reply"]["body"], got["reply"]["reply_to"]) == (
            False,
            "the answer",
            rid,
        )
        assert [m["body"] for m in asker.read()["messages"]] == ["interloper", "uncorrelated chatter"]


def test_two_servers_share_one_session(tmp_path: Path) -> None:
    """Two children of one agent (both claim the same id): each message is delivered once, read by either."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        first, second, sender = w.directs(
            [("first", proj, None), ("second", proj, None), ("sender", proj, None)]
        )
        first.claim(sid(1))
        second.claim(sid(1))
        sender.claim(sid(2))
        ids = [sender.ok("send_message", {"target": sid(1), "body": f"m{i}"})["message_id"] for i in range(6)]
        got_second = second.read()["messages"]
        got_first = first.read()["messages"]
        ids += [
            sender.ok("send_message", {"target": sid(1), "body": f"n{i}"})["message_id"] for i in range(3)
        ]
        got_first += first.read()["messages"]
        got_second += second.read()["messages"]
        seen = [m["id"] for m in got_first + got_second]
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
        # A peer asked through one child can answer through the other.
        thread, out = ask_in_thread(sender, {"target": sid(1), "body": "q", "timeout_ms": 10_000})
        question = wait_until(lambda: first.read()["messages"], 10)
        assert question and question[0]["body"] == "q"
        reply = second.ok(
            "reply_to_message", {"message_id": question[0]["id"], "body": "from the other child"}
        )
        assert reply["ok"] is True and reply["correlation"] == "correlated"
        thread.join(30)
        assert out[0].json["reply"]["body"] == "from the other child"


# ---------------------------------------------------------------------------------------------------------
# With a private tmux server: wake lines typed into real panes
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.tmux
def test_wake_lines_in_panes_claude_and_codex(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        claude, codex = w.panes(
            [("claude", proj, {"CLAUDECODE": "1"}), ("codex", proj, {"CODEX_HOME": str(w.home / ".codex")})]
        )
        (sender,) = w.directs([("sender", proj, None)])
        sender.claim(sid(1))
        claude.claim(sid(2))
        codex.claim(sid(3))
        assert claude.entry()["tmux_pane"] == claude.pane and codex.entry()["tmux_session"] == "codex"

        # Busy: no keystrokes (checked below: the pane sees exactly one line in the end).
        w.set_activity(sid(2), "busy")
        got = sender.ok("send_message", {"target": "claude", "body": "b1", "wake": "auto"})
        assert got["wake_status"] == "skipped_busy"
        w.set_activity(sid(2), "idle")
        got = sender.ok("send_message", {"target": "claude", "body": "b2", "wake": "auto"})
        assert got["wake_status"] == "fired" and got["target_session_id"] == sid(2)
        keys = claude.wait_typed(WAKE_TEXT + "\n")
        typed, gap = wake_timing(keys)
        assert typed == WAKE_TEXT + "\n" and gap < 0.3, keys
        # Within the debounce window the same sender does not type again.
        again = sender.ok("send_message", {"target": sid(2), "body": "b3", "wake": "auto"})
        assert again["wake_status"] == "skipped_debounced"

        got = sender.ok("send_message", {"target": sid(3), "body": "c1", "wake": "auto"})
        assert got["wake_status"] == "fired_unconfirmed"  # Codex without a marker: pickup unconfirmed
        keys = codex.wait_typed(WAKE_TEXT + "\n")
        typed, gap = wake_timing(keys)
        assert 0.45 <= gap < 1.5, keys  # the Codex submit gap (~500 ms) between the text and Enter
        assert [m["body"] for m in claude.read()["messages"]] == ["b1", "b2", "b3"]
        assert [m["body"] for m in codex.read()["messages"]] == ["c1"]
        # The strict reply-default gate fires into a fresh-idle peer's pane, once per reply_to.
        # (past the 1 s debounce stamped by the c1 wake)
        w.set_activity(sid(3), "idle")
        assert wait_until(lambda: time.monotonic() - keys[-1][0] > 1.05, 3)
        got = sender.ok("send_message", {"target": sid(3), "body": "c2", "reply_to": "rq"})
        assert (got["wake_status"], got["wake_reason"]) == ("fired", "reply_to_default")
        codex.wait_typed((WAKE_TEXT + "\n") * 2)
        got = sender.ok("send_message", {"target": sid(3), "body": "c3", "reply_to": "rq"})
        assert (got["wake_status"], got["wake_reason"]) == ("skipped_deduped", "reply_to_default")
        got = sender.ok("send_message", {"target": sid(3), "body": "c4", "reply_to": "rq-other"})
        assert (got["wake_status"], got["wake_reason"]) == ("skipped_rate_limited", "reply_to_default")
        assert codex.typed() == (WAKE_TEXT + "\n") * 2


@pytest.mark.tmux
def test_ask_wakes_peers_which_answer(tmp_path: Path) -> None:
    """ask_peer to Codex and Claude peers in panes: the wake line arrives (with the Codex gap); a
    markerless peer is woken after the grace, a fresh-idle one at once (README improvement 5); each
    peer reads the question and answers; the ask returns the correlated reply."""
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        codex, claude = w.panes(
            [("codex", proj, {"CODEX_THREAD_ID": sid(2)}), ("claude", proj, {"CLAUDECODE": "1"})]
        )
        (asker,) = w.directs([("asker", proj, None)])
        asker.claim(sid(1))
        claude.claim(sid(3))
        assert codex.entry()["client"]["session_id"] == sid(2)  # from CODEX_THREAD_ID
        w.set_activity(sid(3), "idle")

        for peer, target, markerless in ((codex, "codex", True), (claude, sid(3), False)):
            started = time.monotonic()
            thread, out = ask_in_thread(asker, {"target": target, "body": "ready?", "timeout_ms": 30_000})
            keys = peer.wait_typed(WAKE_TEXT + "\n", timeout_s=15)
            _, gap = wake_timing(keys)
            woken_after = keys[0][0] - started
            if markerless:  # unknown busy/idle state: the grace (500 ms) runs first; then the Codex gap
                assert woken_after >= 0.45 and gap >= 0.45, (woken_after, keys)
            else:
                assert woken_after < 0.45 and gap < 0.3, (woken_after, keys)
            (question,) = peer.read()["messages"]
            assert question["from_session_id"] == sid(1) and question["body"] == "ready?"
            reply = peer.ok("reply_to_message", {"message_id": question["id"], "body": "yes"})
            assert list(reply) == [*REPLY_TOOL_KEYS, "wake_status", "wake_reason"]
            assert reply["wake_reason"] == "reply_to_default"
            thread.join(30)
            got = out[0].json
            assert (got["wake_status"], got["timed_out"], got["correlation"]) == (
                "fired_unconfirmed" if markerless else "fired",
                False,
                "correlated",
            )
            assert got["reply"]["body"] == "yes" and got["reply"]["reply_to"] == question["request_id"]
            assert out[1] < 10


@pytest.mark.tmux
def test_late_reply_wakes_the_asker_pane(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (asker,) = w.panes([("asker", proj, None)])
        (peer,) = w.directs([("peer", proj, None)])
        asker.claim(sid(1))
        peer.claim(sid(2))
        got = asker.ok("ask_peer", {"target": sid(2), "body": "slow question", "timeout_ms": 200})
        assert (got["timed_out"], got["reply"], got["wake_status"]) == (True, None, "skipped_no_target")
        assert asker.typed() == ""
        (question,) = peer.read()["messages"]
        late = peer.ok("reply_to_message", {"message_id": question["id"], "body": "late answer"})
        # the asker's pane has no hooks (no marker): the keys landed, the pickup is unconfirmed
        assert (late["wake_status"], late["wake_reason"]) == ("fired_unconfirmed", "late_reply_to_pending")
        asker.wait_typed(WAKE_TEXT + "\n")
        (answer,) = asker.read()["messages"]
        assert (answer["body"], answer["reply_to"]) == ("late answer", got["request_id"])


@pytest.mark.tmux
def test_tmux_names_ambiguity_and_unclaimed_peers(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        one, two, solo = w.panes(
            [("shared", proj, None), ("shared-2", proj, None), ("solo", proj, None)],
            window_of={"shared-2": "shared"},
        )
        (me,) = w.directs([("me", proj, None)])
        me.claim(sid(1))
        assert one.entry()["tmux_session"] == two.entry()["tmux_session"] == "shared"
        one.claim(sid(2))

        note = (
            "1 peer(s) sharing tmux session 'shared' have not claimed a session_id and cannot be addressed "
            "by UUID; have them run claim_session."
        )
        got = me.call("send_message", {"target": "shared", "body": "x"}).json
        assert got == {
            "schema_version": 1,
            "ok": False,
            "error": "ambiguous-target",
            "candidates": [sid(2)],
            "note": note,
        }
        assert list(got) == ["schema_version", "ok", "error", "candidates", "note"]
        got = me.call("send_message", {"target": "shared", "body": "x", "reply_to": "r"}).json
        assert list(got) == ["schema_version", "ok", "error", "candidates", "note", "wake_reason"]
        two.claim(sid(3))
        got = me.call("ask_peer", {"target": "shared", "body": "x"}).json
        assert list(got) == ["schema_version", "ok", "error", "candidates"]
        assert got["error"] == "ambiguous-target" and sorted(got["candidates"]) == [sid(2), sid(3)]
        read = me.ok("read_session", {"name": "shared"})
        prefix = (
            "ambiguous-target: multiple agents share tmux session 'shared'; pass a client_session_id (UUID) "
        )
        assert read["error"] in {
            f"{prefix}instead. candidates: {sid(2)}, {sid(3)}",
            f"{prefix}instead. candidates: {sid(3)}, {sid(2)}",
        }
        assert (read["mode"], read["session"], read["client_type"]) == ("none", "shared", None)

        # A unique tmux name reaches an unclaimed peer (target_session_id null, 0.32.1: bootstrap + note
        # S1, accounting.md §6.2) but ask_peer refuses it (E7).
        got = me.ok("send_message", {"target": "solo", "body": "hello solo"})
        assert list(got) == [*SEND_KEYS, "bootstrap", "note"] and got["target_session_id"] is None
        assert got["target_server_pid"] == solo.server_pid()
        assert (got["bootstrap"], got["note"]) == (True, texts.UNCLAIMED_TARGET)
        assert me.call("ask_peer", {"target": "solo", "body": "?"}).text == (
            '{"schema_version":1,"ok":false,"error":"peer-has-no-session-id","message":"Target peer has '
            "no registered client.session_id, so a correlated reply wait is impossible. Bootstrap it "
            'in-band first: send_message with wake:\\"auto\\" to this same target (delivery lands in its '
            "pid box, the wake nudges its pane) with a body instructing it to call claim_session — then "
            'retry ask_peer."}'
        )
        (received,) = solo.read()["messages"]
        assert received["body"] == "hello solo" and received["from_session_id"] == sid(1)
        # Mail to the unclaimed process follows it into its session inbox when it claims.
        me.ok("send_message", {"target": "solo", "body": "before claim"})
        solo.claim(sid(4))
        assert [m["body"] for m in solo.read()["messages"]] == ["before claim"]
        # A pane agent's own tmux name is a self-send.
        assert one.call("send_message", {"target": sid(2), "body": "x"}).json["error"] == "self-send"


@pytest.mark.tmux
def test_restart_recovers_identity_through_sticky_claim(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        me = sid(7)
        transcript = claude_dir(w.home, str(proj)) / f"{me}.jsonl"
        transcript.parent.mkdir(parents=True)
        transcript.write_text(
            json.dumps({"type": "user", "message": {"role": "user", "content": "hi"}}) + "\n"
        )
        born = int(transcript.stat().st_mtime)
        (agent,) = w.panes([("claude", proj, {"CLAUDECODE": "1"})])
        (sender,) = w.directs([("sender", proj, None)])
        sender.claim(sid(1))
        agent.claim(me)
        entry = agent.entry()
        assert entry["client"]["type"] == "claude-code"
        assert entry["client"]["session_id_source"] == "self-register"
        assert entry["client"]["transcript_path"] == str(transcript)
        first_pid = entry["server_pid"]
        before = sender.ok("send_message", {"target": me, "body": "before the crash"})
        # a claimed agent without a marker is hookless: the plain send wakes it
        assert (before["ok"], before["wake_status"], before["wake_reason"]) == (
            True,
            "fired_unconfirmed",
            "hookless_default",
        )
        first_wake = agent.wait_typed(WAKE_TEXT + "\n")

        os.kill(first_pid, signal.SIGKILL)
        assert wait_until(
            lambda: not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == "zombie"
        )
        # While it is down the session has no live server: the spec's answer is target-not-found.
        assert sender.call("send_message", {"target": me, "body": "while down"}).text == NOT_FOUND
        # Kept as a dead breadcrumb while its mail waits (accounting §1.7): shown, never a target.
        assert w.registry_file(first_pid).exists()
        # Birth-time must not be what restores the id: start the new server in a later second.
        assert wait_until(lambda: int(time.time()) > born, 2)
        agent.restart()
        entry = agent.entry()
        assert entry["server_pid"] != first_pid
        assert entry["client"]["session_id"] == me
        assert entry["client"]["session_id_source"] == "sticky-claim"
        assert (entry["tmux_pane"], entry["tmux_session"]) == (agent.pane, "claude")
        assert [m["body"] for m in agent.read()["messages"]] == ["before the crash"]
        sender.ok("list_project_sessions")  # a reader reaps it now: a live server of its session exists
        assert wait_until(lambda: not w.registry_file(first_pid).exists(), 5)
        assert wait_until(lambda: time.monotonic() - first_wake[-1][0] > 1.05, 3)  # past the debounce
        got = sender.ok("send_message", {"target": me, "body": "after", "wake": "auto"})
        assert (got["target_server_pid"], got["wake_status"]) == (entry["server_pid"], "fired_unconfirmed")
        agent.wait_typed((WAKE_TEXT + "\n") * 2)
        assert [m["body"] for m in agent.read()["messages"]] == ["after"]


def test_read_budget_defers_and_keeps_order(tmp_path: Path) -> None:
    """read_my_messages budgets (messaging.md §4.3.3): the rest is deferred, reported, and read next."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        sender, by_count, by_bytes = w.directs(
            [
                ("sender", proj, None),
                ("by_count", proj, {"OXTAIL_READ_MAX_MESSAGES": "3"}),
                ("by_bytes", proj, {"OXTAIL_READ_MAX_BODY_BYTES": "10000"}),
            ]
        )
        for n, agent in enumerate((sender, by_count, by_bytes), start=1):
            agent.claim(sid(n))
        ids = [sender.ok("send_message", {"target": sid(2), "body": f"m{i}"})["message_id"] for i in range(7)]
        first = by_count.read()
        assert list(first) == [*READ_KEYS, "deferred_count", "budget_truncated"]
        assert (first["count"], first["deferred_count"], first["budget_truncated"]) == (3, 4, True)
        second = by_count.read()
        assert (second["count"], second["deferred_count"]) == (3, 1)
        third = by_count.read()
        assert list(third) == READ_KEYS and third["count"] == 1
        got = [m["id"] for r in (first, second, third) for m in r["messages"]]
        assert got == ids

        sizes = [8000, 100, 8000, 50]
        ids = [
            sender.ok("send_message", {"target": sid(3), "body": str(i) * size})["message_id"]
            for i, size in enumerate(sizes)
        ]
        seen: list[str] = []
        for _ in range(4):
            body = by_bytes.read()
            assert sum(m["body_bytes"] for m in body["messages"]) <= 10000 or body["count"] == 1
            seen += [m["id"] for m in body["messages"]]
            if "deferred_count" not in body:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
        assert seen == ids, "a newer message was delivered ahead of an older deferred one"


def test_ask_edge_cases(tmp_path: Path) -> None:
    """E38: a reply without reply_to does not answer (it stays); E41: wake strategy off -> disabled."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        asker, peer, off = w.directs(
            [
                ("asker", proj, None),
                ("peer", proj, None),
                ("off", proj, {"OXTAIL_ASK_PEER_WAKE_STRATEGY": "off"}),
            ]
        )
        for n, agent in enumerate((asker, peer, off), start=1):
            agent.claim(sid(n))
        thread, out = ask_in_thread(asker, {"target": sid(2), "body": "q", "timeout_ms": 1200})
        question = wait_until(lambda: peer.read()["messages"], 10)
        assert question and question[0]["body"] == "q"
        peer.ok("send_message", {"target": sid(1), "body": "answer without reply_to"})
        thread.join(30)
        got = out[0].json
        assert (got["timed_out"], got["reply"], got["correlation"], got["timeout_ms"]) == (
            True,
            None,
            "none",
            1200,
        )
        assert [m["body"] for m in asker.read()["messages"]] == ["answer without reply_to"]

        got = off.ok("ask_peer", {"target": sid(2), "body": "q2", "timeout_ms": 300})
        assert (got["wake_status"], got["timed_out"]) == ("disabled", True)
        w.set_activity(sid(2), "busy")
        got = off.ok("ask_peer", {"target": sid(2), "body": "q3", "timeout_ms": 100})
        assert got["wake_status"] == "skipped_busy"  # the busy check precedes the strategy (§4.9)
        got = off.ok("send_message", {"target": sid(1), "body": "x", "wake": "auto"})
        assert got["wake_status"] == "disabled"
