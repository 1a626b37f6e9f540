"""The git guard's check on the standard library alone: what every guarded commit and push runs.

The installed hooks start ``python -S -E`` (no site-packages scan, no
``PYTHON*`` variables) with only oxtail's own source directories on
``sys.path`` and call :func:`main`. Importing the store, attrs, cattrs and the
CLI would cost a commit over a hundred milliseconds; the check reads the
reservation file and the registry directly (:mod:`~oxtail_mcp.commands.guardstate`)
and runs git through ``posix_spawn`` (:mod:`~oxtail_mcp.commands.guardgit`).

The rules are the core's (:func:`oxtail_core.reservations.standing`,
:func:`~oxtail_core.reservations.blocking`); the matcher is the core's own
stdlib-only :mod:`oxtail_core.wildmatch`. The fast path never writes. It hands
the whole run to the full check (``python -m oxtail_mcp guard check``, which
reads and sweeps through the store under its lock) whenever the answer is not
a plain read:

=====================================================  =========================================
seen                                                   then
=====================================================  =========================================
``OXTAIL_GUARD=off``, or no ``reservations/`` dir      allowed, nothing read
no reservation file for this project                   allowed
every record well-formed, no liveness change due       decided here (TTL-ended records skipped)
a holder without a live server and no orphan clock,    the full check: it starts, clears or acts
a live holder with one, an abandoned record            on the orphan clock under the lock
a file that is not a small regular file, bad JSON or   the full check (it refuses or skips it
a malformed record; a reference ``sessions/`` entry    and says so in its own words)
anything unexpected (a bug here)                       the full check
=====================================================  =========================================

A TTL-ended record stays in the file until a server's next step removes it:
it can never stand again, so skipping it is the same answer without a write.
"""

from __future__ import annotations

import os
import sys
import time

