"""``oxtail-mcp install-hook`` / ``uninstall-hook`` / ``print-config``: wire oxtail into Claude Code.

The installer edits ``$CLAUDE_CONFIG_DIR/settings.json`` (``~/.claude/settings.json``),
a file people write by hand, by splicing new text into the original: every
other byte and formatting choice survives. Claude Code reads that file as
strict JSON and ignores the whole file when it has a comment or a trailing
comma (silently, in ``-p`` mode), so such a file is refused with that reason
unless ``--rewrite-strict`` asks for it to be rewritten as strict JSON (after a
backup); what we write is always strict JSON. One managed entry per event, found again on the
next run (ours, or the reference's ``oxtail/hooks/<asset>`` scripts) and
replaced in place; the ``_oxtailHook`` marker records what was installed so
a second run is a no-op. Writes are a timestamped backup, then temp + rename,
keeping the file's mode.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from oxtail_mcp.home import claude_config_dir, codex_home
from oxtail_mcp.hooks.jsonc import (
    JsoncError,
    Node,
    add_member,
    append_item,
    parse_jsonc,
    remove_item,
    remove_member,
    replace_node,
)

MARKER_KEY = "_oxtailHook"
MARKER_VERSION = 16
"""Bumped whenever what the hooks do changes, so a reinstall rewrites every older entry and marker.

| version | what |
|---|---|
| 8 | ours: ``oxtail-mcp hook <name>`` commands replace the reference's scripts |
| 15 | the envelope v14 of the reference 0.32.1 (which writes 14), delivery receipts |
| 16 | a fourth hook, ``sessionstart`` (the auto-join drop), in place of the reference's |

