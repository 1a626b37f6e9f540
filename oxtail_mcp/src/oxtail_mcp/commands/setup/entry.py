"""What our MCP server entry is, how an existing ``oxtail`` entry is judged, and what a planned edit is.

Both clients key MCP servers by name, and ours is ``oxtail`` (the name the tools are called by:
``mcp__oxtail__<tool>``). An ``oxtail`` entry already there is judged by its command alone:

| the entry | verdict | setup | ``--uninstall`` |
|---|---|---|---|
| missing, ``null`` or ``false`` | ``absent`` | adds ours | nothing to do |
| runs this ``oxtail-mcp`` (same path) | ``current`` | nothing to change (*) | removes it |
| runs another ``oxtail-mcp`` (venv, bare name) | ``stale`` | points it here, keeps the rest | removes it |
| runs anything else (``npx -y oxtail@latest``) | ``foreign`` | refuses; ``--force`` replaces it | leaves it |

(*) Codex: unless its ``env_vars`` lacks a name we forward; those are added.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

import attrs

Verdict = Literal["absent", "current", "stale", "foreign"]

SCRIPT = "oxtail-mcp"
NAME = "oxtail"


def verdict(value: Any, exe: str) -> Verdict:
    if not value:
        return "absent"
    command = value.get("command") if isinstance(value, dict) else None
    if not isinstance(command, str) or PurePath(command).name != SCRIPT:
        return "foreign"
    return "current" if command == exe else "stale"


def is_ours(value: Any) -> bool:
    """An entry ``--uninstall`` takes out: one that runs some ``oxtail-mcp``."""
    return verdict(value, "") in ("current", "stale")


def foreign_refusal(where: str, value: Any) -> str:
    command = value.get("command") if isinstance(value, dict) else None
    args = value.get("args") if isinstance(value, dict) else None
    if isinstance(command, str) and isinstance(args, list):
        command = " ".join([command, *map(str, args)])
    runs = f"runs `{command}`" if isinstance(command, str) else f"is {value!r}"[:80]
    return (
        f"{where} already has an oxtail MCP entry that {runs}, not {SCRIPT}; re-run with --force to "
        "replace it (a backup is kept)"
    )


@attrs.frozen
class Edit:
    """A planned change of one config file: the new text (None: nothing to change) and what it does,
    said once done (``reason``) and before (``would``, for ``--dry-run``)."""

    new: str | None
    reason: str
    would: str = attrs.field()

    @would.default
    def _same(self) -> str:
        return self.reason


def registered(new: str) -> Edit:
    return Edit(new, "registered oxtail MCP", "would register oxtail MCP")


def repointed(new: str, exe: str) -> Edit:
    return Edit(new, f"pointed the oxtail MCP entry at {exe}", f"would point the oxtail MCP entry at {exe}")


def replaced(new: str) -> Edit:
    return Edit(
        new, "replaced the oxtail MCP entry (--force)", "would replace the oxtail MCP entry (--force)"
    )


def removed(new: str) -> Edit:
    return Edit(new, "removed oxtail MCP", "would remove oxtail MCP")


ALREADY = Edit(None, "already registered")
NOT_REGISTERED = Edit(None, "not registered")
