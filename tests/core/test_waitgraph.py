"""The wait-graph (selfheal.md §8.1–§8.2) and the problems ``status --check`` fails on, as pure functions."""

from __future__ import annotations

from oxtail_core.model import PendingAsk
from oxtail_core.waitgraph import (
    DEADLOCK,
    ORPHANED_WAIT,
    STRANDED,
    Agent,
    Cycle,
    problems,
    wait_graph,
)

A, B, C = "a" * 8, "b" * 8, "c" * 8
NOW = 10_000_000
TTL = 3_600_000


def ask(owner: str, peer: str | None, at: int = NOW - 1000, rid: str | None = None) -> PendingAsk:
    return PendingAsk(requester=owner, request_id=rid or f"{owner}->{peer}@{at}", at_ms=at, peer=peer)


def test_two_live_agents_asking_each_other_are_a_live_deadlock() -> None:
    graph = wait_graph([A, B], {A: True, B: True}, [ask(A, B), ask(B, A)], NOW, TTL)
    assert graph.cycles == (Cycle((A, B), all_live=True),)
    assert all(w.in_cycle and w.cycle_all_live and not w.orphaned for w in graph.waits)
    [problem] = problems(graph, [Agent(A, True), Agent(B, True)])
    assert (problem.kind, problem.agents) == (DEADLOCK, (A, B))
    assert problem.line == f"deadlock: {A} -> {B} -> {A} (all alive)"


def test_a_cycle_with_a_dead_member_is_stale_but_its_wait_on_the_dead_one_is_still_orphaned() -> None:
    graph = wait_graph([A, B], {A: True, B: False}, [ask(A, B), ask(B, A)], NOW, TTL)
    assert graph.cycles == (Cycle((A, B), all_live=False),)
    found = problems(graph, [Agent(A, True), Agent(B, False)])
    assert [(p.kind, p.agents) for p in found] == [(ORPHANED_WAIT, (A, B))]


def test_a_wait_on_a_dead_or_gone_agent_is_orphaned_and_a_wait_on_a_live_one_is_not() -> None:
    graph = wait_graph(
        [A, B, C], {A: True, B: False, C: True}, [ask(A, B), ask(B, "z" * 8), ask(C, A)], NOW, TTL
    )
    states = {w.waiter: (w.target_state, w.orphaned) for w in graph.waits}
    assert states == {A: ("dead", True), B: ("gone", True), C: ("alive", False)}
    assert graph.cycles == ()
    lines = [p.line for p in problems(graph, [])]
    assert lines[0].startswith(f"orphaned wait: {A} awaits a reply from {B} (dead), request ")
    assert lines[1].startswith(f"orphaned wait: {B} awaits a reply from {'z' * 8} (gone)")


def test_only_the_newest_live_ask_of_an_owner_forms_its_edge() -> None:
    older, newer, expired = ask(A, B, NOW - 5000), ask(A, C, NOW - 10), ask(A, B, NOW - TTL, rid="old")
    graph = wait_graph([A], {A: True, B: False, C: True}, [older, newer, expired], NOW, TTL)
    [wait] = graph.waits
    assert (wait.target, wait.since_ms, wait.orphaned) == (C, NOW - 10, False)
    assert problems(graph, []) == []


def test_an_expired_ask_forms_no_wait_and_an_ask_outside_the_scope_is_not_drawn() -> None:
    graph = wait_graph([A], {A: True, B: False}, [ask(A, B, NOW - TTL), ask(B, A)], NOW, TTL)
    assert graph.waits == () and graph.cycles == ()


def test_a_record_that_names_no_target_is_unresolved_and_never_a_problem() -> None:
    graph = wait_graph([A], {A: True}, [ask(A, None)], NOW, TTL)
    [wait] = graph.waits
    assert (wait.target, wait.target_state, wait.orphaned) == (None, "unknown", False)
    assert problems(graph, []) == []


def test_a_chain_into_a_cycle_puts_only_the_cycle_members_in_it() -> None:
    graph = wait_graph([A, B, C], {A: True, B: True, C: True}, [ask(C, A), ask(A, B), ask(B, A)], NOW, TTL)
    assert graph.cycles == (Cycle((A, B), all_live=True),)
    assert {w.waiter for w in graph.waits if w.in_cycle} == {A, B}


def test_a_dead_agent_holding_mail_or_work_is_stranded_and_a_live_one_or_an_empty_dead_one_is_not() -> None:
    graph = wait_graph([], {}, [], NOW, TTL)
    found = problems(graph, [Agent(A, False, unread=1), Agent(B, False, open_work=2), Agent(C, True, 5, 5)])
    assert [(p.kind, p.agents) for p in found] == [(STRANDED, (A,)), (STRANDED, (B,))]
    assert found[0].line == f"stranded: {A} is dead, holding 1 unread message, 0 open obligations"
    assert found[1].line == f"stranded: {B} is dead, holding 0 unread messages, 2 open obligations"
    assert problems(graph, [Agent(A, False)]) == []
