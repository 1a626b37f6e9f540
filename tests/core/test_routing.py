"""Target resolution of 0.32.1 (accounting.md §6.1, A46) and refusal of reference (Node) peers."""

from __future__ import annotations

from oxtail_core.foreign import ForeignEntry
from oxtail_core.model import ClientInfo, RegistryEntry
from oxtail_core.results import NotSent, Sent
from oxtail_core.routing import Unresolved, live_entries, process_inbox, resolve_target
from oxtail_mcp.server.responses import render
from tests.support.world import A, B, C, World, make_world

D = "dddddddd-0000-0000-0000-000000000004"


def _reference_peer(w: World, pid: int, sid: str | None, **kw: object) -> ForeignEntry:
    entry = ForeignEntry(
        server_pid=pid,
        started_at=w.clock.now_ms() // 1000,
        client=ClientInfo(type="claude-code", session_id=sid, cwd="/p"),
        **kw,  # type: ignore[arg-type]
    )
    w.store.registry_put(entry)
    return entry


def test_a_tmux_name_shared_with_one_unclaimed_peer_reaches_that_peer() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    peer = w.join(2, None, tmux_session="shared")
    sent = me.send("shared", "claim your session, please")
    assert isinstance(sent, Sent)
    assert (sent.target_session_id, sent.target_server_pid) == (None, 2)
    assert [m.body for m in peer.read_messages().messages] == ["claim your session, please"]


def test_a_tmux_name_shared_with_one_claimed_peer_reaches_that_peer() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    w.join(2, B, tmux_session="shared")
    sent = me.send("shared", "hi")
    assert isinstance(sent, Sent) and sent.target_session_id == B
    assert w.depth(B) == 1


def test_an_unclaimed_caller_is_excluded_by_its_pid() -> None:
    w = make_world()
    me = w.join(1, None, tmux_session="shared")
    w.join(2, B, tmux_session="shared")
    sent = me.send("shared", "hi")
    assert isinstance(sent, Sent) and sent.target_session_id == B


def test_the_caller_and_two_others_is_ambiguous_listing_only_the_others() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    w.join(2, B, tmux_session="shared")
    w.join(3, None, tmux_session="shared")
    out = render(me.send("shared", "x"))
    assert out == {
        "schema_version": 1,
        "ok": False,
        "error": "ambiguous-target",
        "candidates": [B],
        "note": (
            "1 peer(s) sharing tmux session 'shared' have not claimed a session_id and cannot be "
            "addressed by UUID; have them run claim_session."
        ),
    }
    assert w.depth(B) == 0 and w.store.depth(process_inbox(w.store.registry_entries()[2])) == 0


def test_the_caller_and_two_claimed_others_lists_both_and_no_note() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    w.join(2, B, tmux_session="shared")
    w.join(3, C, tmux_session="shared")
    out = render(me.send("shared", "x"))
    assert out["error"] == "ambiguous-target" and sorted(out["candidates"]) == [B, C]
    assert "note" not in out


def test_only_the_caller_or_its_sibling_is_a_self_send() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="mine")
    assert render(me.send("mine", "x")) == {"schema_version": 1, "ok": False, "error": "self-send"}
    w.join(5, A, tmux_session="mine")  # a sibling server of my own agent (user + project scope)
    assert render(me.send("mine", "x"))["error"] == "self-send"
    assert render(me.send(A, "x"))["error"] == "self-send"
    assert render(me.send("nobody", "x"))["error"] == "target-not-found"


def test_a_sibling_of_the_caller_does_not_count_toward_ambiguity() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    w.join(5, A, tmux_session="shared")
    w.join(2, None, tmux_session="shared")
    sent = me.send("shared", "x")
    assert isinstance(sent, Sent) and sent.target_server_pid == 2


def test_the_sole_other_peer_in_another_project_is_cross_project() -> None:
    w = make_world()
    w.host.projects.update({"/p": "one", "/q": "two"})
    me = w.join(1, A, tmux_session="shared")
    type(me).join(w.ctx, 2, session_id=None, cwd="/q", tmux_session="shared")
    assert render(me.send("shared", "x"))["error"] == "cross-project"


def test_ask_peer_to_a_sole_unclaimed_peer_still_needs_its_session_id() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    w.join(2, None, tmux_session="shared")
    assert render(me.ask("shared", "?"))["error"] == "peer-has-no-session-id"


def test_a_send_to_a_reference_peer_is_refused_and_names_it() -> None:
    w = make_world()
    me = w.join(1, A)
    _reference_peer(w, 7, D, tmux_session="node")
    for target in (D, "node"):
        refused = me.send(target, "hello")
        assert isinstance(refused, NotSent) and refused.unresolved.error == "foreign-peer"
        message = refused.unresolved.message or ""
        assert "reference (Node) oxtail" in message and D in message and "pid 7" in message
        assert "nothing was sent" in message
    assert render(me.ask(D, "?"))["error"] == "foreign-peer"
    assert w.depth(D) == 0


