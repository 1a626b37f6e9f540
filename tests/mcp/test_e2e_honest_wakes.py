"""Honest wake statuses and the send-time outlook end to end (accounting.md §4, §5, §6.2).

Real ``oxtail-mcp`` servers behind the official MCP client, agents in the panes
of a private tmux server. A *Claude-like* peer keeps a marker (written here by
the real ``oxtail-mcp hook`` process, as Claude Code's hooks would); a
*Codex-like* peer has none. Every status is the exact wire value.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from oxtail_core.ids import hash32
from tests.support.e2e import WAKE_TEXT, sid, wait_until, wake_timing, world

SEND_KEYS = ["schema_version", "ok", "message_id", "target_session_id", "target_server_pid"]
LINE = WAKE_TEXT + "\n"
STRANDED_HINT = (
    "Peer isn't actively reading right now — it reads this at its next turn. If this is context/FYI, "
    "that's fine, leave it. If it must ACT: ask_peer (you need an answer this turn / will block on it), "
    'action_required:true (a durable task you track via my_open_work), or wake:"auto" (just nudge it to '
    "read now)."
)


@pytest.mark.tmux
def test_a_hooked_claude_peer_is_advised_or_fired_and_a_hookless_codex_peer_is_woken_unconfirmed(
    tmp_path: Path,
) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        claude, codex = w.panes(
            [("claude", proj, {"CLAUDECODE": "1"}), ("codex", proj, {"CODEX_HOME": str(w.home / ".codex")})]
        )
        sender, killed = w.directs(
            [
                ("sender", proj, {"OXTAIL_WAKE_DEBOUNCE_MS": "60000"}),
                ("killed", proj, {"OXTAIL_AUTOWAKE": "off"}),
            ]
        )
        for n, agent in enumerate((sender, claude, codex, killed), start=1):
            agent.claim(sid(n))
        w.run_hook("stop", sid(2))  # Claude's turn ended: its Stop hook leaves an idle marker

        # A plain send to the idle hooked peer: no wake, the outlook and its hint, last (§4, A39).
        got = sender.ok("send_message", {"target": sid(2), "body": "fyi"})
        assert list(got) == [*SEND_KEYS, "delivery_outlook", "hint"]
        assert (got["delivery_outlook"], got["hint"]) == ("stranded_until_read", STRANDED_HINT)
        # wake:"auto" to it: keystrokes landed and its marker confirms the hooks: fired (§5.1, A42).
        got = sender.ok("send_message", {"target": sid(2), "body": "now", "wake": "auto"})
        assert list(got) == [*SEND_KEYS, "wake_status"] and got["wake_status"] == "fired"
        _, gap = wake_timing(claude.wait_typed(LINE))
        assert gap < 0.3

        # A plain send to the markerless Codex peer wakes it: hookless_default, unconfirmed (§5.2, A43).
        got = sender.ok("send_message", {"target": sid(3), "body": "task"})
        assert list(got) == [*SEND_KEYS, "wake_status", "wake_reason"]
        assert (got["wake_status"], got["wake_reason"]) == ("fired_unconfirmed", "hookless_default")
        _, gap = wake_timing(codex.wait_typed(LINE))
        assert 0.45 <= gap < 1.5  # the Codex submit gap
        # Within the sender's debounce window: skipped_debounced, still with the reason.
        got = sender.ok("send_message", {"target": sid(3), "body": "task 2"})
        assert (got["wake_status"], got["wake_reason"]) == ("skipped_debounced", "hookless_default")
        # wake:"off" suppresses it: neither a wake nor an outlook.
        assert list(sender.ok("send_message", {"target": sid(3), "body": "fyi", "wake": "off"})) == SEND_KEYS
        # OXTAIL_AUTOWAKE=off on another sender does not stop it (Appendix B.7).
        got = killed.ok("send_message", {"target": sid(3), "body": "task 3"})
        assert (got["wake_status"], got["wake_reason"]) == ("fired_unconfirmed", "hookless_default")
        codex.wait_typed(LINE * 2)

        assert [m["body"] for m in claude.read()["messages"]] == ["fyi", "now"]
        assert [m["body"] for m in codex.read()["messages"]] == ["task", "task 2", "fyi", "task 3"]
        assert (claude.typed(), codex.typed()) == (LINE, LINE * 2)


@pytest.mark.tmux
def test_a_busy_marker_in_the_codex_gap_confirms_the_wake_and_then_holds_back_plain_sends(
    tmp_path: Path,
) -> None:
    """The marker is read after the keystrokes (A42): a Codex peer whose hooks mark it busy while the
    submit gap runs reports fired; from then on it is fresh busy: no wake, no outlook (§4, A40)."""
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (codex,) = w.panes(
            [("codex", proj, {"CODEX_HOME": str(w.home / ".codex")})], stamp_busy_on_text={"codex": sid(2)}
        )
        (sender,) = w.directs([("sender", proj, None)])
        sender.claim(sid(1))
        codex.claim(sid(2))
        got = sender.ok("send_message", {"target": sid(2), "body": "task"})
        assert (got["wake_status"], got["wake_reason"]) == ("fired", "hookless_default")
        codex.wait_typed(LINE)
        assert wait_until(lambda: time.monotonic() - codex.keys()[-1][0] > 1.05, 3)  # past the debounce
        assert list(sender.ok("send_message", {"target": sid(2), "body": "fyi"})) == SEND_KEYS
        got = sender.ok("send_message", {"target": sid(2), "body": "nudge", "wake": "auto"})
        assert got["wake_status"] == "skipped_busy"
        assert codex.typed() == LINE


@pytest.mark.tmux
def test_a_stale_or_future_busy_marker_neither_silences_a_wake_nor_hides_the_outlook(tmp_path: Path) -> None:
    """A40 over real servers: busy at the TTL or from the future is not fresh busy (0.24)."""
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (claude,) = w.panes([("claude", proj, {"CLAUDECODE": "1"})])
        (sender,) = w.directs([("sender", proj, None)])
        sender.claim(sid(1))
        claude.claim(sid(2))
        for n, age in enumerate((600_001, -60_000), start=1):
            w.set_activity(sid(2), "busy", age_ms=age)
            got = sender.ok("send_message", {"target": sid(2), "body": "fyi"})
            assert got["delivery_outlook"] == "stranded_until_read" and "wake_status" not in got, age
            got = sender.ok("send_message", {"target": sid(2), "body": "nudge", "wake": "auto"})
            assert got["wake_status"] == "fired", age
            keys = claude.wait_typed(LINE * n)
            assert wait_until(lambda keys=keys: time.monotonic() - keys[-1][0] > 1.05, 3)


@pytest.mark.tmux
def test_an_unclaimed_peer_is_not_woken_by_a_plain_send_and_auto_wakes_are_never_debounced(
    tmp_path: Path,
) -> None:
    """§6.2, A47: no wake and no outlook for a plain send; wake:"auto" wakes, fired_unconfirmed,
    however often (an unclaimed peer has no session id to debounce by)."""
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (solo,) = w.panes([("solo", proj, None)])
        (sender,) = w.directs([("sender", proj, None)])
        sender.claim(sid(1))
        got = sender.ok("send_message", {"target": "solo", "body": "hello"})
        assert got["target_session_id"] is None
        assert not {"wake_status", "wake_reason", "delivery_outlook", "hint"} & set(got)
        for _ in range(2):  # back to back, well inside the 1 s window that debounces a claimed peer
            got = sender.ok("send_message", {"target": "solo", "body": "n", "wake": "auto"})
            assert got["wake_status"] == "fired_unconfirmed"
        solo.wait_typed(LINE * 2)
        assert [m["body"] for m in solo.read()["messages"]] == ["hello", "n", "n"]


@pytest.mark.tmux
def test_ask_to_a_hookless_peer_reports_fired_unconfirmed_and_a_grace_answer_skipped_busy(
    tmp_path: Path,
) -> None:
    """A44: keystrokes typed into a markerless peer are unconfirmed; a reply that arrived within the
    grace, before any keystroke, is skipped_busy and nothing is typed."""
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (codex,) = w.panes([("codex", proj, {"CODEX_HOME": str(w.home / ".codex")})])
        asker, quick = w.directs([("asker", proj, None), ("quick", proj, None)])
        asker.claim(sid(1))
        codex.claim(sid(2))
        quick.claim(sid(3))
        out: list[dict] = []
        thread = threading.Thread(
            target=lambda: out.append(
                asker.ok("ask_peer", {"target": sid(2), "body": "ready?", "timeout_ms": 30_000})
            )
        )
        thread.start()
        codex.wait_typed(LINE, timeout_s=15)
        (question,) = codex.read()["messages"]
        codex.ok("reply_to_message", {"message_id": question["id"], "body": "yes"})
        thread.join(30)
        assert (out[0]["wake_status"], out[0]["timed_out"], out[0]["reply"]["body"]) == (
            "fired_unconfirmed",
            False,
            "yes",
        )
        quick.start_responder(interval_ms=10)
        got = asker.ok("ask_peer", {"target": sid(3), "body": "fast?", "timeout_ms": 30_000})
        assert (got["wake_status"], got["timed_out"], got["reply"]["body"]) == (
            "skipped_busy",
            False,
            "re: fast?",
        )


def test_a_marker_file_we_cannot_parse_counts_as_no_marker(tmp_path: Path) -> None:
    """Ours (docs/differences.md): the reference counts any readable marker file; our store reads one
    it cannot parse as no marker, so the peer is hookless: woken, not merely advised."""
    with world(tmp_path) as w:
        proj = w.project("proj")
        sender, peer = w.directs([("sender", proj, None), ("peer", proj, None)])
        sender.claim(sid(1))
        peer.claim(sid(2))
        w.run_hook("stop", sid(2))
        got = sender.ok("send_message", {"target": sid(2), "body": "fyi"})
        assert got["delivery_outlook"] == "stranded_until_read" and "wake_status" not in got
        (w.oxtail_home / "activity" / hash32(sid(2))).write_text("not a marker")
        got = sender.ok("send_message", {"target": sid(2), "body": "fyi 2"})
        assert (got["wake_status"], got["wake_reason"]) == ("skipped_no_target", "hookless_default")
        assert "delivery_outlook" not in got
