"""The ten tools' names, descriptions and input schemas, and argument validation.

Names, argument names, types, limits and defaults are the reference's, so
prompts and permission allowlists written for it keep working. Validation
runs before any handler; a failure is an MCP error result whose text is
``MCP error -32602: Input validation error: Invalid arguments for tool <tool>: <issues>``
with the issues as a pretty JSON array (the wording of each issue is ours).
Unknown arguments are dropped, not rejected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from oxtail_core.model import BODY_MAX_BYTES, PURPOSE_MAX_CHARS
from oxtail_core.reservations import (
    MAX_PATTERN_CHARS,
    PATHS_MAX,
    REASON_MAX_CHARS,
    TTL_DEFAULT_S,
    TTL_MAX_S,
    TTL_MIN_S,
)
from oxtail_core.wire import utf8len

ASK_TIMEOUT_CEILING_MS = 300_000
_SAFE_INT = 2**53 - 1


@attrs.frozen
class Arg:
    """One argument: its JSON type and limits."""

    type: str
    description: str
    min_length: int | None = None
    max_length: int | None = None
    max_utf16: int | None = None
    max_bytes: int | None = None
    enum: tuple[str, ...] | None = None
    exclusive_minimum: int | None = None
    maximum: int | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.max_utf16 is not None:
            out["maxLength"] = self.max_utf16
        if self.exclusive_minimum is not None:
            out["exclusiveMinimum"] = self.exclusive_minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        out["description"] = self.description
        return out


@attrs.frozen
class Tool:
    """A tool's public face."""

    name: str
    description: str
    args: Mapping[str, Arg]
    required: tuple[str, ...] = ()

    def input_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: arg.schema() for name, arg in self.args.items()},
        }
        if self.required:
            schema["required"] = list(self.required)
        return schema


_BODY = Arg(
    "string",
    f"Message text, 1 character to {BODY_MAX_BYTES} UTF-8 bytes, delivered verbatim.",
    min_length=1,
    max_bytes=BODY_MAX_BYTES,
)
_TARGET = Arg(
    "string",
    "The peer: its session id (a UUID, from list_project_sessions) or its tmux session name.",
    min_length=1,
)
_WAKE = Arg(
    "string",
    'Wake the peer by typing into its tmux pane: "auto" wakes it unless it is busy; "off" never wakes. '
    "Unset: plain messages do not wake; replies (reply_to set) wake a freshly idle peer once.",
    enum=("off", "auto"),
)
_PROJECT_ROOT = Arg("string", "Project directory; default: the git root of this session's working directory.")
_SESSION_ID = Arg(
    "string", "Your own agent session id (e.g. the value of $CLAUDE_CODE_SESSION_ID).", min_length=1
)

