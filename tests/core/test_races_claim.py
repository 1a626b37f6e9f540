"""Machine 6: the claim-time inbox merge vs concurrent sends (our improvement 2; R21-R27, R72).

Receiver R starts unclaimed (process inbox only), addressable by its tmux
session name. Senders S1 and S2 send to ``"rsess"`` at any time; a sender
that resolved R before its claim appends to R's *process* inbox, possibly
after the claim already merged it. R claims once (``Peer.claim``: the new
identity is used from the start, then ``publish`` writes the entry and merges
process -> session) and reads (``read_messages``, which folds late arrivals,
then ``settle``) at any point. Checked after every step, besides G1/G2 (no id
ever in two inboxes, or waiting and in flight at once; never delivered twice):

- a message sent after R's claim entry was published lands in R's session inbox
  and resolves in R's ledger (R1 for the claimed receiver);
- at the end, R's own reads reach every message exactly once -- nothing is left
  behind in the process inbox (the final drain of every inbox finds nothing).
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from oxtail_core.messaging import send_message
from oxtail_core.results import NotSent, Sent
from oxtail_core.routing import publish, session_inbox
from oxtail_core.testing import RaceMachine, StoreFactory, budget, drive, memory_factory
from oxtail_core.testing.races import entry, sid
from tests.support.stores import store_params

R_SID = sid(1)


class ClaimRace(RaceMachine):
    def __init__(self, factory: StoreFactory) -> None:
        super().__init__(factory)
        self.join("R", 100, None, tmux_session="rsess", tmux_pane="%5")
        self.join("S1", 201, sid(2))
        self.join("S2", 202, sid(3))
        self.unclaimed = self.me["R"]
        self.claim_published_at: int | None = None  # store-call index of the claim's registry_put
        self.calls = 0
        self.resolved_at: dict[str, int] = {}
        self.replaced = False
        self.n = 0
        self.outcomes: dict[str, Any] = {}

    def _observe(self, actor: str, method: str, args: tuple[Any, ...], result: Any) -> None:
        super()._observe(actor, method, args, result)
        self.calls += 1
        if actor == "claim:R" and method == "registry_put":
            self.claim_published_at = self.calls
        if method == "registry_entries" and actor.startswith("send:"):
            self.resolved_at.setdefault(actor, self.calls)  # its resolution; a later listing is a fold

    @precondition(lambda self: any(self.free(f"send:{s}") for s in ("S1", "S2")))
    @rule(sender=st.sampled_from(["S1", "S2"]))
    def send(self, sender: str) -> None:
        slot = f"send:{sender}"
        if not self.free(slot):
            return
        self.n += 1
        self.resolved_at.pop(slot, None)
        ctx, me, body = self.ctxs[sender], self.me[sender], f"m{self.n}"

        def op() -> Any:
            return drive(send_message(ctx, me, "rsess", body), ctx, self.sched.current())  # type: ignore[arg-type]

        def done(result: Any) -> None:
            self.outcomes[slot] = result
            if self.replaced and isinstance(result, NotSent):  # resolved while no R server was live
                assert result.unresolved.error == "target-not-found"
                return
            assert isinstance(result, Sent), f"R must stay addressable through its claim: {result}"
            resolved = self.resolved_at.get(slot, 0)
            if self.claim_published_at is not None and resolved > self.claim_published_at:
                assert self.appended[result.message_id] == session_inbox(R_SID), (
                    "a send that resolved R after its claim must go to the session inbox"
                )
                assert self.inner.ledger_lookup(R_SID, result.message_id) is not None

        self.launch(slot, op, done)

    @precondition(lambda self: self.me["R"].session_id is None and self.n >= 2)
    @rule()
    def claim(self) -> None:
        client = attrs.evolve(self.unclaimed.client, session_id=R_SID, session_id_source="self-register")
        claimed = attrs.evolve(self.unclaimed, client=client)
        self.former.append(self.me["R"])
        self.me["R"] = claimed  # Peer.claim: the new identity is ours before publish runs
        ctx = self.ctxs["R"]
        self.launch("claim:R", lambda: publish(ctx, claimed), lambda _: None)

    @precondition(lambda self: self.me["R"].session_id is None and self.n >= 2 and self.free("read:R"))
    @rule()
    def die_and_replace(self) -> None:
        """R74 (ours): unclaimed R dies with mail; the next server in the same pane starts claimed.

        The dead entry stays as a breadcrumb while its inbox holds mail, and the new server's
        publish adopts that inbox (same pane, unclaimed, dead). Sends may be under way: one
        that resolved R before it died either appends while the breadcrumb stands (and is
        adopted) or is refused as target-not-found -- never stranded."""
        old = self.me["R"]
        self.replaced = True
        self.host.kill(old.server_pid)
        new = entry(101, R_SID, started_at=old.started_at + 7, tmux_pane="%5", tmux_session="rsess")
        self.former.append(old)
        self.me["R"] = new
        ctx = self.ctxs["R"] = self.context()
        self.launch("claim:R", lambda: publish(ctx, new), lambda _: None)

    @precondition(lambda self: self.free("read:R"))
    @rule()
    def read(self) -> None:
        self.launch("read:R", self.reader("R"), lambda got: None)


@pytest.mark.parametrize("factory", store_params())
def test_claim_merge_vs_concurrent_send(factory: StoreFactory) -> None:
    run_state_machine_as_test(lambda: ClaimRace(factory), settings=budget(factory, 80, 40))


def _stranding_prefix() -> ClaimRace:
    """S1 resolves the unclaimed R (mail goes to R's process inbox) and is parked before its append."""
    machine = ClaimRace(memory_factory)
    machine.send("S1")
    machine.advance("send:S1")  # registry_entries: R resolved while alive and unclaimed
    assert machine.slots["send:S1"][0].next_call == "admit"  # the inbox-full look (nothing recorded yet)
    machine.advance("send:S1")
    assert machine.slots["send:S1"][0].next_call == "append"  # the guarded append
    return machine


def test_late_append_to_an_adopted_dead_inbox_is_refused_not_stranded() -> None:
    """A send that resolved R before R died and its successor adopted R's inbox: not-found, not lost."""
    machine = _stranding_prefix()
    try:
        machine.die_and_replace()  # R dies; its successor in pane %5 publishes (adopts, drops breadcrumb)
        while "claim:R" in machine.slots:
            machine.advance("claim:R")
        assert 100 not in {e.server_pid for e in machine.inner.registry_entries()}
        machine.advance("send:S1")  # the late append: refused, no breadcrumb stands for R any more
        assert "send:S1" not in machine.slots
        assert isinstance(machine.outcomes["send:S1"], NotSent)
        assert machine.outcomes["send:S1"].unresolved.error == "target-not-found"
        machine.teardown()  # final checks: nothing stranded anywhere
    finally:
        machine.close()


def test_late_append_after_reap_of_a_dead_unclaimed_server_is_refused_not_stranded() -> None:
    """The same window when another sender's resolve reaped the dead, empty, unclaimed R."""
    machine = _stranding_prefix()
    try:
        machine.host.kill(100)
        machine.replaced = True  # R is dead: S2's target-not-found is expected
        machine.send("S2")  # S2's resolve reaps the dead, empty, unclaimed R: target-not-found
        while "send:S2" in machine.slots:
            machine.advance("send:S2")
        assert 100 not in {e.server_pid for e in machine.inner.registry_entries()}
        machine.advance("send:S1")  # the late append: refused
        assert isinstance(machine.outcomes["send:S1"], NotSent)
        machine.former.append(machine.me["R"])
        machine.me["R"] = entry(101, R_SID, started_at=1_800_000_007, tmux_pane="%5", tmux_session="rsess")
        publish(machine.main_ctx, machine.me["R"])  # the successor in the same pane
        machine.teardown()
    finally:
        machine.close()


def test_late_append_inside_the_successors_reap_is_folded_by_its_sender() -> None:
    """The append lands between the successor's merge of R's inbox and its removal of R's breadcrumb:
    the removal sees mail and keeps the breadcrumb, and the successor's reads never look there, so the
    sender itself, seeing R dead after its append, folds the message into the successor's inbox."""
    machine = _stranding_prefix()
    try:
        machine.die_and_replace()
        while machine.slots["claim:R"][0].next_call != "registry_remove_if_drained":
            machine.advance("claim:R")
        machine.advance("send:S1")  # the append: R's breadcrumb still stands, so it is let in
        while "send:S1" in machine.slots:
            machine.advance("send:S1")
        assert isinstance(machine.outcomes["send:S1"], Sent)
        while "claim:R" in machine.slots:
            machine.advance("claim:R")
        assert 100 not in {e.server_pid for e in machine.inner.registry_entries()}
        machine.teardown()  # final checks: the successor's own reads reach the message
    finally:
        machine.close()
