"""The git guard: ``pre-commit`` and ``pre-push`` hooks that refuse to touch another session's files.

``oxtail-mcp guard install`` writes two small ``sh`` hooks into the repository's
hooks directory (``git rev-parse --git-path hooks``: the common git dir of every
worktree, or ``core.hooksPath``). Each one runs a hook that was there before
(kept as ``<name>.oxtail-chained``, given the same arguments and stdin, its
failure stops the commit), then ``python -m oxtail_mcp guard check <name>``.

The check (the rules are :mod:`oxtail_core.reservations`; this module only
gathers facts):

====================  ========================================================
fact                  how
====================  ========================================================
project               ``git rev-parse --show-toplevel``, canonical (a worktree
                      is a project of its own, like the MCP server's root)
touched paths         pre-commit: ``git diff --cached --name-status -z -M``;
                      pre-push: the same over the commits being pushed; a
                      rename touches both names; NUL-separated, never split
committing session    ``CLAUDE_CODE_SESSION_ID``, else ``CODEX_THREAD_ID`` /
                      ``CODEX_COMPANION_SESSION_ID``, else the nearest ancestor
                      process that is the agent (parent) of one live server;
                      unknown: every exclusive reservation applies
refused               a touched path covered by a standing *exclusive*
                      reservation of another session
====================  ========================================================

``--mode block`` refuses (exit 1) naming each path, holder, reason and expiry
and how to proceed; ``warn`` prints the same and lets the commit through.
``OXTAIL_GUARD=off`` skips the check for one command. A guard that cannot read
the reservations lets the commit through with one line saying why: a broken
state directory must not stop all work.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oxtail_fs import proctree
from oxtail_mcp.home import state_home

if TYPE_CHECKING:
    from oxtail_core.model import RegistryEntry
    from oxtail_core.reservations import Reservation
    from oxtail_fs.store import FsStore

HOOKS = ("pre-commit", "pre-push")
MODES = ("block", "warn")
MARKER = "# oxtail guard: managed by `oxtail-mcp guard`"
CHAINED = ".oxtail-chained"


class GuardError(Exception):
    """Bad input or an unusable repository: ``str()`` is the one line shown to the person."""


def git(cwd: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    """Run git; GuardError with git's own first line when it fails."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, input=input_bytes, capture_output=True, check=False, timeout=30
        )
    except FileNotFoundError as exc:
        raise GuardError("git is not installed (or not on PATH)") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuardError(f"cannot run git: {exc}") from exc
    if done.returncode != 0:
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["failed"])[0]
        raise GuardError(f"git {args[0]}: {first}")
    return done.stdout


def _repo(cwd: Path) -> Path:
    """``cwd``, checked to be inside a git repository (GuardError otherwise)."""
    if not cwd.is_dir():
        raise GuardError(f"not a directory: {cwd}")
    try:
        git(cwd, "rev-parse", "--git-dir")
    except GuardError as exc:
        raise GuardError(f"not inside a git repository: {cwd}") from exc
    return cwd


def hooks_dir(cwd: Path) -> Path:
    """Where git looks for hooks for ``cwd``'s repository (shared by all of its worktrees)."""
    out = git(_repo(cwd), "rev-parse", "--git-path", "hooks").decode("utf-8", "surrogateescape").strip()
    path = Path(out)
    return path if path.is_absolute() else (cwd / path).resolve()


