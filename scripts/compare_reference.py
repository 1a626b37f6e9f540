#!/usr/bin/env python3
"""Compare our MCP surface with the reference oxtail 0.32.1, over stdio, with the official client.

A developer tool, not part of the test suite. It starts the reference
(``node <reference>/dist/server.js``) and ours (``.venv/bin/oxtail-mcp``), each
with its own fresh ``HOME`` (and ``OXTAIL_HOME`` for ours) in a fresh project
directory, talks to both through ``mcp.ClientSession`` over stdio, and compares:

* ``serverInfo`` name and version;
* ``tools/list``: names, order, and every ``inputSchema`` with descriptions
  removed (types, limits, patterns, enums, required, property order);
* the result of every :data:`CASES` entry, in order, on one client session per
  server: by default a bad input whose validation error must match (prefix and
  issue array, as sent); a case with ``kind="call"`` is an ordinary call whose
  parsed JSON is compared after :func:`normalize` (ids, times, pids and the temp
  path replaced by placeholders). To compare more calls, add cases to the list
  (state carries over from one case to the next, on both sides alike).

Prints a unified diff (reference first) for every difference and exits 1 if
there is any; a case marked ``known`` (a difference we keep on purpose) is
printed as KNOWN and does not fail the run. ``--show`` prints matching items
too, ``-k TEXT`` runs only the cases whose name contains TEXT.

Usage::

    .venv/bin/python scripts/compare_reference.py [--reference /tmp/ref/v0.32.1] [--ours CMD] [--show]

The reference is built from its public repository (``npm ci --ignore-scripts && npx tsc``
in a temp folder, never in this tree).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = Path("/tmp/ref/v0.32.1")
DEFAULT_OURS = str(ROOT / ".venv" / "bin" / "oxtail-mcp")
CALL_TIMEOUT_S = 30.0


@attrs.frozen
class Case:
    """One tool call made on both servers.

    ``kind``: ``"validation"`` (a bad input: the error's prefix and issue array are compared, as
    sent) or ``"call"`` (the parsed JSON result is compared after :func:`normalize`; an error result
    is compared as text). ``known``: why we deliberately answer differently (a difference there is
    printed as KNOWN and does not fail the run; a match there is reported, so a stale entry shows).
    """

    name: str
    tool: str
    args: Mapping[str, Any]
    kind: str = "validation"
    known: str = ""


NULL_IS_ABSENT = "ours: null for an optional argument means absent; the reference rejects it"
HEX16 = "0123456789abcdef"
CALLER = "11111111-2222-4333-8444-555555555555"
BIG = "a" * 8193
WIDE = "é" * 4096 + "a"  # 8193 UTF-8 bytes in 4097 characters

CASES: tuple[Case, ...] = (
    # missing required arguments
    Case("send_message without arguments", "send_message", {}),
    Case("send_message without body", "send_message", {"target": "t"}),
    Case("read_session without name", "read_session", {}),
    Case("claim_session without session_id", "claim_session", {}),
    Case("register_my_session without session_id", "register_my_session", {}),
    Case("reply_to_message without arguments", "reply_to_message", {}),
    Case("ask_peer without arguments", "ask_peer", {}),
    Case("message_status without message_id", "message_status", {}),
    Case("complete_work without arguments", "complete_work", {}),
    Case("block_work without arguments", "block_work", {}),
    Case("block_work with body instead of reason", "block_work", {"message_id": HEX16, "body": "b"}),
    # wrong types
    Case("compact as a string", "list_project_sessions", {"compact": "yes"}),
    Case("project_root as a number", "list_project_sessions", {"project_root": 7}),
    Case("session_id as a number", "claim_session", {"session_id": 7}),
    Case("limit as a fraction", "read_session", {"name": "x", "limit": 2.5}),
    Case("limit as a string", "read_session", {"name": "x", "limit": "5"}),
    Case("limit beyond a safe integer", "read_session", {"name": "x", "limit": 2**53}),
    Case("limit below a safe integer", "read_session", {"name": "x", "limit": -(2**53)}),
    Case("pane_lines as a boolean", "read_session", {"name": "x", "pane_lines": True}),
    Case("tail_scan as a number", "read_session", {"name": "x", "tail_scan": 1}),
    Case("mode not in the enum", "read_session", {"name": "x", "mode": "screen"}),
    Case("wake not in the enum", "send_message", {"target": "t", "body": "b", "wake": "sometimes"}),
    Case("action_required as a string", "send_message", {"target": "t", "body": "b", "action_required": "y"}),
    Case(
        "complete_work wake not in the enum", "complete_work", {"message_id": HEX16, "body": "b", "wake": "x"}
    ),
    Case("block_work wake not in the enum", "block_work", {"message_id": HEX16, "reason": "r", "wake": "x"}),
    Case("message_status id as a number", "message_status", {"message_id": 12}),
    Case("purpose as a number", "set_my_state", {"purpose": 5}),
    # too short, too long
    Case("empty target", "send_message", {"target": "", "body": "b"}),
    Case("empty body", "send_message", {"target": "t", "body": ""}),
    Case("empty reply_to", "send_message", {"target": "t", "body": "b", "reply_to": ""}),
    Case("empty source_message_id", "send_message", {"target": "t", "body": "b", "source_message_id": ""}),
    Case("empty complete_work message_id", "complete_work", {"message_id": "", "body": "b"}),
    Case("empty complete_work body", "complete_work", {"message_id": HEX16, "body": ""}),
    Case("empty block_work reason", "block_work", {"message_id": HEX16, "reason": ""}),
    Case("send_message body of 8193 bytes", "send_message", {"target": "t", "body": BIG}),
    Case("send_message body of 8193 bytes in 4097 chars", "send_message", {"target": "t", "body": WIDE}),
    Case("reply body of 8193 bytes", "reply_to_message", {"message_id": HEX16, "body": BIG}),
    Case("ask_peer body of 8193 bytes", "ask_peer", {"target": "t", "body": BIG}),
    Case("complete_work body of 8193 bytes", "complete_work", {"message_id": HEX16, "body": BIG}),
    Case("block_work reason of 8193 bytes", "block_work", {"message_id": HEX16, "reason": BIG}),
    Case("block_work reason of 4097 wide chars", "block_work", {"message_id": HEX16, "reason": WIDE}),
    Case("purpose of 201 characters", "set_my_state", {"purpose": "p" * 201}),
    Case("purpose of 201 UTF-16 units", "set_my_state", {"purpose": "🦊" * 100 + "p"}),
    # patterns
    Case("message_status id too short", "message_status", {"message_id": HEX16[:15]}),
    Case("message_status id too long", "message_status", {"message_id": HEX16 + "0"}),
    Case("message_status id uppercase", "message_status", {"message_id": HEX16.upper()}),
    Case("message_status id not hex", "message_status", {"message_id": "XYZ"}),
    Case("message_status id empty", "message_status", {"message_id": ""}),
    Case("message_status id with a newline", "message_status", {"message_id": HEX16 + "\n"}),
    # timeout_ms bounds
    Case("timeout_ms zero", "ask_peer", {"target": "t", "body": "b", "timeout_ms": 0}),
    Case("timeout_ms negative", "ask_peer", {"target": "t", "body": "b", "timeout_ms": -1}),
    Case("timeout_ms above the ceiling", "ask_peer", {"target": "t", "body": "b", "timeout_ms": 300001}),
    Case("timeout_ms a fraction", "ask_peer", {"target": "t", "body": "b", "timeout_ms": 1.5}),
    Case("timeout_ms a string", "ask_peer", {"target": "t", "body": "b", "timeout_ms": "1000"}),
    Case("timeout_ms beyond a safe integer", "ask_peer", {"target": "t", "body": "b", "timeout_ms": 2**53}),
    Case("timeout_ms below a safe integer", "ask_peer", {"target": "t", "body": "b", "timeout_ms": -(2**53)}),
    Case("timeout_ms 1e300", "ask_peer", {"target": "t", "body": "b", "timeout_ms": 1e300}),
    Case("limit 1e300", "read_session", {"name": "x", "limit": 1e300}),
    Case("limit -1e300", "read_session", {"name": "x", "limit": -1e300}),
    Case("limit 2.5e20, pane_lines 0.5", "read_session", {"name": "x", "limit": 2.5e20, "pane_lines": 0.5}),
    Case("name null", "read_session", {"name": None}),
    Case("body null", "send_message", {"target": "t", "body": None}),
    Case("limit null", "read_session", {"name": "x", "limit": None}, known=NULL_IS_ABSENT),
    Case(
        "action_required null",
        "send_message",
        {"target": "nobody-here", "body": "b", "action_required": None},
        known=NULL_IS_ABSENT,
    ),
    Case("limit an array", "read_session", {"name": "x", "limit": [1]}),
    Case("limit an object", "read_session", {"name": "x", "limit": {}}),
    # several issues at once: order of the issue array
    Case(
        "three bad arguments",
        "send_message",
        {"target": "", "body": BIG, "wake": "x", "action_required": 1},
    ),
    # ordinary calls (normalized results)
    Case("message_status of an unknown id", "message_status", {"message_id": HEX16}, kind="call"),
    Case("my_open_work unclaimed", "my_open_work", {}, kind="call"),
    Case("complete_work unclaimed", "complete_work", {"message_id": HEX16, "body": "b"}, kind="call"),
    Case("block_work unclaimed", "block_work", {"message_id": HEX16, "reason": "r"}, kind="call"),
    Case("send_message to nobody", "send_message", {"target": "nobody-here", "body": "b"}, kind="call"),
    Case(
        "delegation to nobody",
        "send_message",
        {"target": "nobody-here", "body": "b", "action_required": True},
        kind="call",
    ),
    Case("ask_peer to nobody", "ask_peer", {"target": "nobody-here", "body": "b"}, kind="call"),
    Case("reply_to_message unclaimed", "reply_to_message", {"message_id": HEX16, "body": "b"}, kind="call"),
    Case("read_my_messages, empty", "read_my_messages", {}, kind="call"),
    Case("read_session of nobody", "read_session", {"name": "nobody-here"}, kind="call"),
    Case("list_project_sessions without tmux", "list_project_sessions", {}, kind="call"),
    Case("get_my_session unclaimed", "get_my_session", {}, kind="call"),
    Case("set_my_state", "set_my_state", {"purpose": "comparing"}, kind="call"),
    Case("unknown tool", "no_such_tool", {}, kind="call"),
    # the same session, claimed (state carries over to every later case)
    Case("claim_session", "claim_session", {"session_id": CALLER}, kind="call"),
    Case("my_open_work claimed, nothing owed", "my_open_work", {}, kind="call"),
    Case(
        "complete_work claimed, unknown id", "complete_work", {"message_id": HEX16, "body": "b"}, kind="call"
    ),
    Case("block_work claimed, unknown id", "block_work", {"message_id": HEX16, "reason": "r"}, kind="call"),
    Case(
        "reply_to_message claimed, unknown id",
        "reply_to_message",
        {"message_id": HEX16, "body": "b"},
        kind="call",
    ),
    Case("read_my_messages claimed, empty", "read_my_messages", {}, kind="call"),
    Case("send_message to myself", "send_message", {"target": CALLER, "body": "b"}, kind="call"),
)


# ------------------------------------------------------------------------------------------------------
# Normalization
# ------------------------------------------------------------------------------------------------------

_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<hex16>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<iso-time>"),
)
"""Values that differ between any two runs, in strings: replaced by a placeholder."""

_VOLATILE_KEYS = re.compile(r"(_at|_pid|^pid|_mtime|_seconds|^at)$")
"""Keys whose integer values are times or pids."""


def normalize(value: Any, home: str) -> Any:
    """``value`` with run-specific parts replaced: the temp directory, UUIDs, hex16 ids, ISO times,
    and integers under time/pid keys. Key order is kept (it is part of the wire)."""
    if isinstance(value, dict):
        return {
            key: "<int>"
            if isinstance(item, int) and not isinstance(item, bool) and _VOLATILE_KEYS.search(key)
            else normalize(item, home)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalize(item, home) for item in value]
    if isinstance(value, str):
        text = value.replace(home, "<tmp>")
        for pattern, placeholder in _PLACEHOLDERS:
            text = pattern.sub(placeholder, text)
        return text
    return value


def schema_shape(schema: Any) -> Any:
    """A JSON schema as compared: every ``description`` removed (descriptions are ours), the keys of
    each schema object sorted (their order carries no meaning, and the Python SDK reorders the top
    level), but the order of ``properties`` kept (it is the order a client shows arguments in)."""
    if isinstance(schema, dict):
        shaped = {
            key: [[name, schema_shape(item)] for name, item in value.items()]
            if key == "properties" and isinstance(value, dict)
            else schema_shape(value)
            for key, value in sorted(schema.items())
            if key != "description"
        }
        return shaped
    if isinstance(schema, list):
        return [schema_shape(item) for item in schema]
    return schema


# ------------------------------------------------------------------------------------------------------
# Driving one server
# ------------------------------------------------------------------------------------------------------


@attrs.frozen
class Side:
    """One server to compare: a label, the command that starts it, and whether it reads OXTAIL_HOME
    (the reference has no such variable: its state dir is always ``$HOME/.oxtail``)."""

    label: str
    command: Sequence[str]
    sets_oxtail_home: bool


def _environment(home: Path, side: Side) -> dict[str, str]:
    """A clean environment: no tmux server reachable, no agent host, no oxtail settings of the caller's."""
    keep = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "SYSTEMROOT"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env["HOME"] = str(home)
    tmux_tmpdir = home / "tmux"
    tmux_tmpdir.mkdir(mode=0o700, exist_ok=True)
    env["TMUX_TMPDIR"] = str(tmux_tmpdir)
    if side.sets_oxtail_home:
        env["OXTAIL_HOME"] = str(home / ".oxtail")
    return env


