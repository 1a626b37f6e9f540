"""``install-hook --codex``: our hooks in Codex CLI's ``$CODEX_HOME/hooks.json``, and whether Codex runs them.

Codex 0.171.0 runs command hooks with Claude Code's three-level shape and
stdin/stdout contract (selfheal §9, verified against the real CLI: see
docs/hooks.md). What differs, and what this module does about it:

* Strict JSON with only ``description`` and ``hooks`` at the root, or Codex
  ignores the whole file: no marker in it; a non-strict file is refused (or
  rewritten with ``--rewrite-strict``).
* A hook runs only once the user trusts it (``/hooks``); trust is keyed by
  position and hashed over the definition: our entries are appended once, never
  moved, never rewritten while unchanged; the installer, ``status`` and
  ``diagnose`` say when trust is missing.
* Mid-turn ``additionalContext`` reaches the model only on newer builds: below
  :data:`MID_TURN_MIN_VERSION` (or with no ``codex`` found) PreToolUse and
  UserPromptSubmit get ``codex-busy`` (markers, no drain); Stop still delivers.
* ``additionalContext`` is cut to 2,500 tokens: a smaller default budget
  (``render.CODEX_MAX_BODY_CHARS``).
* Codex's import of Claude Code settings copies our Claude hooks here: the same
  edit takes them out.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from oxtail_mcp.home import codex_home, state_home
from oxtail_mcp.hooks import installer
from oxtail_mcp.hooks.hook import CODEX_FIRED
from oxtail_mcp.hooks.installer import InstallError
from oxtail_mcp.hooks.jsonc import Node, add_member, append_item, remove_item, replace_node

HOOKS_FILE = "hooks.json"
TIMEOUT_S = 10
"""Codex's default is 600 s and turn-scoped hooks block the turn: ours take milliseconds."""
MID_TURN_MIN_VERSION = (0, 171, 0)
"""The oldest Codex we verified to carry PreToolUse and UserPromptSubmit ``additionalContext``: its
closed output schemas have the field and it never answers "this event cannot emit additionalContext"
for them."""

MANAGED = (
    ("SessionStart", "session_start", "codex-sessionstart", "codex-sessionstart"),
    ("UserPromptSubmit", "user_prompt_submit", "codex-userpromptsubmit", "codex-busy"),
    ("PreToolUse", "pre_tool_use", "codex-pretooluse", "codex-busy"),
    ("Stop", "stop", "codex-stop", "codex-stop"),
)
"""(Codex event, its name in trust keys, hook id, hook id for a Codex without mid-turn context)."""

TRUST_HINT = (
    "Codex runs a hook only after you trust it: start codex, open /hooks and trust the oxtail hooks "
    "(once; until then Codex skips them without a word and this agent stays hookless)."
)
_OURS = re.compile(r"oxtail-mcp['\"]?\s+hook\s+codex-[a-z]+\b")


def hooks_path(env: Mapping[str, str] = os.environ) -> Path:
    return codex_home(env) / HOOKS_FILE


def codex_version(env: Mapping[str, str] = os.environ) -> tuple[int, ...] | None:
    """``codex --version`` of the ``codex`` on ``PATH`` (e.g. ``(0, 171, 0)``), or None if none answers."""
    exe = shutil.which("codex", path=env.get("PATH"))
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=20, check=False, env=dict(env)
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", done.stdout)
    return tuple(int(part) for part in match.groups()) if done.returncode == 0 and match else None


def carries_mid_turn_context(version: tuple[int, ...] | None) -> bool:
    return version is not None and version >= MID_TURN_MIN_VERSION


def hook_ids(mid_turn: bool) -> dict[str, str]:
    """Codex event → the hook id installed for it."""
    return {event: full if mid_turn else reduced for event, _, full, reduced in MANAGED}


def _entry(command: str) -> dict[str, Any]:
    return {"hooks": [{"type": "command", "command": command, "timeout": TIMEOUT_S}]}


def find_ours(array: Node) -> int | None:
    """Index of the first group of an event array that runs one of our Codex hooks."""
    for index, item in enumerate(array.items):
        value = item.plain()
        hooks = value.get("hooks") if isinstance(value, dict) else None
        if isinstance(hooks, list) and any(
            isinstance(h, dict) and isinstance(h.get("command"), str) and _OURS.search(h["command"])
            for h in hooks
        ):
            return index
    return None


