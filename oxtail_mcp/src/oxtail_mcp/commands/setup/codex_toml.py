"""Our entry in Codex CLI's ``config.toml`` (``[mcp_servers.oxtail]``), edited with tomlkit.

The file is the user's: comments, order and layout stay as they are. Our entry is found in any form
TOML allows (a ``[mcp_servers.oxtail]`` or ``[mcp_servers."oxtail"]`` table, dotted keys, an
inline table), because a second definition would make the whole file invalid and Codex would not
start. Every edit is checked with :mod:`tomllib`: the new text must parse to exactly the old value
plus our change, or nothing is written.

A new entry is appended at the end as ``print-config`` prints it (one blank line before it);
where that is not valid TOML (``mcp_servers`` is an inline table) it goes inside the existing
table instead. Our entry carries ``env_vars``: Codex gives an MCP server only
``HOME LANG PATH SHELL TERM``, and without the forwarded names a Codex agent's server would use
another state directory than its peers (see ``hooks.installer.CODEX_FORWARDED_ENV``).

Where: ``$CODEX_HOME/config.toml`` when that variable is set, else ``$HOME/.codex/config.toml``
(:func:`oxtail_mcp.home.codex_home`, the rule the hooks follow too).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import InlineTable

from oxtail_mcp.commands.setup import entry as ours
from oxtail_mcp.commands.setup.entry import NAME, Edit, foreign_refusal, is_ours, verdict
from oxtail_mcp.commands.setup.errors import SetupError
from oxtail_mcp.home import codex_home
from oxtail_mcp.hooks.installer import CODEX_FORWARDED_ENV, codex_config

SERVERS = "mcp_servers"


def path(env: Mapping[str, str]) -> Path:
    return codex_home(env) / "config.toml"


def entry(exe: str) -> dict[str, Any]:
    return {"command": exe, "env_vars": list(CODEX_FORWARDED_ENV)}


def _load(text: str) -> tuple[dict[str, Any], tomlkit.TOMLDocument]:
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"not valid TOML ({exc}); fix it, then re-run") from exc
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:  # valid TOML that tomlkit cannot edit: refuse rather than risk it
        raise SetupError(f"tomlkit cannot edit it safely ({exc})") from exc
    servers = value.get(SERVERS)
    if servers is not None and not isinstance(servers, dict):
        raise SetupError(f"{SERVERS!r} is not a table")
    return value, doc


def _parses_to(new: str, expected: dict[str, Any]) -> bool:
    try:
        return _without_empty_servers(tomllib.loads(new)) == _without_empty_servers(expected)
    except tomllib.TOMLDecodeError:
        return False


def _without_empty_servers(value: dict[str, Any]) -> dict[str, Any]:
    """An emptied ``mcp_servers`` and none at all mean the same to Codex (tomlkit drops an implicit one)."""
    return {k: v for k, v in value.items() if not (k == SERVERS and v == {})}


def _checked(new: str, expected: dict[str, Any]) -> str:
    if not _parses_to(new, expected):
        raise SetupError(f"cannot edit [{SERVERS}.{NAME}] in it without changing something else")
    return new


def _separator(text: str) -> str:
    """What goes between the file and an appended table so that exactly one blank line divides them."""
    if not text or text.endswith("\n\n"):
        return ""
    return "\n" if text.endswith("\n") else "\n\n"


def _added(text: str, doc: tomlkit.TOMLDocument, exe: str, expected: dict[str, Any]) -> str:
    """``text`` with our table appended (or, where that is not valid TOML, put inside ``mcp_servers``)."""
    appended = text + _separator(text) + codex_config(exe)
    if _parses_to(appended, expected) or SERVERS not in doc:
        return _checked(appended, expected)
    servers = doc[SERVERS]
    assert isinstance(servers, dict)
    item: Any = tomlkit.inline_table() if isinstance(servers, InlineTable) else tomlkit.table()
    item.update(entry(exe))
    servers[NAME] = item
    return _checked(tomlkit.dumps(doc), expected)


def register(text: str, exe: str, *, force: bool) -> Edit:
    value, doc = _load(text)
    current = (value.get(SERVERS) or {}).get(NAME)
    found = verdict(current, exe)
    env_vars = current.get("env_vars") if isinstance(current, dict) else None
    missing = [n for n in CODEX_FORWARDED_ENV if not isinstance(env_vars, list) or n not in env_vars]
    if found == "current" and not missing:
        return ours.ALREADY
    if found == "foreign" and not force:
        raise SetupError(foreign_refusal(f"[{SERVERS}.{NAME}]", current))
    expected = copy.deepcopy(value)
    if found in ("current", "stale"):  # point it here, forward what it lacks, keep the rest
        table = doc[SERVERS][NAME]
        assert isinstance(table, dict)
        table["command"] = exe
        if isinstance(env_vars, list):
            table["env_vars"].extend(missing)
        else:
            table["env_vars"] = list(CODEX_FORWARDED_ENV)
        kept = env_vars if isinstance(env_vars, list) else []
        expected[SERVERS][NAME].update(command=exe, env_vars=[*kept, *missing])
        return ours.repointed(_checked(tomlkit.dumps(doc), expected), exe)
    expected.setdefault(SERVERS, {})[NAME] = entry(exe)
    if found == "foreign":  # --force: take it out, then add ours as to a file without one
        del doc[SERVERS][NAME]
        text = _tidy(tomlkit.dumps(doc), text)
        return ours.replaced(_added(text, tomlkit.parse(text), exe, expected))
    return ours.registered(_added(text, doc, exe, expected))


def _tidy(new: str, old: str) -> str:
    """After taking a table off the end: drop the blank line that only separated it (tomlkit keeps it)."""
    if new.endswith("\n\n") and not old.endswith("\n\n"):
        return new.rstrip("\n") + "\n" if new.strip() else ""
    return new


def unregister(text: str) -> Edit:
    """Take our entry out, in whatever form it was written; a foreign one stays."""
    value, doc = _load(text)
    servers = value.get(SERVERS) or {}
    if NAME not in servers:
        return ours.NOT_REGISTERED
    if not is_ours(servers[NAME]):
        return Edit(None, f"[{SERVERS}.{NAME}] is not ours — left as it is")
    expected = copy.deepcopy(value)
    del expected[SERVERS][NAME]
    del doc[SERVERS][NAME]
    return ours.removed(_checked(_tidy(tomlkit.dumps(doc), text), expected))
