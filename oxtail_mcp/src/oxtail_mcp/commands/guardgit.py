"""Git for the guard, on the standard library alone: the commands, their output, the paths touched.

Used by the stdlib check (:mod:`oxtail_mcp.commands.guardcheck`) on every
commit and by the full check and the installer (:mod:`oxtail_mcp.commands.guard`):
one definition of how a commit's or a push's paths are read.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the hook's check imports nothing it does not use
if TYPE_CHECKING:
    from collections.abc import Sequence


class GuardError(Exception):
    """Bad input or an unusable repository: ``str()`` is the one line shown to the person."""


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
    try:  # same as oxtail_fs.host.project.realpath_or_self
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
