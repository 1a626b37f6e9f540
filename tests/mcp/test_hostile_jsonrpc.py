"""T3, a buggy MCP client: every request that has an id gets an answer (issue 15 item 9).

The screen (``oxtail_mcp.server.screen``) is checked row by row as a pure
function, then against a live ``oxtail-mcp`` over raw pipes (the official
client cannot send broken lines), and last by a Hypothesis fuzzer that feeds
arbitrary lines and tool arguments to one live server and asserts that every
request with an id is answered, that the server keeps serving, and that
nothing is written outside its state dir.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxtail_mcp.server.screen import Drop, Reject, screen
from tests.support.e2e import World, spawn_raw

LONE = "\\ud800"  # as the client writes it: an escaped lone surrogate


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('{"jsonrpc":"2.0","id":7,"method":"ping"} trailing', types.PARSE_ERROR),
        ('{"jsonrpc":"2.0","id":7,"method":"ping"}{"x":1}', types.PARSE_ERROR),
        ('{"jsonrpc":"1.0","id":7,"method":"ping"}', types.INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"x"}', types.INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":7,"method":5}', types.INVALID_REQUEST),
        (
            '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"send_message",'
            f'"arguments":{{"target":"x","body":"cut emoji {LONE}"}}}}}}',
            types.INVALID_PARAMS,
        ),
        (f'{{"jsonrpc":"2.0","id":7,"method":"pi{LONE}ng"}}', types.INVALID_REQUEST),
    ],
)
def test_a_broken_request_with_an_id_is_answered_with_its_error(line: str, code: int) -> None:
    assert screen(line) == [Reject(7, code, screen(line)[0].message)]  # type: ignore[index]


def test_a_string_id_is_echoed_and_a_batch_is_answered_per_request() -> None:
    assert screen('{"jsonrpc":"2.0","id":"a","method":"ping"} x')[0].id == "a"  # type: ignore[index]
    batch = screen('[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"},{"id":2}]')
    assert [r.id for r in batch] == [1]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "",
        '{"jsonrpc":"2.0","method":"notifications/x","params":"bad"}',  # a notification: no id
        f'{{"jsonrpc":"2.0","id":"a{LONE}","method":"ping"}}',  # an id we could not write back
        '{"jsonrpc":"2.0","id":3,"result":"bad"}',  # a response, not a request
        "[]",
    ],
)
def test_a_line_without_a_request_id_is_dropped(line: str) -> None:
    assert isinstance(screen(line), Drop)


def test_a_valid_message_passes_unchanged() -> None:
    line = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
    assert screen(line) is line


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_the_screen_never_raises_and_rejects_only_requests(line: str) -> None:
    verdict = screen(line)
    if isinstance(verdict, list):
        assert verdict and all(isinstance(r.id, (int, str)) for r in verdict)


# Live server over raw pipes ----------------------------------------------------------------------------


class RawServer:
    """One ``oxtail-mcp`` on raw pipes; its output lines are parsed into a queue by a thread."""

    def __init__(self, w: World, cwd: Path) -> None:
        self.proc = spawn_raw(w, cwd)
        self.out: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.next_id = 1000
        self.request({"method": "initialize", "params": _INIT})
        self.send_line(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.out.put(json.loads(raw))

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode("utf-8", "surrogatepass") + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, ids: set[int | str], timeout_s: float = 20.0) -> dict[int | str, dict[str, Any]]:
        got: dict[int | str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while not ids <= got.keys():
            left = deadline - time.monotonic()
            assert left > 0, f"no answer for {sorted(map(str, ids - got.keys()))}"
            message = self.out.get(timeout=left)
            if "id" in message:
                got[message["id"]] = message
        return got

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        self.send_line(json.dumps({"jsonrpc": "2.0", "id": rid, **message}))
        return self.wait_for({rid})[rid]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


_INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RawServer, World]]:
    w = World(tmp_path_factory.mktemp("jsonrpc"))
    server = RawServer(w, w.project("proj"))
    try:
        yield server, w
    finally:
        server.close()
        w.close()


@pytest.mark.e2e
def test_broken_requests_are_answered_and_the_server_keeps_serving(live: tuple[RawServer, World]) -> None:
    server, _ = live
    lines = {
        1: '{"jsonrpc":"2.0","id":1,"method":"tools/list"} garbage',
        2: '{"jsonrpc":"1.0","id":2,"method":"tools/list"}',
        3: '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":"send_message"}',
        4: '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"set_my_state",'
        f'"arguments":{{"purpose":"half an emoji {LONE}"}}}}}}',
    }
    for line in lines.values():
        server.send_line(line)
    answers = server.wait_for(set(lines))
    codes = {rid: answers[rid]["error"]["code"] for rid in lines}
    assert codes == {1: types.PARSE_ERROR, 2: types.INVALID_REQUEST, 3: types.INVALID_REQUEST, 4: -32602}
    listed = server.request({"method": "tools/list", "params": {}})
    assert "send_message" in [tool["name"] for tool in listed["result"]["tools"]]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_TOOLS = [
    "list_project_sessions",
    "read_session",
    "register_my_session",
    "claim_session",
    "get_my_session",
    "set_my_state",
    "send_message",
    "reply_to_message",
    "read_my_messages",
    "no_such_tool",
]


@st.composite
def _request(draw: st.DrawFn, rid: int) -> str:
    """A request line with id ``rid``: a tool call with arbitrary arguments, or a mangled shape."""
    tool = draw(st.sampled_from(_TOOLS))
    arguments = draw(st.dictionaries(st.sampled_from(["target", "body", "name", "session_id", "x"]), _JSON))
    message: dict[str, Any] = {
        "jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0", 2])),
        "id": rid,
        "method": draw(st.sampled_from(["tools/call", "tools/call", "ping", "nope"])),
        "params": draw(st.sampled_from([{"name": tool, "arguments": arguments}, "s", [1], None])),
    }
    if message["params"] is None:
        del message["params"]
    line = json.dumps(message, ensure_ascii=draw(st.booleans()))
    return line + draw(st.sampled_from(["", "", " trailing", "}"]))


def _tree(root: Path, skip: Path) -> set[str]:
    return {
        str(p) for p in root.rglob("*") if skip not in p.parents and p != skip and "servers.log" not in p.name
    }


@pytest.mark.e2e
@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_lines_get_every_request_answered_and_nothing_written_outside(
    live: tuple[RawServer, World], data: st.DataObject
) -> None:
    server, w = live
    before = _tree(w.tmp, w.oxtail_home)
    expected: set[int | str] = set()
    for _ in range(data.draw(st.integers(1, 6))):
        if data.draw(st.booleans()):
            server.send_line(
                data.draw(st.text(max_size=60).filter(lambda s: "\n" not in s and "\r" not in s))
            )
            continue
        server.next_id += 1
        expected.add(server.next_id)
        server.send_line(data.draw(_request(server.next_id)))
    server.wait_for(expected, timeout_s=60.0)
    assert server.request({"method": "ping"})["result"] == {}
    assert server.proc.poll() is None
    assert _tree(w.tmp, w.oxtail_home) == before
