"""The MCP surface over real stdio: server identity, the fourteen tools' input schemas (those of the
reference 0.32.1: accounting.md Appendix A), argument validation and its exact issues.

One ``oxtail-mcp`` server for the module (validation never touches state that
another test here depends on), driven by the official MCP client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
    "message_status",
    "reply_to_message",
    "read_my_messages",
    "my_open_work",
    "complete_work",
    "block_work",
    "ask_peer",
]
OURS = ["reserve_paths", "release_paths", "list_reservations"]  # issue 12: ours, after the reference's

S = {"type": "string"}
S1 = {"type": "string", "minLength": 1}
B = {"type": "boolean"}
SAFE = 2**53 - 1
I = {"type": "integer", "minimum": -SAFE, "maximum": SAFE}  # noqa: E741
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
        {
            "target": S1,
            "body": S1,
            "wake": WAKE,
            "reply_to": S1,
            "source_message_id": S1,
            "action_required": B,
        },
        ["target", "body"],
    ),
    "message_status": ({"message_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}, ["message_id"]),
    "reply_to_message": ({"message_id": S1, "body": S1, "wake": WAKE}, ["message_id", "body"]),
    "read_my_messages": ({}, []),
    "my_open_work": ({}, []),
    "complete_work": ({"message_id": S1, "body": S1, "wake": WAKE}, ["message_id", "body"]),
    "block_work": ({"message_id": S1, "reason": S1, "wake": WAKE}, ["message_id", "reason"]),
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
    assert (info.name, info.version) == ("oxtail", "0.32.1")
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
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#", tool.name
        assert tool.execution is not None and tool.execution.task_support == "forbidden", tool.name
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


def accepted(agent: DirectAgent, tool: str, args: dict) -> dict:
    """The call passed validation: whatever the handler said, it said it as a JSON result."""
    result = agent.call(tool, args)
    assert not result.text.startswith(PREFIX.format(tool)), result
    return result.json


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
        ("complete_work", {"message_id": "", "body": "b"}, "message_id"),
        ("complete_work", {"message_id": "m", "body": ""}, "body"),
        ("block_work", {"message_id": "", "reason": "r"}, "message_id"),
        ("block_work", {"message_id": "m", "reason": ""}, "reason"),
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


HEX = "0123456789abcdef"


@pytest.mark.parametrize(("tool", "field"), [("complete_work", "body"), ("block_work", "reason")])
def test_the_closing_texts_are_capped_at_8192_bytes_and_the_issue_names_the_argument(
    agent: DirectAgent, tool: str, field: str
) -> None:
    for text in ("a" * 8192, "é" * 4096, "🦊" * 2048):
        assert accepted(agent, tool, {"message_id": HEX, field: text})["schema_version"] == 1
    for text in ("a" * 8193, "é" * 4096 + "a", "🦊" * 2048 + "a"):
        issues = rejected(agent, tool, {"message_id": HEX, field: text})
        assert issues == [{"code": "custom", "path": [field], "message": f"{field} exceeds 8192 UTF-8 bytes"}]


MESSAGE_ID_ISSUE = {
    "origin": "string",
    "code": "invalid_format",
    "format": "regex",
    "pattern": "/^[0-9a-f]{16}$/",
    "path": ["message_id"],
    "message": "message_id is the 16-hex id returned by the send tools",
}


@pytest.mark.parametrize(
    "value", ["XYZ", HEX.upper(), HEX[:15], HEX + "0", "", HEX + "\n", "\n" + HEX, "g" * 16]
)
def test_message_status_takes_only_a_16_hex_id(agent: DirectAgent, value: str) -> None:
    assert rejected(agent, "message_status", {"message_id": value}) == [MESSAGE_ID_ISSUE]


def test_message_status_accepts_a_16_hex_id(agent: DirectAgent) -> None:
    assert accepted(agent, "message_status", {"message_id": HEX})["schema_version"] == 1


def test_a_message_status_id_of_the_wrong_type_is_a_type_issue_not_a_pattern_issue(
    agent: DirectAgent,
) -> None:
    assert rejected(agent, "message_status", {"message_id": 12}) == [
        {
            "expected": "string",
            "code": "invalid_type",
            "path": ["message_id"],
            "message": "Invalid input: expected string, received number",
        }
    ]


def test_the_new_tools_name_their_missing_required_arguments_in_order(agent: DirectAgent) -> None:
    assert [i["path"] for i in rejected(agent, "message_status", {})] == [["message_id"]]
    assert [i["path"] for i in rejected(agent, "complete_work", {})] == [["message_id"], ["body"]]
    assert [i["path"] for i in rejected(agent, "block_work", {})] == [["message_id"], ["reason"]]
    issues = rejected(agent, "block_work", {"message_id": HEX, "body": "not the reason"})
    assert issues == [
        {
            "expected": "string",
            "code": "invalid_type",
            "path": ["reason"],
            "message": "Invalid input: expected string, received undefined",
        }
    ]


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("complete_work", {"message_id": HEX, "body": "b", "wake": "on"}),
        ("block_work", {"message_id": HEX, "reason": "r", "wake": "sometimes"}),
    ],
)
def test_the_closing_tools_take_only_off_or_auto_for_wake(agent: DirectAgent, tool: str, args: dict) -> None:
    issues = rejected(agent, tool, args)
    assert [(i["path"], i["code"], i["values"]) for i in issues] == [
        (["wake"], "invalid_value", ["off", "auto"])
    ]


def test_action_required_must_be_a_boolean(agent: DirectAgent) -> None:
    for value in ("yes", 1, [True]):
        issues = rejected(agent, "send_message", {"target": "t", "body": "b", "action_required": value})
        assert [(i["path"], i["code"], i["expected"]) for i in issues] == [
            (["action_required"], "invalid_type", "boolean")
        ]
    for value in (True, False):
        assert (
            accepted(agent, "send_message", {"target": "nobody-here", "body": "b", "action_required": value})[
                "error"
            ]
            == "target-not-found"
        )


def test_null_for_an_optional_argument_means_absent_but_not_for_a_required_one(agent: DirectAgent) -> None:
    """Our one leniency over the reference (which rejects both)."""
    result = agent.call("send_message", {"target": "nobody-here", "body": "b", "action_required": None})
    assert not result.is_error and result.json == NOT_FOUND
    issues = rejected(agent, "send_message", {"target": "nobody-here", "body": None})
    assert issues == [
        {
            "expected": "string",
            "code": "invalid_type",
            "path": ["body"],
            "message": "Invalid input: expected string, received null",
        }
    ]


@pytest.mark.parametrize("field", ["limit", "max_bytes", "pane_lines", "pane_max_chars"])
def test_read_session_integers_stay_within_the_safe_integer_range(agent: DirectAgent, field: str) -> None:
    note = "Integers must be within the safe integer range."
    for value in (2**53, 1e300):
        assert rejected(agent, "read_session", {"name": "x", field: value}) == [
            {
                "code": "too_big",
                "maximum": SAFE,
                "note": note,
                "origin": "int",
                "inclusive": True,
                "path": [field],
                "message": f"Too big: expected int to be <={SAFE}",
            }
        ]
    assert rejected(agent, "read_session", {"name": "x", field: -(2**53)}) == [
        {
            "code": "too_small",
            "minimum": -SAFE,
            "note": note,
            "origin": "int",
            "inclusive": True,
            "path": [field],
            "message": f"Too small: expected int to be >={-SAFE}",
        }
    ]
    for value in (SAFE, -SAFE, 5.0):
        assert "error" in accepted(agent, "read_session", {"name": "nobody-here", field: value})


@pytest.mark.parametrize(
    ("value", "expected", "received"),
    [
        ("5", "number", "string"),
        (True, "number", "boolean"),
        ([1], "number", "array"),
        (2.5, "int", "number"),
    ],
)
def test_an_integer_argument_of_the_wrong_kind_says_what_it_expected(
    agent: DirectAgent, value: object, expected: str, received: str
) -> None:
    (issue,) = rejected(agent, "read_session", {"name": "x", "limit": value})
    assert (issue["code"], issue["expected"], issue["message"]) == (
        "invalid_type",
        expected,
        f"Invalid input: expected {expected}, received {received}",
    )
    assert issue.get("format") == ("safeint" if expected == "int" else None)


def test_a_timeout_beyond_the_safe_range_breaks_both_bounds_in_order(agent: DirectAgent) -> None:
    issues = rejected(agent, "ask_peer", {"target": "t", "body": "b", "timeout_ms": 2**53})
    assert [(i["code"], i["origin"], i["maximum"]) for i in issues] == [
        ("too_big", "int", SAFE),
        ("too_big", "number", 300000),
    ]
    issues = rejected(agent, "ask_peer", {"target": "t", "body": "b", "timeout_ms": -(2**53)})
    assert [(i["code"], i["origin"], i["minimum"], i["inclusive"]) for i in issues] == [
        ("too_small", "int", -SAFE, True),
        ("too_small", "number", 0, False),
    ]


def test_every_issue_of_every_argument_is_reported_in_schema_order(agent: DirectAgent) -> None:
    issues = rejected(
        agent, "send_message", {"target": "", "body": "a" * 8193, "wake": "x", "action_required": 1}
    )
    assert [(i["path"], i["code"]) for i in issues] == [
        (["target"], "too_small"),
        (["body"], "custom"),
        (["wake"], "invalid_value"),
        (["action_required"], "invalid_type"),
    ]


MINIMAL_ARGS: dict[str, dict] = {
    "list_project_sessions": {},
    "read_session": {"name": "nobody-here"},
    "register_my_session": {"session_id": "11111111-2222-3333-4444-555555555555"},
    "claim_session": {"session_id": "11111111-2222-3333-4444-555555555555"},
    "get_my_session": {},
    "set_my_state": {},
    "send_message": {"target": "nobody-here", "body": "b"},
    "message_status": {"message_id": HEX},
    "reply_to_message": {"message_id": HEX, "body": "b"},
    "read_my_messages": {},
    "my_open_work": {},
    "complete_work": {"message_id": HEX, "body": "b"},
    "block_work": {"message_id": HEX, "reason": "r"},
    "ask_peer": {"target": "nobody-here", "body": "b", "timeout_ms": 1},
}


def test_every_listed_tool_answers_a_valid_call_with_a_json_result(tmp_path: Path) -> None:
    """A tool in the listing always has an answer, never a crash. Its own server: claim_session
    changes its state."""
    assert list(MINIMAL_ARGS) == TOOL_ORDER
    w = World(tmp_path)
    try:
        fresh = w.direct("every-tool", w.project("proj"))
        for tool, args in MINIMAL_ARGS.items():
            assert accepted(fresh, tool, args)["schema_version"] == 1, tool
    finally:
        w.close()


KEY_PHRASES: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("send_message", None): (
        "hookless",
        "woken by default",
        "wake-or-never",
        "fired_unconfirmed",
        "not proof",
    ),
    ("send_message", "action_required"): ("durable DELEGATION", 'Implies wake:"auto"', "my_open_work"),
    ("send_message", "wake"): ("hookless", "action_required means auto"),
    ("reply_to_message", None): ("close delegations with complete_work or block_work instead",),
    ("message_status", None): ("delivery-into-context, not proof the agent acted", "delivered", "pending"),
    ("my_open_work", None): ("PULL source of truth for owned work",),
    ("complete_work", None): ("not for interim notes",),
    ("block_work", None): ("BLOCKED", "[blocked] "),
    ("ask_peer", None): ("fired_unconfirmed", "not proof"),
}


def test_the_descriptions_convey_the_key_phrases_of_0_32_1(agent: DirectAgent) -> None:
    listed = {tool.name: tool for tool in agent._portal.call(agent.holder.session.list_tools).tools}
    for (tool, arg), phrases in KEY_PHRASES.items():
        text = (
            listed[tool].description
            if arg is None
            else listed[tool].input_schema["properties"][arg]["description"]
        )
        for phrase in phrases:
            assert phrase in text, (tool, arg, phrase)