def script(hook: str, mode: str, python: str = sys.executable) -> str:
    """The hook file's text: chain the previous hook, honor ``OXTAIL_GUARD=off``, run the check."""
    check = f"{shlex.quote(python)} -m oxtail_mcp guard check {hook} --mode {mode}"
    gone = shlex.quote(f"oxtail guard: {python} is gone (reinstall the guard); allowed")
    missing = f"[ -x {shlex.quote(python)} ] || {{ echo {gone} >&2; exit 0; }}"
    lines = [
        "#!/bin/sh",
        f"{MARKER} (mode {mode}); `oxtail-mcp guard uninstall` removes it.",
        "# Refuses to touch files another live session reserved exclusively (reserve_paths).",
        "# Bypass for one command: OXTAIL_GUARD=off git ...",
        f'chained="$(dirname "$0")/{hook}{CHAINED}"',
    ]
    if hook == "pre-push":  # stdin (the refs being pushed) goes to both
        lines += [
            "input=$(cat)",
            'if [ -x "$chained" ]; then printf \'%s\\n\' "$input" | "$chained" "$@" || exit $?; fi',
            '[ "$OXTAIL_GUARD" = off ] && exit 0',
            missing,
            f"printf '%s\\n' \"$input\" | {check}",
        ]
    else:
        lines += [
            'if [ -x "$chained" ]; then "$chained" "$@" || exit $?; fi',
            '[ "$OXTAIL_GUARD" = off ] && exit 0',
            missing,
            f"exec {check}",
        ]
    return "\n".join(lines) + "\n"


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False