TOOLS: tuple[Tool, ...] = (
    Tool(
        "list_project_sessions",
        "List the agent sessions working in this project (tmux sessions joined with the registry): "
        "who is there, their client, session id and state card. Use it to find a peer to message.",
        {
            "project_root": _PROJECT_ROOT,
            "compact": Arg("boolean", "Group agents under their tmux session instead of one row per agent."),
        },
    ),
    Tool(
        "read_session",
        "Read what a peer has been saying: its transcript (Claude Code or Codex), or its tmux pane text. "
        "Budgeted: newest messages first within limit and max_bytes.",
        {
            "name": Arg("string", "The peer's tmux session name or session id (UUID)."),
            "project_root": _PROJECT_ROOT,
            "mode": Arg(
                "string",
                "auto (transcript, else pane), transcript or pane.",
                enum=("auto", "transcript", "pane"),
            ),
            "limit": Arg("integer", "Most recent messages to return (1-1000, default 20)."),
            "max_bytes": Arg("integer", "Byte budget for returned text (256-1000000, default 24000)."),
            "include_timestamps": Arg("boolean", "Include each message's timestamp."),
            "tail_scan": Arg(
                "boolean", "Read only the end of a huge transcript (fast, total count inexact)."
            ),
            "pane_lines": Arg("integer", "Pane mode: lines of scrollback (20-2000, default 240)."),
            "pane_max_chars": Arg("integer", "Pane mode: character budget (500-200000, default 20000)."),
        },
        ("name",),
    ),
    Tool(
        "register_my_session",
        "Declare this session's agent identity (like claim_session) and return the full registry entry.",
        {"session_id": _SESSION_ID},
        ("session_id",),
    ),
    Tool(
        "claim_session",
        "Declare this session's agent identity so peers can address you and you can reply by message id. "
        "Call it once if get_my_session shows no session_id.",
        {"session_id": _SESSION_ID},
        ("session_id",),
    ),
    Tool(
        "get_my_session",
        "Show this session's registry entry and how its identity was detected, with the next step if it "
        "was not.",
        {},
    ),
    Tool(
        "set_my_state",
        "Publish what you are working on (shown to peers in list_project_sessions). Without purpose, "
        "just refreshes the timestamp.",
        {
            "purpose": Arg(
                "string", f"One line, at most {PURPOSE_MAX_CHARS} characters.", max_utf16=PURPOSE_MAX_CHARS
            )
        },
    ),
    Tool(
        "send_message",
        "Send a message to a peer and return at once (fire and forget). To answer a question, pass its "
        "request_id as reply_to (or use reply_to_message).",
        {
            "target": _TARGET,
            "body": _BODY,
            "wake": _WAKE,
            "reply_to": Arg("string", "The request_id this message answers.", min_length=1),
            "source_message_id": Arg("string", "The message_id this message responds to.", min_length=1),
        },
        ("target", "body"),
    ),
    Tool(
        "reply_to_message",
        "Reply to a message you received, by its message_id: goes to its sender, correlated with its "
        "request_id, so a waiting ask_peer returns your reply.",
        {
            "message_id": Arg("string", "The message_id of the message you received.", min_length=1),
            "body": _BODY,
            "wake": _WAKE,
        },
        ("message_id", "body"),
    ),
    Tool(
        "read_my_messages",
        "Take your new messages (destructive read, oldest first, budgeted). count 0 can mean a hook "
        "already showed them to you.",
        {},
    ),
    Tool(
        "ask_peer",
        "Ask a peer a question and wait for its reply (it is woken if idle). On timeout the question "
        "stays open: a late reply is delivered to you and wakes you.",
        {
            "target": _TARGET,
            "body": _BODY,
            "timeout_ms": Arg(
                "integer",
                "How long to wait, in ms (default 60000, clamped to OXTAIL_ASK_PEER_MAX_TIMEOUT_MS).",
                exclusive_minimum=0,
                maximum=ASK_TIMEOUT_CEILING_MS,
            ),
        },
        ("target", "body"),
    ),
)

BY_NAME: dict[str, Tool] = {tool.name: tool for tool in TOOLS}


class InvalidArguments(ValueError):
    """Arguments that fail the tool's schema; ``str()`` is the MCP error text."""

    def __init__(self, tool: str, issues: list[dict[str, Any]]) -> None:
        self.tool = tool
        self.issues = issues
        super().__init__(
            f"MCP error -32602: Input validation error: Invalid arguments for tool {tool}: "
            + json.dumps(issues, indent=2, ensure_ascii=False)
        )


