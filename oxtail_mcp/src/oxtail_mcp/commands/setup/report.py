"""What setup prints: the exact lines (docs/setup.md shows them), with color only for a person.

| line | when |
|---|---|
| ``oxtail-mcp setup`` (`` (dry-run — nothing will be written)``, `` --uninstall``) | first |
| ``  ✓ <client>  <file> — <what was done>`` then ``    backup: <path>`` | per MCP config file |
| ``  ~ <client>  <file> — would <do it>`` then the unified diff | per file a dry run would change |
| ``  – <client>  not found (…) — skipped`` | a client that is not present and was not asked for |
| the installers' own lines (``Installed oxtail hooks …``) | per hook file |
| ``  prerequisites:`` and ``    ✓|⚠ <name>  <detail>`` | setting up (not ``--uninstall``) |
| ``  ✓ nothing to change — …``, ``  ✓ ready — …``, ``  almost there — …``, ``  dry-run complete …`` | last |

Color (green ✓, yellow ~ ⚠, dim detail) only when stdout is a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

import attrs

from oxtail_mcp.home import user_home

LABEL_WIDTH = 13
CHECK_WIDTH = 12


@attrs.frozen
class Style:
    color: bool

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def ok(self, text: str) -> str:
        return self._paint("32", text)

    def warn(self, text: str) -> str:
        return self._paint("33", text)

    def dim(self, text: str) -> str:
        return self._paint("2", text)


def shown(path: Path, env: Mapping[str, str]) -> str:
    """``path`` with the home directory written ``~``."""
    home = user_home(env)
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def item(style: Style, mark: str, label: str, text: str) -> str:
    glyph = style.ok(mark) if mark == "✓" else style.warn(mark) if mark in "~⚠" else mark
    return f"  {glyph} {label.ljust(LABEL_WIDTH)}{text}"


def check(style: Style, ok: bool, name: str, detail: str) -> str:
    glyph = style.ok("✓") if ok else style.warn("⚠")
    return f"    {glyph} {name.ljust(CHECK_WIDTH)}{style.dim(detail) if ok else style.warn(detail)}"


def diff(path: Path, old: str, new: str) -> str:
    """A unified diff, as ``install-hook --dry-run`` prints it (a last line without newline gets one)."""
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), f"{path} (new)")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
