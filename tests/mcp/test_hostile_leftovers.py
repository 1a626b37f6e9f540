"""Issue 14 item 6: a server that starts and exits leaves no empty lock sidecar behind in ``inboxes/``."""

from __future__ import annotations

from pathlib import Path

from tests.support.e2e import sid, world


def test_servers_that_start_and_exit_leave_no_inbox_lock_files(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        for n in range(3):
            (agent,) = w.directs([(f"a{n}", proj, None)])
            agent.ok("get_my_session")
            agent.close()
        inboxes = w.store().home / "inboxes"
        assert sorted(p.name for p in inboxes.iterdir()) == []


def test_a_claimed_agent_keeps_its_session_inbox_lock_while_mail_waits(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        a.ok("send_message", {"target": sid(2), "body": "hi", "wake": "off"})
        b.close()
        a.close()
        inboxes = w.store().home / "inboxes"
        names = sorted(p.name for p in inboxes.iterdir())
        assert any(n.startswith("s-") and n.endswith(".jsonl") for n in names), names
        assert not any(n.startswith("p-") for n in names), names