def _project(base: Path) -> Path:
    project = base / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    return project


def _raw(result: Any) -> dict[str, Any]:
    text = "".join(getattr(part, "text", "") for part in result.content)
    return {"is_error": bool(result.is_error), "text": text}


def _case_value(case: Case, raw: Mapping[str, Any], base: str) -> Any:
    """What is compared for one case (see :class:`Case`)."""
    text = raw["text"]
    if case.kind == "validation":
        prefix, found, issues = text.partition(": [")
        if found:
            try:
                return {"is_error": raw["is_error"], "prefix": prefix, "issues": json.loads("[" + issues)}
            except ValueError:
                pass
        return {"is_error": raw["is_error"], "text": text}
    if not raw["is_error"]:
        try:
            return {"is_error": False, "json": normalize(json.loads(text), base)}
        except ValueError:
            pass
    return {"is_error": raw["is_error"], "text": normalize(text, base)}


async def observe(side: Side, cases: Sequence[Case]) -> dict[str, Any]:
    """Everything :func:`compare` looks at, for one server: item name -> comparable value."""
    with tempfile.TemporaryDirectory(prefix=f"oxtail-compare-{side.label}-") as tmp:
        base = Path(tmp)
        home = base / "home"
        home.mkdir()
        params = StdioServerParameters(
            command=side.command[0],
            args=list(side.command[1:]),
            env=_environment(home, side),
            cwd=str(_project(base)),
        )
        seen: dict[str, Any] = {}
        errpath = base / "stderr.log"
        try:
            with open(errpath, "w") as errlog:
                async with (
                    stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    with anyio.fail_after(CALL_TIMEOUT_S):
                        init = await session.initialize()
                    seen["serverInfo"] = {"name": init.server_info.name, "version": init.server_info.version}
                    with anyio.fail_after(CALL_TIMEOUT_S):
                        tools = (await session.list_tools()).tools
                    seen["capabilities"] = init.capabilities.model_dump(mode="json", exclude_none=True)
                    seen["tools/list names"] = [tool.name for tool in tools]
                    for tool in tools:
                        seen[f"inputSchema {tool.name}"] = schema_shape(tool.input_schema)
                        extras = tool.model_dump(
                            mode="json", exclude_none=True, exclude={"name", "description", "input_schema"}
                        )
                        seen[f"tool fields {tool.name}"] = extras
                    for case in cases:
                        with anyio.fail_after(CALL_TIMEOUT_S):
                            raw = _raw(await session.call_tool(case.tool, dict(case.args)))
                        seen[f"case {case.name}"] = _case_value(case, raw, str(base))
        except Exception:
            tail = errpath.read_text(errors="replace")[-4000:] if errpath.exists() else ""
            print(f"--- {side.label} server failed; its stderr ends with:\n{tail}", file=sys.stderr)
            raise
        return seen


# ------------------------------------------------------------------------------------------------------
# Comparing
# ------------------------------------------------------------------------------------------------------


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, ensure_ascii=False).splitlines()


