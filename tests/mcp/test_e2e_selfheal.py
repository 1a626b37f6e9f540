"""Self-heal and waiter-heal end to end (selfheal.md §1, §2): real ``oxtail-mcp`` servers behind the
official MCP client, agents in the panes of a private tmux server, intervals shortened through the
environment (milliseconds, not the defaults' minutes). The timing rules themselves are tested on the
fake clock (tests/core/test_selfheal.py); here the servers must really drive them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.e2e import WAKE_TEXT, sid, wait_until, world

LINE = WAKE_TEXT + "\n"
FAST_SELF_HEAL = {
    "OXTAIL_SELF_WAKE_INTERVAL_MS": "200",
    "OXTAIL_SELF_WAKE_GRACE_MS": "1000",
    "OXTAIL_SELF_WAKE_THROTTLE_MS": "1000",
    "OXTAIL_SELF_WAKE_CAP": "20",
}


@pytest.mark.tmux
def test_a_swallowed_wake_is_re_nudged_by_the_recipients_own_server_until_the_message_is_read(
    tmp_path: Path,
) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (bob,) = w.panes([("bob", proj, {"CLAUDECODE": "1", **FAST_SELF_HEAL})])
        (amy,) = w.directs([("amy", proj, {"OXTAIL_AUTOWAKE_FRESH_IDLE_MS": "1"})])
        amy.claim(sid(1))
        bob.claim(sid(2))
        w.run_hook("stop", sid(2))  # bob sits idle at the prompt, hooks installed
        time.sleep(0.01)  # older than amy's 1 ms freshness window
        # A reply-shaped send takes the strict gate; bob's idle marker is not "fresh" for amy's
        # settings, so amy's wake is skipped: the mail waits with no keystroke (what a swallowed
        # wake looks like from the inbox).
        got = amy.ok("send_message", {"target": sid(2), "body": "the answer", "reply_to": "0" * 16})
        assert got["wake_status"] == "skipped_no_fresh_idle"
        records = w.oxtail_home / "pending-wake"
        assert len([p for p in records.iterdir() if p.name.startswith("w-")]) == 1
        assert bob.typed() == ""

        # bob's own server re-nudges its own pane once the grace has passed, a throttle apart.
        keys = bob.wait_typed(LINE, timeout_s=15)
        first = keys[0][0]
        chunks = bob.wait_typed(LINE * 2, timeout_s=15)
        second = [t for t, text in chunks if text.strip()][1]
        assert second - first >= 0.9

        # bob reads: the receipt makes its next tick consume the record, and the nudges stop.
        assert [m["body"] for m in bob.read()["messages"]] == ["the answer"]
        assert wait_until(lambda: not [p for p in records.iterdir() if p.name.startswith("w-")], 10)
        settled = bob.typed()
        time.sleep(1.5)  # more than one throttle window of ticks after the record is gone
        assert bob.typed() == settled and settled.count(LINE) >= 2


@pytest.mark.tmux
def test_a_silent_delegate_is_re_poked_by_the_delegators_server_up_to_the_cap_then_left_waiting(
    tmp_path: Path,
) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (bob,) = w.panes([("bob", proj, {"OXTAIL_SELF_WAKE": "off"})])  # hookless, no self-heal
        (amy,) = w.directs(
            [
                (
                    "amy",
                    proj,
                    {
                        "OXTAIL_WAITER_HEAL_INTERVAL_MS": "200",
                        "OXTAIL_WAITER_HEAL_GRACE_MS": "1000",
                        "OXTAIL_WAITER_HEAL_THROTTLE_MS": "500",
                        "OXTAIL_WAITER_HEAL_CAP": "1",
                    },
                )
            ]
        )
        amy.claim(sid(1))
        bob.claim(sid(2))
        got = amy.ok("send_message", {"target": sid(2), "body": "do X", "action_required": True})
        assert got["obligation_durable"] is True and got["wake_status"] == "fired_unconfirmed"
        bob.wait_typed(LINE)  # the delegation's own wake, swallowed by the pane

        bob.wait_typed(LINE * 2, timeout_s=15)  # amy's watchdog re-pokes bob once (cap 1) ...
        time.sleep(1.5)  # ... and not again: it gave up, three throttle windows later
        assert bob.typed() == LINE * 2
        (record,) = w.store().pending_list()  # the wait stays visible (aging) until answered or TTL
        assert (record.requester, record.peer, record.attempts) == (sid(1), sid(2), 1)