Above every version the reference wrote, so a marker of ours never reads as one of its installs."""

MANAGED = (
    ("pretooluse", "PreToolUse", "pretooluse.sh"),
    ("stop", "Stop", "stop.sh"),
    ("userpromptsubmit", "UserPromptSubmit", "userpromptsubmit.sh"),
    ("sessionstart", "SessionStart", "sessionstart.sh"),
)
"""(hook id, Claude Code event, the reference's script name) in install order. The reference
0.32.1's ``sessionstart.sh`` entry is found as ours and replaced in place, like the other three."""


class InstallError(Exception):
    """The settings file cannot be edited safely; nothing was written."""


# What is ours --------------------------------------
def hook_command(executable: str, hook_id: str) -> str:
    """The shell command Claude Code runs: our console script by absolute path."""
    quoted = shlex.quote(executable) if re.search(r'[$`"\\]', executable) else f'"{executable}"'
    return f"{quoted} hook {hook_id}"


def command_hash(command: str) -> str:
    return hashlib.sha256(command.encode("utf-8")).hexdigest()[:16]


def _is_oxtail_command(command: object, hook_id: str, asset: str) -> bool:
    if not isinstance(command, str):
        return False
    return f"oxtail/hooks/{asset}" in command or bool(
        re.search(rf"oxtail-mcp['\"]?\s+hook\s+{hook_id}\b", command)
    )


def find_entry(array: Node, hook_id: str, asset: str) -> int | None:
    """Index of the first element of an event array that runs an oxtail hook (ours or the reference's)."""
    for index, item in enumerate(array.items):
        value = item.plain()
        if not isinstance(value, dict) or not isinstance(value.get("hooks"), list):
            continue
        if any(
            isinstance(h, dict) and _is_oxtail_command(h.get("command"), hook_id, asset)
            for h in value["hooks"]
        ):
            return index
    return None


def _event_array(root: Node, event: str) -> Node | None:
    hooks = root.get("hooks")
    if hooks is None:
        return None
    if hooks.kind != "object":
        raise InstallError('"hooks" is not an object')
    array = hooks.get(event)
    if array is not None and array.kind != "array":
        raise InstallError(f'"hooks.{event}" is not an array')
    return array


def _root(text: str) -> Node:
    try:
        root = parse_jsonc(text)
    except JsoncError as exc:
        raise InstallError(str(exc)) from exc
    if root.kind != "object":
        raise InstallError("the settings file is not a JSON object")
    return root


def foreign_entries(root: Node) -> int:
    """Entries on our events that run some other command (for the coexistence note)."""
    count = 0
    for hook_id, event, asset in MANAGED:
        array = _event_array(root, event)
        if array is None:
            continue
        ours = find_entry(array, hook_id, asset)
        for index, item in enumerate(array.items):
            value = item.plain()
            hooks = value.get("hooks") if isinstance(value, dict) else None
            if index != ours and isinstance(hooks, list):
                commands = [h.get("command") for h in hooks if isinstance(h, dict)]
                count += any(isinstance(c, str) and "oxtail/hooks/" not in c for c in commands)
    return count


def up_to_date(root: Node, commands: Mapping[str, str]) -> bool:
    marker = root.get(MARKER_KEY)
    plain = marker.plain() if marker is not None else None
    if not isinstance(plain, dict) or plain.get("version") != MARKER_VERSION:
        return False
    hashes = plain.get("hashes")
    for hook_id, event, asset in MANAGED:
        array = _event_array(root, event)
        index = None if array is None else find_entry(array, hook_id, asset)
        if array is None or index is None or not isinstance(hashes, dict):
            return False
        if hashes.get(hook_id) != command_hash(commands[hook_id]):
            return False
        if array.items[index].plain() != _entry(commands[hook_id]):
            return False
    return True


def _entry(command: str) -> dict[str, Any]:
    return {"hooks": [{"type": "command", "command": command}]}


def installed_text(text: str, commands: Mapping[str, str], now: str) -> str:
    """``text`` with our entries and the marker in place; everything else byte for byte."""
    for hook_id, event, asset in MANAGED:
        root = _root(text)
        entry = _entry(commands[hook_id])
        hooks = root.get("hooks")
        if hooks is None:
            text = add_member(text, root, "hooks", {event: [entry]})
            continue
        array = _event_array(root, event)
        if array is None:
            text = add_member(text, hooks, event, [entry])
            continue
        index = find_entry(array, hook_id, asset)
        text = (
            replace_node(text, array.items[index], entry)
            if index is not None
            else append_item(text, array, entry)
        )
    marker = {
        "version": MARKER_VERSION,
        "installedAt": now,
        "hashes": {hook_id: command_hash(commands[hook_id]) for hook_id, _, _ in MANAGED},
    }
    root = _root(text)
    existing = root.get(MARKER_KEY)
    return (
        replace_node(text, existing, marker)
        if existing is not None
        else add_member(text, root, MARKER_KEY, marker)
    )


def uninstalled_text(text: str) -> str | None:
    """``text`` without our entries (one per event) and the marker; None if there was nothing of ours."""
    changed = False
    for hook_id, event, asset in MANAGED:
        root = _root(text)
        array = _event_array(root, event)
        index = None if array is None else find_entry(array, hook_id, asset)
        if array is not None and index is not None:
            text = remove_item(text, array, index)
            changed = True
    root = _root(text)
    if root.get(MARKER_KEY) is not None:
        text = remove_member(text, root, MARKER_KEY)
        changed = True
    return text if changed else None


# Files --------------------------------------
HINT_ABSENT = (
    "[oxtail] PreToolUse hook not installed — run `oxtail-mcp install-hook` "
    "to enable mid-turn peer messaging."
)


def hint_stale(ids: Sequence[str]) -> str:
    return (
        f"[oxtail] installed hooks are out of date ({', '.join(ids)} drifted from this version) — run "
        "`oxtail-mcp install-hook` to upgrade. A stale PreToolUse hook silently breaks correlated "
        "ask/reply by not surfacing request_id to the receiving peer."
    )


def freshness_hint(env: Mapping[str, str]) -> str | None:
    """What a starting server tells a Claude Code user about their hooks, if anything (never raises).

    Absent: no marker (or no settings). Stale: the marker's hashes are not those
    of the commands this installation would write (an older oxtail, or the
    reference's hooks). Anything unreadable or odd stays silent.
    """
    try:
        text, _ = _read(settings_path(env))
        if text is None or MARKER_KEY not in text:
            return HINT_ABSENT
        marker = _root(text).get(MARKER_KEY)
        plain = marker.plain() if marker is not None else None
        if not isinstance(plain, dict):
            return HINT_ABSENT
        recorded = plain.get("hashes")
        hashes: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
        exe = executable()
        drifted = [h for h, _, _ in MANAGED if hashes.get(h) != command_hash(hook_command(exe, h))]
        return hint_stale(drifted) if drifted else None
    except Exception:  # noqa: BLE001 - a hint must never disturb start-up
        return None


def settings_path(env: Mapping[str, str]) -> Path:
    return claude_config_dir(env) / "settings.json"


STRICT_JSON_REFUSAL = (
    "it has comments or trailing commas, and Claude Code ignores a settings.json that is not strict "
    "JSON (no hook in it would run). Remove them, or run `oxtail-mcp install-hook --rewrite-strict` "
    "to rewrite the file as strict JSON (a backup is kept)"
)


def is_strict_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def executable() -> str:
    """Absolute path of the ``oxtail-mcp`` console script that is running (or the venv's)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "oxtail-mcp" and argv0.exists():
        return os.path.abspath(argv0)
    return os.path.abspath(Path(sys.executable).with_name("oxtail-mcp"))


def _stamp(now: datetime.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _write_atomic(path: Path, text: str, mode: int | None) -> None:
    """Temp file + rename; through a symlink (dotfile managers) the link stays and its target changes."""
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.oxtail-tmp-{os.urandom(6).hex()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read(path: Path) -> tuple[str | None, int | None]:
    try:
        return path.read_text(encoding="utf-8"), path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"cannot read {path}: {exc}") from exc


def _backup(path: Path, text: str, mode: int | None, now: datetime.datetime, out: IO[str]) -> None:
    backup = path.with_name(f"{path.name}.oxtail-backup.{_stamp(now).replace(':', '-').replace('.', '-')}")
    _write_atomic(backup, text, mode)
    print(f"Backed up existing settings to {backup}", file=out)


def _diff(path: Path, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), f"{path} (new)")
    )


def install(
    path: Path,
    command_of: Callable[[str], str],
    *,
    dry_run: bool,
    out: IO[str],
    err: IO[str],
    now: datetime.datetime,
    rewrite_strict: bool = False,
) -> int:
    """Install or refresh our four hooks in ``path``; returns the exit status.

    A file that is JSONC but not JSON is refused (Claude Code would skip it
    whole), or with ``rewrite_strict`` rewritten as strict JSON first.
    """
    commands = {hook_id: command_of(hook_id) for hook_id, _, _ in MANAGED}
    try:
        original, mode = _read(path)
        text = original if original is not None and original.strip() else "{}\n"
        root = _root(text)
        if not is_strict_json(text):
            if not rewrite_strict:
                raise InstallError(STRICT_JSON_REFUSAL)
            text = json.dumps(root.plain(), indent=2, ensure_ascii=False) + "\n"
            root = _root(text)
        if up_to_date(root, commands):
            print(f"oxtail hooks already installed (v{MARKER_VERSION}). No changes.", file=out)
            return 0
        others = foreign_entries(root)
        new = installed_text(text, commands, _stamp(now))
        if not is_strict_json(new):  # never write what Claude Code could not read
            raise InstallError("the edited settings would not be strict JSON")
    except InstallError as exc:
        print(f"install-hook failed: {path}: {exc}. Nothing was changed.", file=err)
        return 1
    if dry_run:
        out.write(_diff(path, original or "", new))
        return 0
    if others:
        print(
            f"[oxtail] note: {others} other hook(s) already present on managed events. Multi-hook "
            "coexistence is supported but install order may matter.",
            file=err,
        )
    try:
        if original is not None:
            _backup(path, original, mode, now, out)
        _write_atomic(path, new, mode)
    except OSError as exc:
        print(f"install-hook failed: {exc}", file=err)
        return 1
    events = ", ".join(event for _, event, _ in MANAGED)
    print(f"Installed oxtail hooks ({events}) in {path}.", file=out)
    print("Reverse with: oxtail-mcp uninstall-hook", file=out)
    return 0


def uninstall(path: Path, *, dry_run: bool, out: IO[str], err: IO[str], now: datetime.datetime) -> int:
    """Remove our entries and marker from ``path``, leaving everything else; returns the exit status."""
    try:
        original, mode = _read(path)
        if original is None:
            print(f"No {path} — nothing to do.", file=out)
            return 0
        new = uninstalled_text(original)
    except InstallError as exc:
        print(f"uninstall-hook failed: {path}: {exc}. Nothing was changed.", file=err)
        return 1
    if new is None:
        print("oxtail hooks not installed — nothing to do.", file=out)
        return 0
    done = f"Removed oxtail hooks from {path}."
    return _replace(path, original, new, mode, dry_run=dry_run, out=out, err=err, now=now, done=done)


def _replace(
    path: Path,
    original: str,
    new: str,
    mode: int | None,
    *,
    dry_run: bool,
    out: IO[str],
    err: IO[str],
    now: datetime.datetime,
    done: str,
) -> int:
    """Show the diff (dry run) or back ``original`` up and write ``new``; returns the exit status."""
    if dry_run:
        out.write(_diff(path, original, new))
        return 0
    try:
        _backup(path, original, mode, now, out)
        _write_atomic(path, new, mode)
    except OSError as exc:
        print(f"could not edit {path}: {exc}", file=err)
        return 1
    print(done, file=out)
    return 0


CODEX_FORWARDED_ENV = (
    "OXTAIL_HOME",
    "TMUX",
    "TMUX_PANE",
    "MCP_TRACE_FILE",
    "OXTAIL_ACTIVITY_BUSY_TTL_MS",
    "OXTAIL_ASK_PEER_MAX_TIMEOUT_MS",
    "OXTAIL_ASK_PEER_TIMEOUT_MS",
    "OXTAIL_ASK_PEER_WAKE_STRATEGY",
    "OXTAIL_AUTOWAKE",
    "OXTAIL_AUTOWAKE_DEDUPE_TTL_MS",
    "OXTAIL_AUTOWAKE_FRESH_IDLE_MS",
    "OXTAIL_AUTOWAKE_MIN_INTERVAL_MS",
    "OXTAIL_GUARD",
    "OXTAIL_HOOK_MAX_BODY_CHARS",
    "OXTAIL_HOST_ID",
    "OXTAIL_OPERATOR_WAKE_THROTTLE_MS",
    "OXTAIL_OXPIT_ACTIVE_S",
    "OXTAIL_OXPIT_STALL_S",
    "OXTAIL_PENDING_ASK_TTL_MS",
    "OXTAIL_PENDING_WAKE_TTL_MS",
    "OXTAIL_READ_MAX_BODY_BYTES",
    "OXTAIL_READ_MAX_MESSAGES",
    "OXTAIL_RECEIVED_MAX",
    "OXTAIL_REDIS_PASSWORD_FILE",
    "OXTAIL_REDIS_PREFIX",
    "OXTAIL_REDIS_TEAM",
    "OXTAIL_RESERVATION_GRACE_MS",
    "OXTAIL_SELF_WAKE",
    "OXTAIL_SELF_WAKE_CAP",
    "OXTAIL_SELF_WAKE_GRACE_MS",
    "OXTAIL_SELF_WAKE_INTERVAL_MS",
    "OXTAIL_SELF_WAKE_THROTTLE_MS",
    "OXTAIL_STORE",
    "OXTAIL_STORE_ALLOW_EVICTION",
    "OXTAIL_UNSENT_RESTORE_MS",
    "OXTAIL_WAITER_HEAL_CAP",
    "OXTAIL_WAITER_HEAL_GRACE_MS",
    "OXTAIL_WAITER_HEAL_INTERVAL_MS",
    "OXTAIL_WAITER_HEAL_THROTTLE_MS",
    "OXTAIL_WAKE_DEBOUNCE_MS",
)
"""What Codex must pass through: it starts MCP servers with only HOME, LANG, PATH, SHELL and TERM.

Without these a Codex agent's server uses another state dir than its peers' and
wakes on the wrong tmux server. A test checks that every ``OXTAIL_*`` name the
code reads is here.
"""


def toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped, all else as is."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def codex_config(exe: str) -> str:
    """The ``[mcp_servers.oxtail]`` table for ``$CODEX_HOME/config.toml``."""
    forwarded = ", ".join(toml_string(name) for name in CODEX_FORWARDED_ENV)
    return f"[mcp_servers.oxtail]\ncommand = {toml_string(exe)}\nenv_vars = [{forwarded}]\n"


def print_config(exe: str, out: IO[str]) -> None:
    """The MCP server snippets for Claude Code and Codex, and a permission allowlist."""
    claude = {"mcpServers": {"oxtail": {"command": exe, "args": []}}}
    from oxtail_mcp.server.schemas import TOOLS

    allow = {"permissions": {"allow": [f"mcp__oxtail__{tool.name}" for tool in TOOLS]}}
    out.write(
        "# Claude Code: merge into ~/.claude.json (every project) or <project>/.mcp.json\n"
        f"{json.dumps(claude, indent=2)}\n"
        f"# (or: claude mcp add --scope user oxtail -- {shlex.quote(exe)})\n\n"
        "# Codex: add to ~/.codex/config.toml ($CODEX_HOME/config.toml); env_vars forwards what\n"
        "# Codex would otherwise strip from the server's environment\n"
        f"{codex_config(exe)}\n"
        "# Claude Code permissions without prompts (~/.claude/settings.json); drop read_session\n"
        "# if agents should not read each other's transcripts:\n"
        f"{json.dumps(allow, indent=2)}\n"
    )


def without_claude_copies(text: str) -> tuple[str, int]:
    """A Codex ``hooks.json`` without the Claude Code hooks of ours that Codex's import copied in."""
    removed = 0
    for hook_id, event, asset in MANAGED:
        while True:
            root = _root(text)
            array = _event_array(root, event)
            index = None if array is None else find_entry(array, hook_id, asset)
            if array is None or index is None:
                break
            text = remove_item(text, array, index)
            removed += 1
    return text, removed


def clean_codex_copies(
    path: Path, *, dry_run: bool, out: IO[str], err: IO[str], now: datetime.datetime
) -> int:
    """Take our Claude Code hooks out of Codex's ``hooks.json``; returns the exit status.

    Codex's "import from Claude Code" copies them verbatim. They are Claude Code
    hooks (a moved venv breaks them, nothing of ours updates them), so install
    and uninstall both remove them; a file we cannot edit safely is left as is.
    """
    try:
        original, mode = _read(path)
        if original is None:
            return 0
        new, removed = without_claude_copies(original)
    except InstallError as exc:
        print(f"note: {path} left as it is: {exc}", file=err)
        return 0
    if not removed:
        return 0
    done = (
        f"Removed {removed} oxtail Claude Code hook(s) that Codex had imported into {path} "
        "(Codex may ask you to trust your other hooks again in /hooks: trust is kept by position)."
    )
    return _replace(path, original, new, mode, dry_run=dry_run, out=out, err=err, now=now, done=done)


def main(command: str, args: Sequence[str], env: Mapping[str, str] = os.environ) -> int:
    """``install-hook [--dry-run] [--print-config] [--rewrite-strict] [--codex]``, ``uninstall-hook``,
    ``print-config``.

    ``uninstall-hook`` takes ``--dry-run`` and ``--codex`` too. ``--codex`` edits Codex's
    ``hooks.json`` (:mod:`oxtail_mcp.hooks.codex`) instead of Claude Code's settings.
    """
    exe = executable()
    unknown = [a for a in args if a not in ("--dry-run", "--print-config", "--rewrite-strict", "--codex")]
    if unknown:
        print(f"{command}: unknown argument {unknown[0]!r}", file=sys.stderr)
        return 2
    if command == "print-config" or "--print-config" in args:
        print_config(exe, sys.stdout)
        return 0
    now = datetime.datetime.now(datetime.UTC)
    path = settings_path(env)
    dry_run = "--dry-run" in args
    if "--codex" in args:
        return _codex_main(
            command, exe, env, dry_run=dry_run, rewrite_strict="--rewrite-strict" in args, now=now
        )
    if command == "uninstall-hook":
        status = uninstall(path, dry_run=dry_run, out=sys.stdout, err=sys.stderr, now=now)
    else:
        status = install(
            path,
            lambda hook_id: hook_command(exe, hook_id),
            dry_run=dry_run,
            out=sys.stdout,
            err=sys.stderr,
            now=now,
            rewrite_strict="--rewrite-strict" in args,
        )
    codex = codex_home(env) / "hooks.json"
    return max(status, clean_codex_copies(codex, dry_run=dry_run, out=sys.stdout, err=sys.stderr, now=now))


def _codex_main(
    command: str,
    exe: str,
    env: Mapping[str, str],
    *,
    dry_run: bool,
    rewrite_strict: bool,
    now: datetime.datetime,
) -> int:
    from oxtail_mcp.hooks import codex

    path = codex.hooks_path(env)
    if command == "uninstall-hook":
        return codex.uninstall(path, dry_run=dry_run, out=sys.stdout, err=sys.stderr, now=now)
    return codex.install(
        path,
        lambda hook_id: hook_command(exe, hook_id),
        mid_turn=codex.carries_mid_turn_context(codex.codex_version(env)),
        dry_run=dry_run,
        out=sys.stdout,
        err=sys.stderr,
        now=now,
        rewrite_strict=rewrite_strict,
    )