_JSON_TYPE: dict[str, type] = {"string": str, "boolean": bool}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_int(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (not isinstance(value, float) or value.is_integer()) and abs(value) <= _SAFE_INT


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


Issue = dict[str, Any]


@attrs.frozen
class Constraint:
    """One row of a type's checks: the limit ``arg`` sets (None: no such limit), whether ``value``
    breaks it, and the issue that says so."""

    limit: Callable[[Arg], Any]
    broken: Callable[[Any, Any], bool]
    issue: Callable[[Any, Any, list[str]], Issue]


_NOT_INT = Constraint(
    lambda a: "int",
    lambda v, n: not _is_int(v),
    lambda n, v, path: {
        "expected": "int",
        "code": "invalid_type",
        "path": path,
        "message": f"Invalid input: expected int, received {_type_name(v)}",
    },
)
_WRONG_TYPE = Constraint(
    lambda a: a.type,
    lambda v, t: not isinstance(v, _JSON_TYPE[t]),
    lambda n, v, path: {
        "expected": n,
        "code": "invalid_type",
        "path": path,
        "message": f"Invalid input: expected {n}, received {_type_name(v)}",
    },
)
_EXCLUSIVE_MINIMUM = Constraint(
    lambda a: a.exclusive_minimum,
    lambda v, n: v <= n,
    lambda n, v, path: {
        "origin": "number",
        "code": "too_small",
        "minimum": n,
        "inclusive": False,
        "path": path,
        "message": f"Too small: expected number to be >{n}",
    },
)
_MAXIMUM = Constraint(
    lambda a: a.maximum,
    lambda v, n: v > n,
    lambda n, v, path: {
        "origin": "number",
        "code": "too_big",
        "maximum": n,
        "inclusive": True,
        "path": path,
        "message": f"Too big: expected number to be <={n}",
    },
)
_ENUM = Constraint(
    lambda a: a.enum,
    lambda v, values: v not in values,
    lambda n, v, path: {
        "code": "invalid_value",
        "values": list(n),
        "path": path,
        "message": "Invalid option: expected one of " + "|".join(f'"{e}"' for e in n),
    },
)
_MIN_LENGTH = Constraint(
    lambda a: a.min_length,
    lambda v, n: len(v) < n,
    lambda n, v, path: {
        "origin": "string",
        "code": "too_small",
        "minimum": n,
        "inclusive": True,
        "path": path,
        "message": f"Too small: expected string to have >={n} characters",
    },
)
_MAX_UTF16 = Constraint(
    lambda a: a.max_utf16,
    lambda v, n: _utf16_len(v) > n,
    lambda n, v, path: {
        "origin": "string",
        "code": "too_big",
        "maximum": n,
        "inclusive": True,
        "path": path,
        "message": f"Too big: expected string to have <={n} characters",
    },
)
_MAX_BYTES = Constraint(
    lambda a: a.max_bytes,
    lambda v, n: utf8len(v) > n,
    lambda n, v, path: {"code": "custom", "path": path, "message": f"body exceeds {n} UTF-8 bytes"},
)

CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "integer": (_NOT_INT, _EXCLUSIVE_MINIMUM, _MAXIMUM),
    "boolean": (_WRONG_TYPE,),
    "string": (_WRONG_TYPE, _ENUM, _MIN_LENGTH, _MAX_UTF16, _MAX_BYTES),
}
"""Each JSON type's checks, in the order they are tried; the first broken one is the issue."""


def _check(name: str, arg: Arg, value: Any) -> Issue | None:
    for constraint in CONSTRAINTS[arg.type]:
        limit = constraint.limit(arg)
        if limit is not None and constraint.broken(value, limit):
            return constraint.issue(limit, value, [name])
    return None