from oxtail_core.naming import canonical_session_id
from oxtail_fs.store.names import RESERVATIONS, state_dir
from oxtail_mcp.commands.guardgit import GuardError, pushed_paths, staged_paths, toplevel
from oxtail_mcp.commands.guardstate import (
    ancestry,
    grace_from_env,
    is_alive,
    ppid_of,
    read_reservations,
    registry_servers,
    standing_records,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the check imports nothing it does not use
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Protocol

    class Holding(Protocol):
        """What a report reads of a reservation (a core ``Reservation`` or a guardstate ``Held``)."""

        @property
        def pattern(self) -> str: ...
        @property
        def holder_session_id(self) -> str: ...
        @property
        def holder_tmux(self) -> str | None: ...
        @property
        def client_type(self) -> str: ...
        @property
        def reason(self) -> str | None: ...
        @property
        def expires_at(self) -> int: ...


HOOKS = ("pre-commit", "pre-push")
MODES = ("block", "warn")


# The committer and the report ------------------------------------------------------------------
def env_session(env: Mapping[str, str]) -> str | None:
    """Same rule as ``claude_env_session_id(env) or codex_env_session_id(env)`` (identity.client)."""
    for name in ("CLAUDE_CODE_SESSION_ID", "CODEX_THREAD_ID", "CODEX_COMPANION_SESSION_ID"):
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def committer_among(
    env: Mapping[str, str],
    pid: int,
    servers: Iterable[tuple[int, str | None]],
    parent_of: Callable[[int], int | None],
) -> str | None:
    """The session making this commit, or None if unknown (``servers``: live ``(pid, session)``).

    The agent of a server is its parent process; the nearest ancestor of
    ``pid`` that is the agent of exactly one session is the committer. Only
    the parent counts: a process further up (a pane's shell, the tmux server)
    is above sessions it is not, and a person committing from another pane must
    not pass for the one session that happens to be live.
    """
    from_env = env_session(env)
    if from_env:
        return from_env
    agents: dict[int, set[str]] = {}
    for server_pid, session in servers:
        parent = parent_of(server_pid)
        if session and parent is not None and parent > 1:
            agents.setdefault(parent, set()).add(session)
    for ancestor in ancestry(pid, parent_of):
        sessions = agents.get(ancestor)
        if sessions:
            return next(iter(sessions)) if len(sessions) == 1 else None
    return None


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def report(hits: Sequence[tuple[str, Holding]], mode: str) -> str:
    """What the person reads: each path and who holds it, then how to proceed."""
    head = "refused" if mode == "block" else "warning"
    lines = [f"oxtail guard ({head}): this touches files another session reserved exclusively:"]
    holders: dict[str, Holding] = {}
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


def same_holder(a: str, b: str | None) -> bool:
    """Same rule as :func:`oxtail_core.ids.same_session_id`."""
    return bool(a) and bool(b) and canonical_session_id(a) == canonical_session_id(b or "")


# The check -------------------------------------------------------------------------------------
def fast_check(
    hook: str, mode: str, cwd: str, env: Mapping[str, str], stdin: str = "", *, pid: int | None = None
) -> tuple[int, str]:
    """``(exit code, text for stderr)`` of one hook run, the same as ``guard.check``'s; raises
    Delegate when only the full check can tell (the table of the module docstring)."""
    from oxtail_core.wildmatch import matches

    if env.get("OXTAIL_GUARD", "").strip() == "off":
        return 0, ""
    if hook not in HOOKS or mode not in MODES:
        raise GuardError(f"unknown hook {hook!r} or mode {mode!r}")
    home = state_dir(env)
    if not os.path.isdir(os.path.join(home, RESERVATIONS)):
        return 0, ""  # nobody ever reserved anything here
    records = read_reservations(home, toplevel(cwd))
    if not records:
        return 0, ""
    now = int(time.time() * 1000)
    servers = [(p, s) for p, start, s in registry_servers(home) if is_alive(p, start)]
    live = frozenset(canonical_session_id(s) for _, s in servers)
    exclusive = [r for r in standing_records(records, now, live, grace_from_env(env)) if r.exclusive]
    if not exclusive:
        return 0, ""  # cheapest first: no git diff, no process walk when nothing can refuse
    paths = staged_paths(cwd) if hook == "pre-commit" else pushed_paths(cwd, stdin)
    hits = [(path, r) for path in dict.fromkeys(paths) for r in exclusive if matches(r.pattern, path)]
    if hits:  # only now who commits: a hit of their own is no hit
        me = committer_among(env, os.getpid() if pid is None else pid, servers, ppid_of)
        hits = [(path, r) for path, r in hits if me is None or not same_holder(r.holder_session_id, me)]
    if not hits:
        return 0, ""
    return (1 if mode == "block" else 0), report(hits, mode)


def full_check_argv(hook: str, mode: str, python: str) -> list[str]:
    """The full check, in a normal interpreter (what the hooks ran before the fast path)."""
    return [python, "-m", "oxtail_mcp", "guard", "check", hook, "--mode", mode]


def main(argv: Sequence[str] | None = None) -> int:
    """``<hook> --mode <mode>``: run the check, print its text to stderr, return the exit code.

    Never stops a commit over our own trouble: a GuardError is one line and the commit goes
    through; anything the fast path cannot answer runs the full check in a child.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    hook = args[0] if args else ""
    mode = args[2] if len(args) == 3 and args[1] == "--mode" else "block"
    stdin = sys.stdin.read() if hook == "pre-push" else ""
    try:
        code, text = fast_check(hook, mode, os.getcwd(), os.environ, stdin)
    except GuardError as exc:
        code, text = 0, f"oxtail guard: {exc}; allowed"
    except Exception:  # noqa: BLE001 - Delegate, or a fault here: the full check answers
        import subprocess

        return subprocess.run(
            full_check_argv(hook, mode, sys.executable), input=stdin.encode(), check=False
        ).returncode
    if text:
        print(text, file=sys.stderr)
    return code