def installed_text(text: str, commands: Mapping[str, str]) -> str:
    """``text`` with one entry of ours per event (replaced in place if it differs) and no Claude copies."""
    text, _ = installer.without_claude_copies(text)
    for event, command in commands.items():
        root = installer._root(text)
        entry = _entry(command)
        hooks = root.get("hooks")
        if hooks is None:
            text = add_member(text, root, "hooks", {event: [entry]})
            continue
        array = installer._event_array(root, event)
        if array is None:
            text = add_member(text, hooks, event, [entry])
            continue
        index = find_ours(array)
        if index is None:
            text = append_item(text, array, entry)
        elif array.items[index].plain() != entry:
            text = replace_node(text, array.items[index], entry)
    return text


def uninstalled_text(text: str) -> str | None:
    """``text`` without any group of ours (nor Claude copies); None if there was nothing to take out."""
    text, removed = installer.without_claude_copies(text)
    for event, _, _, _ in MANAGED:
        while True:
            array = installer._event_array(installer._root(text), event)
            index = None if array is None else find_ours(array)
            if array is None or index is None:
                break
            text = remove_item(text, array, index)
            removed += 1
    return text if removed else None


STRICT_REFUSAL = (
    "it has comments or trailing commas, and Codex ignores a hooks.json that is not strict JSON "
    "(no hook in it would run). Remove them, or run `oxtail-mcp install-hook --codex --rewrite-strict`"
)


def install(
    path: Path,
    command_of: Callable[[str], str],
    *,
    mid_turn: bool,
    dry_run: bool,
    out: IO[str],
    err: IO[str],
    now: datetime.datetime,
    rewrite_strict: bool = False,
) -> int:
    """Install or refresh our Codex hooks in ``path``; returns the exit status."""
    commands = {event: command_of(hook_id) for event, hook_id in hook_ids(mid_turn).items()}
    try:
        original, mode = installer._read(path)
        text = original if original is not None and original.strip() else "{}\n"
        root = installer._root(text)
        if not installer.is_strict_json(text):
            if not rewrite_strict:
                raise InstallError(STRICT_REFUSAL)
            text = json.dumps(root.plain(), indent=2, ensure_ascii=False) + "\n"
        new = installed_text(text, commands)
        if not installer.is_strict_json(new):
            raise InstallError("the edited hooks.json would not be strict JSON")
    except InstallError as exc:
        print(f"install-hook --codex failed: {path}: {exc}. Nothing was changed.", file=err)
        return 1
    extra = sorted(set(json.loads(new)) - {"description", "hooks"})
    if extra:
        print(
            f"[oxtail] note: Codex rejects {path} whole while it has the top-level key(s) {extra}.", file=err
        )
    if inline_hook_events(codex_home_of(path)):
        print(
            f"[oxtail] note: {codex_home_of(path) / 'config.toml'} defines hooks inline too; Codex loads "
            "both but warns to keep one representation per layer.",
            file=err,
        )
    if not mid_turn:
        print(
            "[oxtail] note: no Codex known to pass hook context mid-turn was found (0.171.0 or newer "
            "on PATH): PreToolUse and UserPromptSubmit only keep the busy marker, mail arrives at turn end "
            "(Stop). Re-run `oxtail-mcp install-hook --codex` after upgrading Codex.",
            file=err,
        )
    if new == original:
        print(f"oxtail Codex hooks already installed in {path}. No changes.", file=out)
        if not trusted(path, codex_home_of(path)).get("all"):
            print(TRUST_HINT, file=out)
        return 0
    if dry_run:
        out.write(installer._diff(path, original or "", new))
        return 0
    try:
        if original is not None:
            installer._backup(path, original, mode, now, out)
        installer._write_atomic(path, new, mode)
    except OSError as exc:
        print(f"install-hook --codex failed: {exc}", file=err)
        return 1
    print(f"Installed oxtail Codex hooks ({', '.join(commands)}) in {path}.", file=out)
    print(TRUST_HINT, file=out)
    print("Reverse with: oxtail-mcp uninstall-hook --codex", file=out)
    return 0