def validate(tool: Tool, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments the handler may use (unknown keys dropped); raises InvalidArguments."""
    given = dict(arguments or {})
    issues: list[dict[str, Any]] = []
    clean: dict[str, Any] = {}
    for name, arg in tool.args.items():
        if name not in given or (given[name] is None and name not in tool.required):
            if name in tool.required:
                issues.append(
                    {
                        "expected": "int" if arg.type == "integer" else arg.type,
                        "code": "invalid_type",
                        "path": [name],
                        "message": f"Invalid input: expected {arg.type}, received undefined",
                    }
                )
            continue
        issue = _check(name, arg, given[name])
        if issue is not None:
            issues.append(issue)
        else:
            clean[name] = given[name]
    if issues:
        raise InvalidArguments(tool.name, issues)
    return clean


# Our tools (issue 12): not the reference's, listed after its 14 ------------------------------------
# Defined here, beside Arg and Tool, so that no module imports this one back (the handlers are in
# oxtail_mcp.server.ours). Array arguments (of strings) exist only for these tools.


@attrs.frozen
class ArrayArg(Arg):
    """An array of strings: ``min_length`` / ``max_length`` count items, ``item_max_length`` their
    characters."""

    item_max_length: int | None = None

    def schema(self) -> dict[str, Any]:
        items: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.item_max_length is not None:
            items["maxLength"] = self.item_max_length
        out: dict[str, Any] = {"type": "array", "items": items}
        if self.min_length is not None:
            out["minItems"] = self.min_length
        if self.max_length is not None:
            out["maxItems"] = self.max_length
        out["description"] = self.description
        return out


def _bad_item(value: list[Any], limit: int | None) -> int | None:
    """The index of the first item that is not a non-empty string (of at most ``limit`` characters)."""
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item or (limit is not None and len(item) > limit):
            return index
    return None


_JSON_TYPE["array"] = list
CONSTRAINTS["array"] = (
    _WRONG_TYPE,
    Constraint(
        lambda a: a.min_length,
        lambda v, n: len(v) < n,
        lambda n, v, path: {
            "origin": "array",
            "code": "too_small",
            "minimum": n,
            "inclusive": True,
            "path": path,
            "message": f"Too small: expected array to have >={n} items",
        },
    ),
    Constraint(
        lambda a: a.max_length,
        lambda v, n: len(v) > n,
        lambda n, v, path: {
            "origin": "array",
            "code": "too_big",
            "maximum": n,
            "inclusive": True,
            "path": path,
            "message": f"Too big: expected array to have <={n} items",
        },
    ),
    Constraint(
        lambda a: getattr(a, "item_max_length", None) or 0,
        lambda v, n: _bad_item(v, n or None) is not None,
        lambda n, v, path: {
            "code": "custom",
            "path": [*path, _bad_item(v, n or None)],
            "message": f"each item must be a non-empty string of at most {n} characters",
        },
    ),
)

_PATHS_DESCRIPTION = (
    "gitignore-style patterns relative to the project root (anchored there: src/*.py, docs/, "
    "**/test_*.py, README.md)"
)

OUR_TOOLS: tuple[Tool, ...] = (
    Tool(
        "reserve_paths",
        "Announce the files you are about to edit so parallel sessions do not collide. Never blocks: "
        "returns the patterns granted and, for the others, who holds them (ask them, or work "
        "elsewhere). Re-reserving renews. Exclusive reservations also stop other sessions' commits "
        "(oxtail-mcp guard). Release them when done.",
        {
            "paths": ArrayArg(
                "array",
                f"1-{PATHS_MAX} {_PATHS_DESCRIPTION}.",
                min_length=1,
                max_length=PATHS_MAX,
                item_max_length=MAX_PATTERN_CHARS,
            ),
            "exclusive": Arg("boolean", "Exclusive (default true) or shared (seen, never conflicting)."),
            "ttl_s": Arg(
                "integer",
                f"Seconds the reservation lasts ({TTL_MIN_S}-{TTL_MAX_S}, default {TTL_DEFAULT_S}); it "
                "also ends when your session has no live server left.",
                exclusive_minimum=TTL_MIN_S - 1,
                maximum=TTL_MAX_S,
            ),
            "reason": Arg(
                "string",
                f"Why, shown to peers (at most {REASON_MAX_CHARS} characters).",
                max_utf16=REASON_MAX_CHARS,
            ),
        },
        ("paths",),
    ),
    Tool(
        "release_paths",
        "Release your reservations: the given patterns, or all of yours in this project.",
        {
            "paths": ArrayArg(
                "array",
                f"Patterns to release, as reserved ({_PATHS_DESCRIPTION}); omit to release all of yours.",
                min_length=1,
                max_length=PATHS_MAX,
                item_max_length=MAX_PATTERN_CHARS,
            ),
        },
    ),
    Tool(
        "list_reservations",
        "Every live reservation in this project (or those covering one path or pattern): holder, "
        "reason, exclusivity, expiry.",
        {
            "path": Arg(
                "string",
                "Only reservations that share a path with this one (a path or pattern relative to "
                "the project root).",
                min_length=1,
                max_utf16=MAX_PATTERN_CHARS,
            )
        },
    ),
)

TOOLS = (*TOOLS, *OUR_TOOLS)
BY_NAME = {tool.name: tool for tool in TOOLS}