def install(cwd: Path, mode: str) -> list[str]:
    """Install (or re-mode) both hooks; a foreign hook is kept and chained. Returns what was done."""
    if mode not in MODES:
        raise GuardError(f"unknown mode {mode!r} (block or warn)")
    directory = hooks_dir(cwd)
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for hook in HOOKS:
        path, chained = directory / hook, directory / f"{hook}{CHAINED}"
        if os.path.lexists(path) and not _ours(path):
            if os.path.lexists(chained):
                raise GuardError(f"{path} exists and so does {chained}: move one of them away first")
            os.replace(path, chained)
            done.append(f"kept your {hook} hook as {chained.name} (it runs first)")
        tmp = path.with_name(f".{hook}.oxtail-tmp")
        tmp.write_text(script(hook, mode), encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        done.append(f"installed {path} (mode {mode})")
    return done


def uninstall(cwd: Path) -> list[str]:
    """Remove our hooks and put chained ones back; a hook that is not ours is left alone."""
    directory = hooks_dir(cwd)
    done = []
    for hook in HOOKS:
        path, chained = directory / hook, directory / f"{hook}{CHAINED}"
        if not os.path.lexists(path):
            continue
        if not _ours(path):
            done.append(f"left {path} alone: not an oxtail guard hook")
            continue
        path.unlink()
        if os.path.lexists(chained):
            os.replace(chained, path)
            done.append(f"removed the guard; your {hook} hook is back in place")
        else:
            done.append(f"removed {path}")
    return done


# The check -----------------------------------------------------------------------------------------


def name_status(raw: bytes) -> list[str]:
    """Every path of ``--name-status -z`` output: status, then one path (two for renames and copies)."""
    fields = raw.split(b"\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        status = fields[i].decode("ascii", "replace").strip()
        if not status:
            i += 1
            continue
        count = 2 if status[:1] in ("R", "C") else 1
        for field in fields[i + 1 : i + 1 + count]:
            paths.append(os.fsdecode(field))
        i += 1 + count
    return paths


def staged_paths(cwd: Path) -> list[str]:
    return name_status(git(cwd, "diff", "--cached", "--name-status", "-z", "-M", "--no-color"))


def pushed_paths(cwd: Path, stdin: str) -> list[str]:
    """Paths changed by the commits a push sends (stdin: ``<local ref> <sha> <remote ref> <sha>``)."""
    paths: list[str] = []
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        local, remote = parts[1], parts[3]
        if set(local) == {"0"}:
            continue  # a deletion pushes no content
        if set(remote) != {"0"}:
            paths += name_status(git(cwd, "diff", "--name-status", "-z", "-M", remote, local))
            continue
        commits = git(cwd, "rev-list", local, "--not", "--remotes")  # a new branch: what no remote has
        if commits.strip():
            args = ("diff-tree", "--stdin", "--root", "-r", "--no-commit-id", "--name-status", "-z", "-M")
            paths += name_status(git(cwd, *args, input_bytes=commits))
    return paths


def committer(
    env: Mapping[str, str],
    pid: int,
    entries: Iterable[RegistryEntry],
    parent_of: Callable[[int], int | None] = proctree.ppid_of,
) -> str | None:
    """The session making this commit (the table of the module docstring), or None if unknown.

    The agent of a server is its parent process; the nearest ancestor of
    ``pid`` that is the agent of exactly one session is the committer. Only
    the parent counts: a process further up (a pane's shell, the tmux server)
    is above sessions it is not, and a person committing from another pane must
    not pass for the one session that happens to be live.
    """
    from oxtail_mcp.identity.client import claude_env_session_id, codex_env_session_id

    from_env = claude_env_session_id(env) or codex_env_session_id(env)
    if from_env:
        return from_env
    agents: dict[int, set[str]] = {}
    for entry in entries:
        parent = parent_of(entry.server_pid)
        if entry.session_id and parent is not None and parent > 1:
            agents.setdefault(parent, set()).add(entry.session_id)
    for ancestor in proctree.ancestry(pid, parent_of):
        sessions = agents.get(ancestor)
        if sessions:
            return next(iter(sessions)) if len(sessions) == 1 else None
    return None


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def report(hits: Sequence[tuple[str, Reservation]], mode: str) -> str:
    """What the person reads: each path and who holds it, then how to proceed."""
    head = "refused" if mode == "block" else "warning"
    lines = [f"oxtail guard ({head}): this touches files another session reserved exclusively:"]
    holders: dict[str, Reservation] = {}
    for path, r in hits:
        where = ", ".join(x for x in (f"tmux {r.holder_tmux}" if r.holder_tmux else "", r.client_type) if x)
        reason = f' -- "{r.reason}"' if r.reason else ""
        lines.append(
            f"  {path}: {r.pattern} held by session {r.holder_session_id} ({where}) "
            f"until {_when(r.expires_at)}{reason}"
        )
        holders[r.holder_session_id] = r
    who = ", ".join(holders)
    lines.append(
        f"To proceed: ask the holder ({who}) with send_message / ask_peer to release_paths, "
        "wait for the reservation to end, or bypass the guard for this command: OXTAIL_GUARD=off git ..."
    )
    return "\n".join(lines)


def check(
    hook: str,
    mode: str,
    cwd: Path,
    env: Mapping[str, str],
    stdin: str = "",
    *,
    pid: int | None = None,
) -> tuple[int, str]:
    """``(exit code, text for stderr)`` of one hook run."""
    if env.get("OXTAIL_GUARD", "").strip() == "off":
        return 0, ""
    if hook not in HOOKS or mode not in MODES:
        raise GuardError(f"unknown hook {hook!r} or mode {mode!r}")
    home = state_home(env)
    if not (home / "reservations").is_dir():
        return 0, ""  # nobody ever reserved anything here: no state directory is created for that
    # Only now the store and the rules: a commit where nobody reserved anything loads none of them.
    from oxtail_core.errors import StoreError
    from oxtail_core.reservations import blocking, grace_from_env
    from oxtail_core.reserving import standing_in
    from oxtail_fs.project import LocalHost, realpath_or_self
    from oxtail_fs.store import FsStore

    try:
        top = git(cwd, "rev-parse", "--show-toplevel").decode("utf-8", "surrogateescape").strip()
    except GuardError as exc:
        raise GuardError(f"not inside a git repository: {cwd}") from exc
    try:
        store = FsStore(home)
        now = int(time.time() * 1000)
        records = standing_in(store, LocalHost(), now, realpath_or_self(top), grace_from_env(env))
        if not any(r.exclusive for r in records):
            return 0, ""  # cheapest first: no git diff, no process walk when nothing can refuse
        me = committer(env, os.getpid() if pid is None else pid, _live(store))
    except StoreError as exc:
        return 0, f"oxtail guard: cannot read reservations ({exc}); allowed"
    paths = staged_paths(cwd) if hook == "pre-commit" else pushed_paths(cwd, stdin)
    hits = [(path, r) for path in dict.fromkeys(paths) for r in blocking(records, path, me)]
    if not hits:
        return 0, ""
    return (1 if mode == "block" else 0), report(hits, mode)


def _live(store: FsStore) -> list[RegistryEntry]:
    return [e for e in store.registry_entries() if proctree.is_alive(e.server_pid, e.process_start)]