def uninstall(path: Path, *, dry_run: bool, out: IO[str], err: IO[str], now: datetime.datetime) -> int:
    """Take every hook of ours (and Codex's copies of our Claude Code hooks) out of ``path``."""
    try:
        original, mode = installer._read(path)
        new = None if original is None else uninstalled_text(original)
    except InstallError as exc:
        print(f"uninstall-hook --codex failed: {path}: {exc}. Nothing was changed.", file=err)
        return 1
    if original is None or new is None:
        print(f"oxtail Codex hooks not installed in {path} — nothing to do.", file=out)
        return 0
    done = f"Removed oxtail hooks from {path}."
    return installer._replace(
        path, original, new, mode, dry_run=dry_run, out=out, err=err, now=now, done=done
    )


# Does Codex run them? ------------------------------------------------------------------------------
def codex_home_of(path: Path) -> Path:
    return path.parent


def _trust_keys(path: Path) -> dict[str, list[str]]:
    """Codex event → the trust keys (``<hooks.json>:<event>:<group>:<handler>``) of our groups in ``path``."""
    try:
        root = installer._root(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, InstallError):
        return {}
    keys: dict[str, list[str]] = {}
    for event, snake, _, _ in MANAGED:
        try:
            array = installer._event_array(root, event)
        except InstallError:
            continue
        index = None if array is None else find_ours(array)
        if array is not None and index is not None:
            handlers = array.items[index].plain().get("hooks", [])
            keys[event] = [f"{path}:{snake}:{index}:{h}" for h in range(len(handlers))]
    return keys


def _config(home: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def inline_hook_events(home: Path) -> list[str]:
    """Hook events defined as ``[[hooks.<Event>]]`` tables in ``<home>/config.toml`` (``state`` is trust)."""
    hooks = _config(home).get("hooks")
    return sorted(key for key in hooks if key != "state") if isinstance(hooks, dict) else []


def trusted(path: Path, home: Path) -> dict[str, bool]:
    """Which of our installed events have a trust record in ``<home>/config.toml`` (and ``all``).

    A record says the user trusted a definition at that position; one edited
    since reads "modified" in Codex's ``/hooks`` and does not run: Codex hashes
    the definition in a way we do not reproduce, so this cannot tell the two
    apart (the ``codex-fired`` stamp can).
    """
    keys = _trust_keys(path)
    hooks = _config(home).get("hooks")
    state = hooks.get("state") if isinstance(hooks, dict) else None
    state = state if isinstance(state, dict) else {}

    real = os.path.realpath(path)

    def has_record(key: str) -> bool:  # under the path as we name it, or as Codex may resolve it
        records = (state.get(key), state.get(key.replace(str(path), real, 1)))
        return any(isinstance(r, dict) and isinstance(r.get("trusted_hash"), str) for r in records)

    out = {event: bool(ks) and all(has_record(k) for k in ks) for event, ks in keys.items()}
    out["all"] = bool(keys) and all(out.values())
    return out


def last_fired_ms(env: Mapping[str, str] = os.environ) -> int | None:
    """When a Codex hook of ours last ran (the ``codex-fired`` stamp), or None if never."""
    try:
        return int(os.stat(state_home(env).joinpath(*CODEX_FIRED)).st_mtime * 1000)
    except OSError:
        return None


def hint(env: Mapping[str, str] = os.environ) -> str | None:
    """One line for ``status`` / ``diagnose`` when our Codex hooks are installed but may not run."""
    try:
        path = hooks_path(env)
        if not path.exists() or not _trust_keys(path):
            return None
        trust = trusted(path, codex_home(env))
        fired = last_fired_ms(env)
        if not trust.get("all"):
            missing = ", ".join(event for event, ok in trust.items() if event != "all" and not ok)
            return f"[oxtail] Codex hooks in {path} are not trusted yet ({missing}). {TRUST_HINT}"
        if fired is None:
            return (
                f"[oxtail] Codex hooks in {path} are trusted but have never run: a hook changed since you "
                "trusted it does not run either (open /hooks in codex and re-trust it), and hooks need "
                "`[features] hooks` on (the default)."
            )
    except Exception:  # noqa: BLE001 - a hint must never break status or diagnose
        return None
    return None
