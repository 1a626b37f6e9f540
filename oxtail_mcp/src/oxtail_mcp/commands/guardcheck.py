"""The git guard's check on the standard library alone: what every guarded commit and push runs.

The installed hooks start ``python -S -E`` (no site-packages scan, no
``PYTHON*`` variables) with only oxtail's own source directories on
``sys.path`` and call :func:`main`. Importing the store, attrs, cattrs and the
CLI would cost a commit over a hundred milliseconds; this module reads the two
kinds of files the check needs directly, in the file store's on-disk format
(``tests/mcp/test_guardcheck.py`` writes them through the real ``FsStore`` and
reads them back here):

========================================  ======================================================
file                                      read as
========================================  ======================================================
``reservations/<hash32(project)>.json``   a JSON list of ``Reservation.to_json()`` objects
``registry/<pid>.json``                   a ``RegistryEntry``: ``server_pid`` (equal to the
                                          name), ``process_start``, ``client.session_id``
========================================  ======================================================

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

from oxtail_mcp.hooks.hook import canonical, hash32, parse_json, state_dir

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the check imports nothing it does not use
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from typing import Protocol, TypeVar

    T = TypeVar("T")

    class Holding(Protocol):
        """What a report reads of a reservation (a core ``Reservation`` or a :class:`Held`)."""

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

# Mirrors of the store's names and limits (tests/mcp/test_guardcheck.py checks each against oxtail_fs).
RESERVATIONS_DIR = "reservations"
REGISTRY_DIR = "registry"
LEGACY_REGISTRY_DIR = "sessions"
RESERVATIONS_MAX_BYTES = 16 << 20
REGISTRY_MAX_BYTES = 1 << 20
GRACE_ENV = "OXTAIL_RESERVATION_GRACE_MS"
GRACE_DEFAULT_MS = 10_000

_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_S_IFMT, _S_IFREG = 0o170000, 0o100000


class GuardError(Exception):
    """Bad input or an unusable repository: ``str()`` is the one line shown to the person."""


class Delegate(Exception):
    """The fast path cannot answer with a plain read; ``str()`` says why (for tests and traces)."""


class Held:
    """One reservation record as stored (the fields :func:`standing` and a report read)."""

    __slots__ = (
        "client_type",
        "exclusive",
        "expires_at",
        "holder_session_id",
        "holder_tmux",
        "orphaned_at",
        "pattern",
        "reason",
    )

    def __init__(self, data: object) -> None:
        """Raises Delegate for anything ``Reservation.from_json`` might read differently."""
        if not isinstance(data, dict):
            raise Delegate("a reservation record that is not an object")
        self.pattern: str = _required(data, "pattern", str)
        self.holder_session_id: str = _required(data, "holder_session_id", str)
        self.exclusive: bool = _required(data, "exclusive", bool)
        self.expires_at: int = _required(data, "expires_at", int)
        _required(data, "reserved_at", int)
        self.reason: str | None = _optional(data, "reason", str)
        self.holder_tmux: str | None = _optional(data, "holder_tmux", str)
        self.orphaned_at: int | None = _optional(data, "orphaned_at", int)
        client = data.get("client_type", "unknown")
        if not isinstance(client, str):
            raise Delegate("a reservation record with a malformed client_type")
        self.client_type: str = client


def _required(data: dict[str, object], name: str, kind: type[T]) -> T:
    """``data[name]``, exactly of ``kind`` (a bool is not an int, as in the core's validators)."""
    value = data.get(name)
    if type(value) is not kind:
        raise Delegate(f"a reservation record with a missing or malformed {name}")
    return value


def _optional(data: dict[str, object], name: str, kind: type[T]) -> T | None:
    """:func:`_required`, but missing or null is None (the record's default)."""
    return None if data.get(name) is None else _required(data, name, kind)


# Reading the state directory -------------------------------------------------------------------
def read_small(path: str, limit: int) -> bytes | None:
    """A regular file of at most ``limit`` bytes (never following a symlink); None if it is missing.

    Raises Delegate for anything else there (the store refuses or skips it, in its own words).
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise Delegate(f"cannot open {path}: {exc}") from exc
    try:
        st = os.fstat(fd)
        if st.st_mode & _S_IFMT != _S_IFREG or st.st_size > limit:
            raise Delegate(f"{path} is not a regular file of <= {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Delegate(f"{path} grew past {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def reservations_file(home: str, project: str) -> str:
    """Same name as ``FsStore._reservations_file``."""
    return os.path.join(home, RESERVATIONS_DIR, hash32(project) + ".json")


def read_reservations(home: str, project: str) -> list[Held]:
    raw = read_small(reservations_file(home, project), RESERVATIONS_MAX_BYTES)
    if raw is None:
        return []
    try:
        data = parse_json(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Delegate(f"reservations that are not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise Delegate("reservations that are not a JSON list")
    return [Held(item) for item in data]


def registry_servers(home: str) -> list[tuple[int, float | None, str]]:
    """``(server_pid, process_start, session id)`` of each registry entry that names a session.

    A file the store would skip (unparseable, renamed, malformed) is skipped here too; an entry of
    the reference's ``sessions/`` directory is for the full check to read.
    """
    legacy = os.path.join(home, LEGACY_REGISTRY_DIR)
    if os.path.isdir(legacy) and not os.path.islink(legacy) and any(_registry_names(legacy)):
        raise Delegate("entries in the reference's sessions/ directory")
    directory = os.path.join(home, REGISTRY_DIR)
    servers = []
    for name in _registry_names(directory):
        try:
            raw = read_small(os.path.join(directory, name), REGISTRY_MAX_BYTES)
            data = parse_json(raw) if raw is not None else None
        except (Delegate, ValueError, RecursionError):
            continue
        if not isinstance(data, dict):
            continue
        pid, start, client = data.get("server_pid"), data.get("process_start"), data.get("client")
        if type(pid) is not int or pid != int(name[:-5]) or not isinstance(client, dict):
            continue
        if start is not None and type(start) not in (int, float):
            continue
        session = client.get("session_id")
        if isinstance(session, str) and session:
            servers.append((pid, None if start is None else float(start), session))
    return servers


def _registry_names(directory: str) -> list[str]:
    """Names the store's ``REGISTRY_NAME`` accepts: ``<1-10 digits, no leading 0>.json``."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [n for n in names if n.endswith(".json") and _is_pid_text(n[:-5])]


def _is_pid_text(stem: str) -> bool:
    return 1 <= len(stem) <= 10 and stem.isascii() and stem.isdigit() and stem[0] != "0"


def grace_from_env(env: Mapping[str, str]) -> int:
    """Same rule as :func:`oxtail_core.reservations.grace_from_env`."""
    raw = (env.get(GRACE_ENV) or "").strip()
    return int(raw) if raw.isdigit() else GRACE_DEFAULT_MS


def standing_records(records: Iterable[Held], now_ms: int, live: frozenset[str], grace_ms: int) -> list[Held]:
    """The records that stand (:func:`oxtail_core.reservations.standing`); Delegate when the sweep
    would change a record (an orphan clock to start or clear, an abandoned record to drop)."""
    kept = []
    holders: dict[str, bool] = {}  # holder -> has a live server (holders are few, records many)
    for r in records:
        if now_ms >= r.expires_at:
            continue
        alive = holders.get(r.holder_session_id)
        if alive is None:
            alive = holders[r.holder_session_id] = canonical(r.holder_session_id) in live
        if alive:
            if r.orphaned_at is not None:
                raise Delegate("a live holder's orphan clock to clear")
            kept.append(r)
            continue
        if r.orphaned_at is None:
            raise Delegate("a holder without a live server: its orphan clock starts now")
        if now_ms - r.orphaned_at >= grace_ms:
            raise Delegate("an abandoned reservation to drop")
        kept.append(r)
    return kept


# Processes -------------------------------------------------------------------------------------
# Linux reads of oxtail_fs.proctree, kept here because importing it costs the check ``typing`` and
# ``re`` (a third of its start-up); without /proc the check uses proctree itself (psutil).
# tests/mcp/test_guardcheck.py checks each against proctree.
MAX_HOPS = 64
START_TOLERANCE_S = 0.05


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    _, sep, rest = text.rpartition(b")")
    fields = rest.decode("ascii", "replace").split()
    return fields if sep and len(fields) >= 20 else None


_BOOT: list[float | None] = []


def _boot_time() -> float | None:
    if not _BOOT:
        _BOOT.append(None)
        try:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        _BOOT[0] = float(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
    return _BOOT[0]


def is_alive(pid: int, process_start: float | None) -> bool:
    """Same answer as :func:`oxtail_fs.proctree.is_alive`."""
    if isinstance(pid, bool) or pid <= 0:
        return False
    boot = _boot_time()
    if boot is None:
        from oxtail_fs import proctree

        return proctree.is_alive(pid, process_start)
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return False
    try:
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except ValueError:
        return False
    return process_start is None or abs(started - process_start) <= START_TOLERANCE_S


def ppid_of(pid: int) -> int | None:
    """Same answer as :func:`oxtail_fs.proctree.ppid_of`."""
    if _boot_time() is None:
        from oxtail_fs import proctree

        return proctree.ppid_of(pid)
    fields = _stat_fields(pid)
    try:
        return None if fields is None else int(fields[1])
    except ValueError:
        return None


def ancestry(pid: int, parent_of: Callable[[int], int | None]) -> Iterator[int]:
    """Same walk as :func:`oxtail_fs.proctree.ancestry`: ``pid``, then its ancestors, above 1."""
    current: int | None = pid
    for _ in range(MAX_HOPS):
        if current is None or current <= 1:
            return
        yield current
        current = parent_of(current)


# Git -------------------------------------------------------------------------------------------
GIT_TIMEOUT_S = 30.0


def git(cwd: str | os.PathLike[str], *args: str, input_bytes: bytes | None = None) -> bytes:
    """Run ``git -C cwd ...``; GuardError with git's own first line when it fails."""
    try:
        code, out, err = spawn(["git", "-C", os.fspath(cwd), *args], input_bytes, GIT_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise GuardError("git is not installed (or not on PATH)") from exc
    except OSError as exc:  # TimeoutError included
        raise GuardError(f"cannot run git: {exc}") from exc
    if code != 0:
        first = (err.decode("utf-8", "replace").strip().splitlines() or ["failed"])[0]
        raise GuardError(f"git {args[0]}: {first}")
    return out


def spawn(argv: Sequence[str], input_bytes: bytes | None, timeout_s: float) -> tuple[int, bytes, bytes]:
    """``(exit status, stdout, stderr)`` of ``argv`` (found on PATH), fed ``input_bytes``.

    :mod:`subprocess` would cost the check ``locale``, ``re`` and ``threading`` (about a third of
    its start-up); this is its ``run(capture_output=True, timeout=...)`` for one small child:
    ``posix_spawnp``, all three pipes served by one poll loop (no deadlock on a full pipe), and
    the child killed and reaped at the deadline (TimeoutError).
    """
    import select

    pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr: (read end, write end)
    child_ends = (pipes[0][0], pipes[1][1], pipes[2][1])
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(child_ends)]
    try:
        pid = os.posix_spawnp(argv[0], list(argv), os.environ, file_actions=actions)
    except BaseException:
        for r, w in pipes:
            os.close(r)
            os.close(w)
        raise
    for fd in child_ends:
        os.close(fd)
    stdin_w, out_r, err_r = pipes[0][1], pipes[1][0], pipes[2][0]
    pending = memoryview(input_bytes or b"")
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    if pending:
        os.set_blocking(stdin_w, False)
        poller.register(stdin_w, select.POLLOUT)
    else:
        os.close(stdin_w)
    open_fds = {out_r, err_r} | ({stdin_w} if pending else set())
    deadline = time.monotonic() + timeout_s
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{argv[0]} did not finish in {timeout_s:g} s")
            for fd, _ in poller.poll(left * 1000):
                if fd == stdin_w:
                    try:
                        pending = pending[os.write(fd, pending) :]
                    except BrokenPipeError:  # the child stopped reading: what it read is its answer
                        pending = pending[:0]
                    finished = not pending
                else:
                    data = os.read(fd, 65536)
                    chunks[fd].append(data)
                    finished = not data
                if finished:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
    except BaseException:
        os.kill(pid, 9)  # SIGKILL: nothing of it is wanted any more; reaped below
        raise
    finally:
        for fd in open_fds:
            os.close(fd)
        status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), b"".join(chunks[out_r]), b"".join(chunks[err_r])


def toplevel(cwd: str | os.PathLike[str]) -> str:
    """The checkout's root, canonical (a worktree is a project of its own, like the server's root)."""
    try:
        top = git(cwd, "rev-parse", "--show-toplevel").decode("utf-8", "surrogateescape").strip()
    except GuardError as exc:
        raise GuardError(f"not inside a git repository: {cwd}") from exc
    try:  # same as oxtail_fs.project.realpath_or_self
        return os.path.realpath(top, strict=True) if top else top
    except (OSError, ValueError):
        return top


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


def staged_paths(cwd: str | os.PathLike[str]) -> list[str]:
    return name_status(git(cwd, "diff", "--cached", "--name-status", "-z", "-M", "--no-color"))


def pushed_paths(cwd: str | os.PathLike[str], stdin: str) -> list[str]:
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
    return bool(a) and bool(b) and canonical(a) == canonical(b or "")


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
    if not os.path.isdir(os.path.join(home, RESERVATIONS_DIR)):
        return 0, ""  # nobody ever reserved anything here
    records = read_reservations(home, toplevel(cwd))
    if not records:
        return 0, ""
    now = int(time.time() * 1000)
    servers = [(p, s) for p, start, s in registry_servers(home) if is_alive(p, start)]
    live = frozenset(canonical(s) for _, s in servers)
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
