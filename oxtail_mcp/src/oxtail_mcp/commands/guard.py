"""The git guard: ``pre-commit`` and ``pre-push`` hooks that refuse to touch another session's files.

``oxtail-mcp guard install`` writes two small ``sh`` hooks into the repository's
hooks directory (``git rev-parse --git-path hooks``: the common git dir of every
worktree, or ``core.hooksPath``). Each one runs a hook that was there before
(kept as ``<name>.oxtail-chained``, given the same arguments and stdin, its
failure stops the commit), then the stdlib-only check of
:mod:`oxtail_mcp.commands.guardcheck` in ``python -S -E`` (:func:`check_argv`),
which hands anything but a plain read to the full check here
(``python -m oxtail_mcp guard check <name>``). Both answer the same: the git
commands (:mod:`~oxtail_mcp.commands.guardgit`), the committer walk and the
report text (:mod:`~oxtail_mcp.commands.guardcheck`) are defined once, there.

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

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import oxtail_core
import oxtail_fs
import oxtail_mcp
from oxtail_fs.host import proctree
from oxtail_mcp import storage
from oxtail_mcp.commands.guardcheck import HOOKS, MODES, committer_among, full_check_argv, report
from oxtail_mcp.commands.guardgit import GuardError, git, name_status, pushed_paths, staged_paths, toplevel
from oxtail_mcp.home import state_home

if TYPE_CHECKING:
    from oxtail_core.model import RegistryEntry
    from oxtail_core.protocols import Store

__all__ = ["HOOKS", "MODES", "GuardError", "check", "committer", "install", "name_status", "uninstall"]

MARKER = "# oxtail guard: managed by `oxtail-mcp guard`"
CHAINED = ".oxtail-chained"


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


def source_roots() -> list[str]:
    """The directories holding the three packages (one ``src`` each in an editable install, one
    site-packages otherwise): all the fast check's ``sys.path`` needs besides the standard library."""
    roots = (Path(m.__file__ or "").resolve().parents[1] for m in (oxtail_mcp, oxtail_core, oxtail_fs))
    return list(dict.fromkeys(str(r) for r in roots))


def check_argv(hook: str, mode: str, python: str = sys.executable) -> list[str]:
    """The check a hook runs: :mod:`~oxtail_mcp.commands.guardcheck` in ``python -S -E``.

    ``-S`` skips the site-packages scan and ``-E`` the ``PYTHON*`` variables (a third of a bare
    start-up); ``sys.path`` becomes our source roots and the standard library, without the
    repository's own directory (``-c`` would put it first, and a repository's ``subprocess.py``
    must not run). If the roots are gone (the packages moved), the full check runs instead.
    """
    bootstrap = "\n".join(
        [
            "import sys",
            f"sys.path[:] = [*{json.dumps(source_roots())}, *(p for p in sys.path if p)]",
            "try:",
            "    from oxtail_mcp.commands.guardcheck import main",
            "except ImportError:",
            "    import os",
            f"    os.execv(sys.executable, {json.dumps(full_check_argv(hook, mode, python))})",
            "sys.exit(main())",
        ]
    )
    return [python, "-S", "-E", "-c", bootstrap, hook, "--mode", mode]


def script(hook: str, mode: str, python: str = sys.executable) -> str:
    """The hook file's text: chain the previous hook, honor ``OXTAIL_GUARD=off``, run the check."""
    check = shlex.join(check_argv(hook, mode, python))
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


def committer(
    env: Mapping[str, str],
    pid: int,
    entries: Iterable[RegistryEntry],
    parent_of: Callable[[int], int | None] = proctree.ppid_of,
) -> str | None:
    """The session making this commit among ``entries`` (the table of the module docstring), or
    None if unknown: :func:`~oxtail_mcp.commands.guardcheck.committer_among` over their servers."""
    return committer_among(env, pid, [(e.server_pid, e.session_id) for e in entries], parent_of)


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
    if not (home / "reservations").is_dir() and not storage.names_shared_store(env):
        return 0, ""  # nobody ever reserved anything here: no state directory is created for that
    # Only now the store and the rules: a commit where nobody reserved anything loads none of them.
    from oxtail_core.errors import StoreError
    from oxtail_core.reservations import blocking, grace_from_env
    from oxtail_core.reserving import standing_in
    from oxtail_fs.host.project import LocalHost

    project = toplevel(cwd)
    try:
        store = storage.open_store(env)
        now = int(time.time() * 1000)
        records = standing_in(store, LocalHost(), now, project, grace_from_env(env))
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


def _live(store: Store) -> list[RegistryEntry]:
    return [e for e in store.registry_entries() if proctree.is_alive(e.server_pid, e.process_start)]
