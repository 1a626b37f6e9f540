"""The MCP surface over real stdio: server identity, the ten tools' input schemas, argument validation.

One ``oxtail-mcp`` server for the module (validation never touches state that
another test here depends on), driven by the official MCP client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.e2e import DirectAgent, World

TOOL_ORDER = [
    "list_project_sessions",
    "read_session",
    "register_my_session",
    "claim_session",
    "get_my_session",
    "set_my_state",
    "send_message",
    "reply_to_message",
    "read_my_messages",
    "ask_peer",
]
OURS = ["reserve_paths", "release_paths", "list_reservations"]  # issue 12: ours, after the reference's

S = {"type": "string"}
S1 = {"type": "string", "minLength": 1}
B = {"type": "boolean"}
I = {"type": "integer"}  # noqa: E741
WAKE = {"type": "string", "enum": ["off", "auto"]}

# tool -> (property -> schema without "description", required)
SCHEMAS: dict[str, tuple[dict[str, dict], list[str]]] = {
    "list_project_sessions": ({"project_root": S, "compact": B}, []),
    "read_session": (
        {
            "name": S,
            "project_root": S,
            "mode": {"type": "string", "enum": ["auto", "transcript", "pane"]},
            "limit": I,
            "max_bytes": I,
            "include_timestamps": B,
            "tail_scan": B,
            "pane_lines": I,
            "pane_max_chars": I,
        },
        ["name"],
    ),
    "register_my_session": ({"session_id": S1}, ["session_id"]),
    "claim_session": ({"session_id": S1}, ["session_id"]),
    "get_my_session": ({}, []),
    "set_my_state": ({"purpose": {"type": "string", "maxLength": 200}}, []),
    "send_message": (
        {"target": S1, "body": S1, "wake": WAKE, "reply_to": S1, "source_message_id": S1},
        ["target", "body"],
    ),
    "reply_to_message": ({"message_id": S1, "body": S1, "wake": WAKE}, ["message_id", "body"]),
    "read_my_messages": ({}, []),
    "ask_peer": (
        {
            "target": S1,
            "body": S1,
            "timeout_ms": {"type": "integer", "exclusiveMinimum": 0, "maximum": 300000},
        },
        ["target", "body"],
    ),
}

PREFIX = "MCP error -32602: Input validation error: Invalid arguments for tool {}: "
NOT_FOUND = {"schema_version": 1, "ok": False, "error": "target-not-found"}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectAgent]:
    w = World(tmp_path_factory.mktemp("schemas"))
    try:
        yield w.direct("schemas", w.project("proj"))
    finally:
        w.close()


def issues_of(tool: str, text: str) -> list[dict]:
    """The issue array of a validation error, after checking the exact prefix."""
    assert text.startswith(PREFIX.format(tool)), text
    return json.loads(text[len(PREFIX.format(tool)) :])


def rejected(agent: DirectAgent, tool: str, args: dict) -> list[dict]:
    result = agent.call(tool, args)
    assert result.is_error, result
    return issues_of(tool, result.text)


def test_server_identity(agent: DirectAgent) -> None:
    info = agent.holder.initialized.server_info
    assert (info.name, info.version) == ("oxtail", "0.15.0")
    assert agent.holder.initialized.capabilities.tools is not None


def test_tools_capability_list_changed(agent: DirectAgent) -> None:
    """discovery.md §0: the tools capability advertises listChanged: true."""
    assert agent.holder.initialized.capabilities.tools.list_changed is True


def test_list_tools_names_order_and_schemas(agent: DirectAgent) -> None:
    listed = agent._portal.call(agent.holder.session.list_tools).tools
    assert list(SCHEMAS) == TOOL_ORDER
    assert [tool.name for tool in listed] == [*TOOL_ORDER, *OURS]
    for tool in listed[: len(TOOL_ORDER)]:
        properties, required = SCHEMAS[tool.name]
        schema = tool.input_schema
        assert schema["type"] == "object", tool.name
        assert list(schema["properties"]) == list(properties), tool.name
        for name, expected in properties.items():
            got = dict(schema["properties"][name])
            description = got.pop("description", None)
            assert isinstance(description, str) and description, (tool.name, name)
            assert got == expected, (tool.name, name)
        assert schema.get("required", []) == required, tool.name
        assert isinstance(tool.description, str) and len(tool.description) > 20, tool.name


@pytest.mark.parametrize("tool", ["send_message", "ask_peer"])
def test_body_cap_exact_bytes(agent: DirectAgent, tool: str) -> None:
    for body in ("a" * 8192, "é" * 4096, "🦊" * 2048):
        result = agent.call(tool, {"target": "nobody-here", "body": body})
        assert not result.is_error, result
        assert result.json["error"] == "target-not-found"
    for body in ("a" * 8193, "é" * 4096 + "a", "🦊" * 2048 + "a"):
        issues = rejected(agent, tool, {"target": "nobody-here", "body": body})
        assert issues == [{"code": "custom", "path": ["body"], "message": "body exceeds 8192 UTF-8 bytes"}]


def test_body_cap_on_reply_to_message(agent: DirectAgent) -> None:
    ok = agent.call("reply_to_message", {"message_id": "0123456789abcdef", "body": "a" * 8192})
    assert not ok.is_error and ok.json["error"] in {"no-session-id", "message-not-found"}
    issues = rejected(agent, "reply_to_message", {"message_id": "0123456789abcdef", "body": "a" * 8193})
    assert [i["message"] for i in issues] == ["body exceeds 8192 UTF-8 bytes"]


def test_exact_8193_error_text(agent: DirectAgent) -> None:
    result = agent.call("send_message", {"target": "x", "body": "a" * 8193})
    assert result.is_error
    assert result.text.startswith(
        "MCP error -32602: Input validation error: Invalid arguments for tool send_message:"
    )
    assert "body exceeds 8192 UTF-8 bytes" in result.text


def test_purpose_limit_counts_utf16_units(agent: DirectAgent) -> None:
    assert agent.ok("set_my_state", {"purpose": "p" * 200})["state"]["purpose"] == "p" * 200
    assert agent.ok("set_my_state", {"purpose": "🦊" * 100})["state"]["purpose"] == "🦊" * 100
    for purpose in ("p" * 201, "🦊" * 100 + "p"):
        issues = rejected(agent, "set_my_state", {"purpose": purpose})
        assert len(issues) == 1 and issues[0]["path"] == ["purpose"]
        assert "<=200" in issues[0]["message"], issues


@pytest.mark.parametrize("value", [1.5, 0, -1, 300001, "1000", True])
def test_timeout_ms_rejected(agent: DirectAgent, value: object) -> None:
    issues = rejected(agent, "ask_peer", {"target": "x", "body": "b", "timeout_ms": value})
    assert [i["path"] for i in issues] == [["timeout_ms"]]


@pytest.mark.parametrize("value", [1, 300000, 1000.0])
def test_timeout_ms_accepted(agent: DirectAgent, value: object) -> None:
    result = agent.call("ask_peer", {"target": "nobody-here", "body": "b", "timeout_ms": value})
    assert not result.is_error, result
    assert result.json == {**NOT_FOUND, "wake_status": "skipped_no_target"}


@pytest.mark.parametrize(
    ("tool", "args", "field"),
    [
        ("send_message", {"target": "", "body": "b"}, "target"),
        ("send_message", {"target": "t", "body": ""}, "body"),
        ("send_message", {"target": "t", "body": "b", "reply_to": ""}, "reply_to"),
        ("send_message", {"target": "t", "body": "b", "source_message_id": ""}, "source_message_id"),
        ("ask_peer", {"target": "", "body": "b"}, "target"),
        ("ask_peer", {"target": "t", "body": ""}, "body"),
        ("reply_to_message", {"message_id": "", "body": "b"}, "message_id"),
        ("reply_to_message", {"message_id": "m", "body": ""}, "body"),
        ("claim_session", {"session_id": ""}, "session_id"),
        ("register_my_session", {"session_id": ""}, "session_id"),
    ],
)
def test_min_length_one(agent: DirectAgent, tool: str, args: dict, field: str) -> None:
    issues = rejected(agent, tool, args)
    assert [(i["path"], i["code"]) for i in issues] == [([field], "too_small")]


def test_enums_types_and_required(agent: DirectAgent) -> None:
    issues = rejected(agent, "send_message", {"target": "t", "body": "b", "wake": "sometimes"})
    assert [(i["path"], i["code"]) for i in issues] == [(["wake"], "invalid_value")]
    issues = rejected(agent, "reply_to_message", {"message_id": "m", "body": "b", "wake": "on"})
    assert [i["path"] for i in issues] == [["wake"]]
    issues = rejected(agent, "read_session", {"name": "x", "mode": "screen"})
    assert [i["path"] for i in issues] == [["mode"]]
    issues = rejected(agent, "read_session", {"name": "x", "limit": 2.5})
    assert [i["path"] for i in issues] == [["limit"]]
    issues = rejected(agent, "list_project_sessions", {"compact": "yes"})
    assert [(i["path"], i["code"]) for i in issues] == [(["compact"], "invalid_type")]
    issues = rejected(agent, "send_message", {})
    assert [i["path"] for i in issues] == [["target"], ["body"]]
    issues = rejected(agent, "read_session", {})
    assert [i["path"] for i in issues] == [["name"]]
    issues = rejected(agent, "claim_session", {"session_id": 7})
    assert [(i["path"], i["code"]) for i in issues] == [(["session_id"], "invalid_type")]


def test_unknown_arguments_are_ignored(agent: DirectAgent) -> None:
    result = agent.call("send_message", {"target": "nobody-here", "body": "b", "bogus": 1, "wakeup": "x"})
    assert not result.is_error and result.json == NOT_FOUND
    result = agent.call("read_my_messages", {"limit": 5})
    assert not result.is_error and result.json["ok"] is True
    assert "entry" in agent.ok("get_my_session", {"verbose": True})


def test_unknown_tool_is_an_error(agent: DirectAgent) -> None:
    result = agent.call("no_such_tool", {})
    assert result.is_error and "no_such_tool" in result.text
