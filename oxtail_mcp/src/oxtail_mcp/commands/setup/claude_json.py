"""Our entry in Claude Code's ``~/.claude.json`` (``mcpServers.oxtail``), spliced into the text.

Claude Code keeps its whole state in that file (projects, history, account) and writes it as
strict JSON: a file that does not parse as JSON is refused, never repaired. The edit is a splice
(:mod:`oxtail_mcp.hooks.jsonc`) so every other byte stays, and it is checked: the edited text must
parse to exactly the old value plus our change, or nothing is written.

Where: ``$CLAUDE_CONFIG_DIR/.claude.json`` when that variable is set (Claude Code keeps it there
then), else ``$HOME/.claude.json``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oxtail_mcp.commands.setup import entry as ours
from oxtail_mcp.commands.setup.entry import NAME, Edit, foreign_refusal, is_ours, verdict
from oxtail_mcp.commands.setup.errors import SetupError
from oxtail_mcp.home import user_home
from oxtail_mcp.hooks.jsonc import Node, add_member, parse_jsonc, remove_member, replace_node

SERVERS = "mcpServers"
EMPTY = "{}\n"


def path(env: Mapping[str, str]) -> Path:
    override = env.get("CLAUDE_CONFIG_DIR", "").strip()
    return (Path(override).expanduser() if override else user_home(env)) / ".claude.json"


def entry(exe: str) -> dict[str, Any]:
    """What ``print-config`` prints for Claude Code."""
    return {"command": exe, "args": []}


def _load(text: str) -> tuple[str, dict[str, Any], Node]:
    """The text (a blank file reads as ``{}``), its value and its spans; refuses anything but an object."""
    if not text.strip():
        text = EMPTY
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SetupError(f"not valid JSON ({exc}); fix it or move it away, then re-run") from exc
    if not isinstance(value, dict):
        raise SetupError("not a JSON object")
    servers = value.get(SERVERS)
    if servers is not None and not isinstance(servers, dict):
        raise SetupError(f'"{SERVERS}" is not an object')
    return text, value, parse_jsonc(text)


def _checked(new: str, expected: dict[str, Any]) -> str:
    """``new``, if it parses to ``expected`` (a duplicate key could make a splice miss its mark)."""
    try:
        ok = json.loads(new) == expected
    except ValueError:
        ok = False
    if not ok:
        raise SetupError(f"cannot edit it without touching other keys (a duplicate {SERVERS!r} key?)")
    return new


def register(text: str, exe: str, *, force: bool) -> Edit:
    text, value, root = _load(text)
    servers = value.get(SERVERS) or {}
    current = servers.get(NAME)
    found = verdict(current, exe)
    expected = copy.deepcopy(value)
    if found == "current":
        return ours.ALREADY
    if found == "foreign" and not force:
        raise SetupError(foreign_refusal(f'"{SERVERS}.{NAME}"', current))
    servers_node = root.get(SERVERS)
    oxtail_node = servers_node.get(NAME) if servers_node is not None else None
    if found == "stale":
        command_node = oxtail_node.get("command") if oxtail_node is not None else None
        assert command_node is not None  # a stale entry is an object with a command
        expected[SERVERS][NAME]["command"] = exe
        new = replace_node(text, command_node, exe)
        return ours.repointed(_checked(new, expected), exe)
    if expected.get(SERVERS) is None:
        expected[SERVERS] = {}
    expected[SERVERS][NAME] = entry(exe)
    if oxtail_node is not None:  # null, false, or a foreign entry under --force
        new = replace_node(text, oxtail_node, entry(exe))
        return (ours.replaced if found == "foreign" else ours.registered)(_checked(new, expected))
    if servers_node is not None and value[SERVERS] is not None:
        new = add_member(text, servers_node, NAME, entry(exe))
    elif servers_node is not None:  # "mcpServers": null
        new = replace_node(text, servers_node, {NAME: entry(exe)})
    else:
        new = add_member(text, root, SERVERS, {NAME: entry(exe)})
    return ours.registered(_checked(new, expected))


def unregister(text: str) -> Edit:
    """Take our entry out (and ``mcpServers`` with it if that leaves it empty); a foreign one stays."""
    if not text.strip():
        return ours.NOT_REGISTERED
    text, value, root = _load(text)
    servers = value.get(SERVERS) or {}
    current = servers.get(NAME)
    if NAME not in servers:
        return ours.NOT_REGISTERED
    if not is_ours(current):
        return Edit(None, f'"{SERVERS}.{NAME}" is not ours — left as it is')
    servers_node = root.get(SERVERS)
    assert servers_node is not None
    expected = copy.deepcopy(value)
    del expected[SERVERS][NAME]
    new = remove_member(text, servers_node, NAME)
    if not expected[SERVERS]:
        del expected[SERVERS]
        new = remove_member(new, parse_jsonc(new), SERVERS)
    return ours.removed(_checked(new, expected))
