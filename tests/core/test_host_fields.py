"""Host ids, host names and project ids on registry entries: absent on one machine (the shapes stay
byte for byte what they were), and what liveness, inbox keys and project scope make of them."""

from __future__ import annotations

import attrs
import pytest

from oxtail_core.clock import FakeClock
from oxtail_core.context import Context
from oxtail_core.convert import ShapeError, from_wire, to_wire
from oxtail_core.memory import MemoryHost, MemoryStore, RecordingWaker
from oxtail_core.messaging import holder_of
from oxtail_core.model import ClientInfo, RegistryEntry, same_incarnation
from oxtail_core.protocols import Holder, InboxId
from oxtail_core.routing import (
    CROSS_PROJECT,
    Unresolved,
    in_project,
    is_holder_alive,
    process_inbox,
    resolve_target,
)
from oxtail_core.wire import dumps

ONE_MACHINE = RegistryEntry(
    server_pid=9351,
    started_at=1795609014,
    client=ClientInfo(type="codex", session_id="e", cwd="/p"),
    process_start=1795609013.25,
)
ONE_MACHINE_JSON = (
    '{"server_pid":9351,"started_at":1795609014,"client":{"type":"codex","session_id":"e",'
    '"transcript_path":null,"session_id_source":null,"cwd":"/p"},"tmux_pane":null,"tmux_session":null,'
    '"state":null,"capabilities":{"mailbox":{"reply_to":true,"provenance":true,"push_budget":true,'
    '"session_keyed":true,"obligations":true}},"process_start":1795609013.25}'
)


def test_an_entry_without_host_fields_writes_exactly_the_json_it_always_wrote() -> None:
    assert dumps(to_wire(ONE_MACHINE)) == ONE_MACHINE_JSON
    assert from_wire(to_wire(ONE_MACHINE), RegistryEntry) == ONE_MACHINE


def test_host_fields_are_written_last_only_when_set_and_read_back() -> None:
    entry = attrs.evolve(ONE_MACHINE, host_id="box-1", host_name="devbox.local", project_id="ab" * 16)
    wire = to_wire(entry)
    assert list(wire)[-3:] == ["host_id", "host_name", "project_id"]
    assert dumps(wire) == ONE_MACHINE_JSON[:-1] + (
        ',"host_id":"box-1","host_name":"devbox.local","project_id":"' + "ab" * 16 + '"}'
    )
    assert from_wire(wire, RegistryEntry) == entry
    only_host = to_wire(attrs.evolve(ONE_MACHINE, host_id="box-1"))
    assert "host_name" not in only_host and "project_id" not in only_host


@pytest.mark.parametrize("bad", ["", "Box", "a:b", "a}b", "x" * 64, 7, True, ["a"]])
def test_an_entry_with_a_malformed_host_id_is_refused_as_a_whole(bad: object) -> None:
    wire = {**to_wire(ONE_MACHINE), "host_id": bad}
    with pytest.raises(ShapeError):
        from_wire(wire, RegistryEntry)


def test_the_same_pid_and_start_on_another_host_is_another_incarnation() -> None:
    here = attrs.evolve(ONE_MACHINE, host_id="box-1")
    assert same_incarnation(here, attrs.evolve(here, host_name="renamed", project_id="p"))
    assert not same_incarnation(here, attrs.evolve(here, host_id="box-2"))
    assert not same_incarnation(here, ONE_MACHINE)
    assert same_incarnation(ONE_MACHINE, attrs.evolve(ONE_MACHINE))


def test_a_process_inbox_key_names_the_host_only_when_there_is_one() -> None:
    assert InboxId.for_process(42, 7) == InboxId("process", "42-7")
    assert InboxId.for_process(42, 7, "box-1") == InboxId("process", "box-1/42-7")
    assert process_inbox(ONE_MACHINE) == InboxId("process", "9351-1795609014")
    assert process_inbox(attrs.evolve(ONE_MACHINE, host_id="box-2")).key == "box-2/9351-1795609014"
    assert holder_of(attrs.evolve(ONE_MACHINE, host_id="box-2")) == Holder(9351, 1795609013.25, "box-2")


class HostsSeen(MemoryHost):
    """Remembers which host every liveness question named."""

    def __init__(self, projects: dict[str, str] | None = None) -> None:
        super().__init__(projects)
        self.asked: list[str | None] = []

    def is_alive(self, pid: int, process_start: float | None, host: str | None = None) -> bool:
        self.asked.append(host)
        return super().is_alive(pid, process_start, host)


def _ctx(host: MemoryHost) -> Context:
    return Context(MemoryStore(), RecordingWaker(), FakeClock(1_000), host)


def test_holder_liveness_is_asked_on_the_holders_host() -> None:
    host = HostsSeen()
    alive = is_holder_alive(_ctx(host))
    alive(Holder(5, 1.0, "box-2"))
    alive(Holder(5, 1.0))
    assert host.asked == ["box-2", None]


def _peer(host_id: str | None, project_id: str | None, cwd: str = "/elsewhere") -> RegistryEntry:
    client = ClientInfo(type="claude-code", session_id="bbbbbbbb-0000-0000-0000-000000000002", cwd=cwd)
    return RegistryEntry(server_pid=20, started_at=2, client=client, host_id=host_id, project_id=project_id)


def _me(host_id: str | None, project_id: str | None, cwd: str = "/here") -> RegistryEntry:
    client = ClientInfo(type="claude-code", session_id="aaaaaaaa-0000-0000-0000-000000000001", cwd=cwd)
    return RegistryEntry(server_pid=10, started_at=1, client=client, host_id=host_id, project_id=project_id)


def test_across_hosts_the_project_id_decides_and_paths_are_never_compared() -> None:
    ctx = _ctx(MemoryHost({"/here": "one", "/elsewhere": "two"}))  # different projects by path
    assert in_project(ctx, _me("box-1", "p1"), _peer("box-2", "p1"))
    assert not in_project(ctx, _me("box-1", "p1"), _peer("box-2", "p2"))
    assert not in_project(ctx, _me("box-1", None), _peer("box-2", None))
    assert not in_project(ctx, _me("box-1", "p1"), _peer("box-2", None))
    same_path = _ctx(MemoryHost())  # every path is one project: still not across hosts without an id
    assert not in_project(same_path, _me("box-1", None, "/x"), _peer("box-2", None, "/x"))


def test_on_one_host_the_path_rule_decides_whatever_the_project_ids_say() -> None:
    split = _ctx(MemoryHost({"/here": "one", "/elsewhere": "two"}))
    assert not in_project(split, _me("box-1", "p1"), _peer("box-1", "p1"))
    assert not in_project(split, _me(None, "p1"), _peer("box-2", "p1"))  # one side without a host
    joined = _ctx(MemoryHost())
    assert in_project(joined, _me("box-1", "p1"), _peer("box-1", "p2"))
    assert in_project(joined, _me(None, None), _peer(None, None))


def test_a_send_to_a_remote_peer_of_another_project_is_cross_project() -> None:
    ctx = _ctx(MemoryHost())
    me, peer = _me("box-1", "p1"), _peer("box-2", "p2")
    ctx.store.registry_put(me)
    ctx.store.registry_put(peer)
    assert resolve_target(ctx, me, peer.client.session_id or "") == Unresolved(CROSS_PROJECT)
    ctx.store.registry_put(attrs.evolve(peer, project_id="p1"))
    assert resolve_target(ctx, me, peer.client.session_id or "") == attrs.evolve(peer, project_id="p1")