def _ordered(value: Any) -> Any:
    """``value`` with dict key order made visible (``==`` on dicts ignores it)."""
    if isinstance(value, dict):
        return [(key, _ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


@attrs.frozen
class Tally:
    same: int
    differ: int
    known: int


def compare(
    reference: Mapping[str, Any], ours: Mapping[str, Any], known: Mapping[str, str], show: bool = False
) -> Tally:
    """Print a diff (reference first) for every item that differs; ``known`` maps an item to the
    reason we differ on purpose."""
    same = differ = expected = 0
    for key in list(reference) + [key for key in ours if key not in reference]:
        reason = known.get(key, "")
        if key not in reference or key not in ours:
            differ += 1
            print(f"DIFF {key}: only in {'ours' if key not in reference else 'the reference'}")
            continue
        left, right = reference[key], ours[key]
        if _ordered(left) == _ordered(right):
            same += 1
            if reason:
                print(f"STALE {key}: listed as a known difference ({reason}) but now matches")
            elif show:
                print(f"same {key}: " + json.dumps(left, ensure_ascii=False))
            continue
        if reason:
            expected += 1
            print(f"KNOWN {key}: {reason}")
        else:
            differ += 1
            print(f"DIFF {key}")
        lines = list(difflib.unified_diff(_pretty(left), _pretty(right), "reference", "ours", lineterm=""))
        print("\n".join(lines) if lines else "  (same values, different key order)")
    return Tally(same, differ, expected)


def _without_our_tools(ours: dict[str, Any]) -> dict[str, Any]:
    """Our own tools (listed after the 14) are additions, not differences: set them aside, say so."""
    from oxtail_mcp.server.schemas import OUR_TOOLS

    mine = {tool.name for tool in OUR_TOOLS}
    names = ours.get("tools/list names", [])
    print("ours, not compared (additions listed after the 14): " + ", ".join(n for n in names if n in mine))
    kept = {key: value for key, value in ours.items() if key.split(" ")[-1] not in mine}
    kept["tools/list names"] = [name for name in names if name not in mine]
    return kept


def _reference_command(reference: Path) -> list[str]:
    server = reference / "dist" / "server.js"
    if not server.is_file():
        sys.exit(f"{server} is missing: build it (cd {reference} && npm ci --ignore-scripts && npx tsc)")
    return ["node", str(server)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="built reference checkout")
    parser.add_argument("--ours", default=DEFAULT_OURS, help="command that starts our server")
    parser.add_argument("--show", action="store_true", help="print matching items too")
    parser.add_argument("-k", dest="only", default="", help="run only the cases whose name contains this")
    options = parser.parse_args(argv)
    cases = tuple(case for case in CASES if options.only in case.name)
    reference_side = Side("reference", _reference_command(options.reference), sets_oxtail_home=False)
    ours_side = Side("ours", shlex.split(options.ours), sets_oxtail_home=True)

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        return await observe(reference_side, cases), await observe(ours_side, cases)

    reference, ours = anyio.run(both)
    ours = _without_our_tools(ours)
    known = {f"case {case.name}": case.known for case in cases if case.known}
    tally = compare(reference, ours, known, options.show)
    print(f"{tally.same} items match, {tally.differ} differ, {tally.known} differ on purpose (KNOWN)")
    return 1 if tally.differ else 0


if __name__ == "__main__":
    sys.exit(main())