def test_a_reply_to_a_reference_peer_is_refused() -> None:
    w = make_world()
    me = w.join(1, A)
    _reference_peer(w, 7, D)
    got = resolve_target(w.ctx, me.me, D, as_session=True)
    assert isinstance(got, Unresolved) and got.error == "foreign-peer"


def test_an_unclaimed_reference_peer_is_refused_without_a_session_id() -> None:
    w = make_world()
    me = w.join(1, A)
    _reference_peer(w, 7, None, tmux_session="node")
    refused = me.send("node", "x")
    assert isinstance(refused, NotSent) and refused.unresolved.error == "foreign-peer"
    assert "an unclaimed session" in (refused.unresolved.message or "")


def test_a_reference_peer_in_another_project_is_cross_project_first() -> None:
    w = make_world()
    w.host.projects.update({"/p": "one", "/q": "two"})
    me = w.join(1, A)
    w.store.registry_put(
        ForeignEntry(server_pid=7, started_at=0, client=ClientInfo(type="codex", session_id=D, cwd="/q"))
    )
    assert render(me.send(D, "x"))["error"] == "cross-project"


def test_an_agent_running_both_implementations_is_reached_through_ours() -> None:
    w = make_world()
    me = w.join(1, A)
    w.join(2, B)
    w.clock.advance(5_000)
    _reference_peer(w, 3, B)  # fresher, but its mailbox is not ours
    (winner,) = [e for e in live_entries(w.ctx) if e.session_id == B]
    assert type(winner) is RegistryEntry and winner.server_pid == 2
    assert isinstance(me.send(B, "x"), Sent) and w.depth(B) == 1


def test_a_reference_peer_is_listed_and_counts_toward_ambiguity() -> None:
    w = make_world()
    me = w.join(1, A)
    w.join(2, B, tmux_session="shared")
    _reference_peer(w, 3, D, tmux_session="shared")
    assert {e.server_pid for e in live_entries(w.ctx)} == {1, 2, 3}
    out = render(me.send("shared", "x"))
    assert out["error"] == "ambiguous-target" and sorted(out["candidates"]) == [B, D]


def test_a_dead_reference_peer_is_never_reaped_or_inherited_by_us() -> None:
    w = make_world()
    dead = _reference_peer(w, 7, None, tmux_pane="%1")
    w.host.dead.add(7)
    w.join(1, A, pane="%1")  # our agent now runs in its pane: it inherits nothing of the reference's
    assert [e.server_pid for e in live_entries(w.ctx)] == [1]
    assert dead in w.store.registry_entries()  # the reference reaps its own entries, by its rules


def test_a_bootstrapped_peer_reads_after_claiming_but_cannot_reply_to_the_pre_claim_message() -> None:
    w = make_world()
    me = w.join(1, A, tmux_session="shared")
    peer = w.join(2, None, tmux_session="shared")
    sent = me.send("shared", "please claim")
    assert isinstance(sent, Sent) and sent.target_session_id is None
    peer.claim(B)
    (got,) = peer.read_messages().messages
    assert (got.id, got.from_session_id) == (sent.message_id, A)
    assert render(peer.reply(got.id, "done"))["error"] == "message-not-found"  # A48: no ledger line
    assert isinstance(peer.send(A, "done"), Sent)  # it answers by send_message to from_session_id


def test_a_dead_agent_with_mail_or_open_work_keeps_its_entry_until_both_are_gone() -> None:
    """The dead-breadcrumb keep-gate (accounting.md §1.7, selfheal §4.2): listed as dead, never a
    target, reaped once its inbox is drained and its obligations are closed."""
    from oxtail_core import Context, FakeClock, MemoryHost, MemoryStore, Peer, RecordingWaker

    store, host = MemoryStore(), MemoryHost()
    ctx = Context(store, RecordingWaker(), FakeClock(1_700_000_000_000), host)
    boss = Peer.join(ctx, 10, session_id=A)
    Peer.join(ctx, 11, session_id=B)
    task = boss.send(B, "do it", action_required=True, wake="off")
    boss.send(B, "fyi", wake="off")
    host.kill(11)
    assert [e.session_id for e in live_entries(ctx)] == [A]
    assert [e.server_pid for e in store.registry_entries()] == [10, 11]  # kept: mail and work wait
    again = Peer.join(ctx, 12, session_id=B)
    assert [m.body for m in again.read_messages().messages] == ["do it", "fyi"]
    host.kill(12)
    live_entries(ctx)
    assert {e.server_pid for e in store.registry_entries()} == {
        10,
        12,
    }  # 11 went with a live sibling; the obligation is open
    revived = Peer.join(ctx, 13, session_id=B)
    closed = revived.complete_work(task.message_id, "done")  # type: ignore[union-attr]
    assert closed.state == "done"  # type: ignore[union-attr]
    host.kill(13)
    live_entries(ctx)
    assert [e.server_pid for e in store.registry_entries()] == [10]
