"""Delegations and receipts end to end: real ``oxtail-mcp`` servers on one state dir, the official MCP client.

A delegation (``send_message`` with ``action_required``) completed and another
blocked; the requester reads both completions; ``message_status`` before and
after each read; the receiver's open work before and after. Needs the 14-tool
surface and the file store's accounting methods (skipped until both are there).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oxtail_core import texts
from oxtail_core.obligations import completion_id
from tests.support.e2e import WAKE_TEXT, AgentBase, sid, wait_until, world


def accounting_served(agent: AgentBase) -> None:
    probe = agent.call("message_status", {"message_id": "0" * 16})
    if probe.is_error:
        pytest.skip(f"this build does not serve message_status yet: {probe.text[:120]}")


def delivered(agent: AgentBase, message_id: str) -> dict:
    """The status once the reader's server has settled its read: the receipt is written right after the
    response was flushed, so the reader's client may see the response a moment before (A3)."""
    status = wait_until(
        lambda: (s := agent.ok("message_status", {"message_id": message_id}))["status"] == "delivered" and s
    )
    assert status, f"{message_id} never became delivered"
    return status  # type: ignore[no-any-return]


def test_a_delegation_completed_and_one_blocked_reach_the_requester_with_receipts(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        accounting_served(a)
        a.claim(sid(1))
        b.claim(sid(2))

        first = a.ok("send_message", {"target": sid(2), "body": "please do X", "action_required": True})
        second = a.ok(
            "send_message", {"target": sid(2), "body": "please do Y", "action_required": True, "wake": "off"}
        )
        for sent in (first, second):
            assert (sent["action_required"], sent["obligation_durable"]) == (True, True)
            assert "note" not in sent and "bootstrap" not in sent
        assert "wake_status" in first and "wake_status" not in second
        before = a.ok("message_status", {"message_id": first["message_id"]})
        assert before == {
            "schema_version": 1,
            "ok": True,
            "message_id": first["message_id"],
            "status": "pending",
            "enqueued_at": before["enqueued_at"],
            "target_session_id": sid(2),
            "target_server_pid": b.server_pid(),
        }

        got = b.ok("read_my_messages")
        assert [m["id"] for m in got["messages"]] == [first["message_id"], second["message_id"]]
        assert all(m["action_required"] is True for m in got["messages"])
        assert got["messages"][0]["request_id"] and "request_id" not in got["messages"][1]
        assert (got["open_work_count"], got["open_work_hint"]) == (2, texts.open_work_hint(2))
        after = delivered(a, first["message_id"])
        assert (after["status"], after["via"], after["recipient_session_id"]) == (
            "delivered",
            "read_my_messages",
            sid(2),
        )
        assert list(after) == [
            "schema_version",
            "ok",
            "message_id",
            "status",
            "delivered_at",
            "via",
            "recipient_session_id",
        ]

        open_work = b.ok("my_open_work")
        ids = [first["message_id"], second["message_id"]]
        if got["messages"][0]["enqueued_at"] == got["messages"][1]["enqueued_at"]:
            ids.reverse()  # oldest first; within one second, newest first (A33)
        assert open_work["count"] == 2 and [i["message_id"] for i in open_work["open"]] == ids
        assert b.ok("read_my_messages")["open_work_count"] == 2  # the ledger's count, not the batch's

        done = b.ok("complete_work", {"message_id": first["message_id"], "body": "X is done"})
        cid = completion_id(first["message_id"])
        assert {k: done[k] for k in ("ok", "obligation_state", "completion_message_id", "correlation")} == {
            "ok": True,
            "obligation_state": "done",
            "completion_message_id": cid,
            "correlation": "correlated",
        }
        assert done["requester_session_id"] == sid(1) and done["wake_reason"] == "late_reply_to_pending"
        blocked = b.ok("block_work", {"message_id": second["message_id"], "reason": "no access to Y"})
        assert (blocked["obligation_state"], blocked["correlation"]) == ("blocked", "uncorrelated")
        assert b.ok("complete_work", {"message_id": first["message_id"], "body": "again"}) == {
            "schema_version": 1,
            "ok": True,
            "message_id": first["message_id"],
            "obligation_state": "done",
            "already_closed": True,
            "note": texts.ALREADY_CLOSED,
        }

        assert b.ok("message_status", {"message_id": cid})["status"] == "pending"
        completions = a.ok("read_my_messages")["messages"]
        assert [(m["id"], m["body"]) for m in completions] == [
            (cid, "X is done"),
            (completion_id(second["message_id"]), "[blocked] no access to Y"),
        ]
        assert completions[0]["reply_to"] == got["messages"][0]["request_id"]
        assert delivered(b, cid)["recipient_session_id"] == sid(1)
        assert b.ok("my_open_work") == {"schema_version": 1, "ok": True, "count": 0, "open": []}
        assert "open_work_count" not in b.ok("read_my_messages")
        refused = a.ok("complete_work", {"message_id": cid, "body": "x"})
        assert refused["error"] == "not-an-obligation"  # A38: a completion is plain mail


def test_a_delegation_survives_both_sides_restarting_and_stays_open_until_its_requester_is_back(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        accounting_served(a)
        a.claim(sid(1))
        b.claim(sid(2))
        sent = a.ok("send_message", {"target": sid(2), "body": "task", "action_required": True})
        a.restart()  # the requester's server dies and a new one comes up unclaimed
        unreachable = b.ok("complete_work", {"message_id": sent["message_id"], "body": "done"})
        assert unreachable["error"] == "requester-unreachable"
        assert unreachable["message"] == texts.requester_unreachable(sid(1))
        assert b.ok("my_open_work")["count"] == 1
        b.restart()  # A36: the receiver's server dies too; its obligations wait in its ledger
        assert b.ok("my_open_work")["error"] == "no-session-id"
        b.claim(sid(2))
        assert [i["message_id"] for i in b.ok("my_open_work")["open"]] == [sent["message_id"]]
        a.claim(sid(1))  # A37: same id again
        done = b.ok("complete_work", {"message_id": sent["message_id"], "body": "done"})
        assert done["ok"] is True and done["completion_message_id"] == completion_id(sent["message_id"])
        assert [m["body"] for m in a.ok("read_my_messages")["messages"]] == ["done"]


@pytest.mark.tmux
def test_a_completion_wakes_the_requester_pane_and_a_quiet_block_does_not(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (requester,) = w.panes([("requester", proj, None)])
        (worker,) = w.directs([("worker", proj, None)])
        accounting_served(worker)
        requester.claim(sid(1))
        worker.claim(sid(2))
        task = requester.ok("send_message", {"target": sid(2), "body": "do X", "action_required": True})
        other = requester.ok("send_message", {"target": sid(2), "body": "do Y", "action_required": True})
        assert requester.typed() == ""
        worker.read()
        done = worker.ok("complete_work", {"message_id": task["message_id"], "body": "X done"})
        assert done["wake_reason"] == "late_reply_to_pending"
        assert done["wake_status"] in {"fired", "fired_unconfirmed"}
        requester.wait_typed(WAKE_TEXT + "\n")
        quiet = worker.ok("block_work", {"message_id": other["message_id"], "reason": "no Y", "wake": "off"})
        assert quiet["wake_reason"] == "late_reply_to_pending_suppressed" and "wake_status" not in quiet
        got = requester.read()["messages"]
        assert [m["body"] for m in got] == ["X done", "[blocked] no Y"]
        assert requester.typed() == WAKE_TEXT + "\n"  # one wake: the quiet block typed nothing
