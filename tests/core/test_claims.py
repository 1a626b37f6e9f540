"""The claim rule's table (oxtail_core.claims, docs/protocol.md "Who may claim a session id").

Pids are names on a MemoryHost; ``client_process`` at join says which client
launched each server, and ``host.parents`` stands for the kernel's word.
"""

from __future__ import annotations

import attrs
import pytest

from oxtail_core.claims import SessionHeld
from oxtail_core.convert import from_wire, to_wire
from oxtail_core.model import RegistryEntry
from tests.support.world import A, B, make_world


def test_a_sibling_of_the_same_client_process_shares_the_session() -> None:
    w = make_world()
    w.join(1, A, client_process=(100, 5.0))
    sibling = w.join(2, None, client_process=(100, 5.0))
    assert sibling.claim(A).session_id == A


def test_a_server_of_another_client_process_is_refused_and_nothing_changes() -> None:
    w = make_world()
    w.join(1, A, client_process=(100, 5.0), tmux_session="holder")
    thief = w.join(2, None, client_process=(200, 6.0))
    with pytest.raises(SessionHeld) as refused:
        thief.claim(A.upper())
    assert refused.value.code == "session-held"
    assert (refused.value.holder.server_pid, refused.value.holder.client_pid) == (1, 100)
    assert refused.value.holder.tmux_session == "holder"
    assert thief.session_id is None
    assert [e.session_id for e in w.store.registry_entries() if e.server_pid == 2] == [None]


def test_evidence_lets_the_claim_through() -> None:
    w = make_world()
    w.join(1, A, client_process=(100, None))
    resumed = w.join(2, None, client_process=(200, None))
    assert resumed.claim(A, proven=True).session_id == A


def test_an_adoption_by_describe_goes_through_the_same_rule() -> None:
    w = make_world()
    w.join(1, A, client_process=(100, None))
    thief = w.join(2, None, client_process=(200, None))
    with pytest.raises(SessionHeld):
        thief.describe(attrs.evolve(thief.me.client, session_id=A, session_id_source="sticky-claim"))
    assert thief.session_id is None


def test_a_dead_holder_or_an_orphaned_one_holds_nothing() -> None:
    w = make_world()
    w.join(1, A, client_process=(100, None))
    w.join(3, B, client_process=(300, None))
    claimant = w.join(2, None, client_process=(200, None))
    w.host.kill(1)  # the server is gone: a breadcrumb at most
    assert claimant.claim(A).session_id == A
    w.host.kill(300)  # the server lingers, its client is gone
    assert claimant.claim(B).session_id == B


def test_the_kernels_parent_wins_over_what_an_entry_says() -> None:
    w = make_world()
    w.join(1, A, client_process=(200, None))  # claims to be the thief's sibling
    thief = w.join(2, None, client_process=(200, None))
    w.host.parents.update({1: 100, 2: 200})
    with pytest.raises(SessionHeld):
        thief.claim(A)


def test_an_unknown_client_on_either_side_leaves_nothing_to_compare() -> None:
    w = make_world()
    w.join(1, A)
    assert w.join(2, None, client_process=(200, None)).claim(A).session_id == A
    assert w.join(3, None).claim(A).session_id == A


def test_the_client_process_round_trips_through_the_registry_codec() -> None:
    w = make_world()
    me = w.join(1, A, client_process=(100, 5.5)).me
    assert to_wire(me)["client_pid"] == 100
    assert from_wire(to_wire(me), RegistryEntry) == me
    bad = {**to_wire(me), "client_pid": True, "client_start": "x"}
    read = from_wire(bad, RegistryEntry)
    assert (read.client_pid, read.client_start) == (None, None)
