"""Which project a directory belongs to: the nearest ``.git`` ancestor, else the directory itself.

Two rules use it. Discovery's scope (discovery §4.3) lists what lies under a
root and belongs to no other repository below it. Messaging's "same project"
(messaging §3.3) is symmetric: git projects match only the same repository
(a nested repository is a separate project, and never a non-git directory);
ad-hoc directories match when one contains the other.

Across machines paths mean nothing, so a third fact names a project wherever
it is checked out: :func:`project_id`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from oxtail_core.ids import hash32
from oxtail_fs.host import proctree

GIT_TIMEOUT_S = 2.0
"""How long one git question may take (a huge or network-mounted repository is no project id)."""
_COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)\Z")


def realpath_or_self(path: str) -> str:
    """The canonical path (symlinks and ``..`` resolved), or ``path`` unchanged if it cannot be resolved.

    An empty path stays empty rather than turning into the current directory.
    """
    if not path:
        return path
    try:
        return os.path.realpath(path, strict=True)
    except (OSError, ValueError):
        return path


def find_project_root(path: str) -> tuple[str, bool]:
    """``(dir, True)`` for the first of ``path`` and its parents holding a ``.git``, else ``(path, False)``.

    The walk is over the string as given (no symlink resolution), like the
    reference. An empty path has no project.
    """
    current = path
    while current:
        if os.path.exists(os.path.join(current, ".git")):
            return current, True
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return path, False


def is_within(path: str, root: str) -> bool:
    """``path`` equals ``root`` or lies beneath it, by string (call after canonicalizing both)."""
    if path == root:
        return True
    prefix = root if root.endswith(os.sep) else root + os.sep
    return path.startswith(prefix)


def in_scope(path: str, resolved_root: str) -> bool:
    """Whether ``path`` belongs to the project at ``resolved_root`` (already canonical).

    It must lie under the root and its own project root, if it has one, must be
    the root itself: a nested repository is out, and so is everything when the
    root is a subdirectory of a repository.
    """
    real = realpath_or_self(path)
    if not is_within(real, resolved_root):
        return False
    root, found = find_project_root(real)
    return not found or realpath_or_self(root) == resolved_root


def same_project(caller_cwd: str, peer_cwd: str) -> bool:
    """Whether a peer working in ``peer_cwd`` may be messaged from ``caller_cwd`` (messaging §3.3).

    An empty working directory (an entry that never reported one) matches nothing.
    """
    if not caller_cwd or not peer_cwd:
        return False
    caller_root, caller_git = find_project_root(caller_cwd)
    peer_root, peer_git = find_project_root(peer_cwd)
    caller_canon, peer_canon = realpath_or_self(caller_root), realpath_or_self(peer_root)
    if caller_git or peer_git:
        return caller_git and peer_git and caller_canon == peer_canon
    return (
        caller_canon == peer_canon
        or is_within(realpath_or_self(peer_cwd), caller_canon)
        or is_within(realpath_or_self(caller_cwd), peer_canon)
    )


class LocalHost:
    """Implements :class:`oxtail_core.protocols.Host` for processes and directories on this machine.

    ``host_id`` is None: it knows no other machine (a shared store wraps it, oxtail_redis.host).
    """

    host_id: str | None = None

    def is_alive(self, pid: int, process_start: float | None, host: str | None = None) -> bool:
        """True iff ``pid`` runs and (when given) was started at ``process_start``.

        ``host`` is not looked at: this host knows one machine, and every entry of a filesystem
        store runs on it (a store shared by machines is judged through ``ClusterHost``)."""
        return proctree.is_alive(pid, process_start)

    def same_project(self, caller_cwd: str, peer_cwd: str) -> bool:
        """Messaging's project rule (:func:`same_project`)."""
        return same_project(caller_cwd, peer_cwd)

    def parent_of(self, pid: int) -> tuple[int, float | None] | None:
        """``pid``'s parent and its start time, from the process table."""
        return proctree.parent_of(pid)

    def working_dir(self, pid: int) -> str | None:
        """``/proc/<pid>/cwd``, or None when it cannot be read."""
        return proctree.working_dir(pid)


def project_of(cwd: str) -> str:
    """The canonical project root a reservation is kept under (worktrees are projects of their own)."""
    return realpath_or_self(find_project_root(cwd)[0])


def project_id(cwd: str) -> str | None:
    """The id of ``cwd``'s project on any machine, or None when it has none.

    =============================================  ==============================================
    ``cwd`` is                                     its id
    =============================================  ==============================================
    in a git repository with commits               ``hash32`` of its root commit (the first line
                                                   of ``git rev-list --max-parents=0 HEAD``):
                                                   every clone of one history shares it
    in a repository without commits, with an       ``hash32`` of the normalized origin URL
    ``origin`` remote
    anything else (no repository, no git, git      None (never compared equal to anything)
    timed out, a directory that is not there)
    =============================================  ==============================================
    """
    if not isinstance(cwd, str) or not cwd or "\0" in cwd or not os.path.isdir(cwd):
        return None
    git = shutil.which("git")
    if git is None:
        return None
    roots = _git(git, cwd, "rev-list", "--max-parents=0", "HEAD")
    first = roots.splitlines()[0].strip() if roots else ""
    if _COMMIT.match(first):
        return hash32(f"root {first}")
    origin = normalized_origin(_git(git, cwd, "config", "--get", "remote.origin.url") or "")
    return hash32(f"origin {origin}") if origin else None


def normalized_origin(url: str) -> str:
    """An origin URL as the same repository reads from anywhere: no scheme, user, password,
    port, trailing ``/`` or ``.git``; the host lowercased (``git@github.com:o/r.git`` and
    ``https://github.com/o/r`` are both ``github.com/o/r``). A local path stays a path."""
    text = url.strip()
    if not text:
        return ""
    scp = _SCP_LIKE.match(text)
    if "://" in text:
        rest = text.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host = authority.rsplit("@", 1)[-1].split(":", 1)[0].lower()
        text = f"{host}/{path}" if host else path
    elif scp is not None and not os.path.isabs(text):
        text = f"{scp.group(1).lower()}/{scp.group(2)}"
    text = text.rstrip("/")
    return text.removesuffix(".git").rstrip("/")


def _git(git: str, cwd: str, *args: str) -> str | None:
    """One bounded git question in ``cwd`` (no shell, no prompt, no inherited repository
    overrides); its output, or None on any failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        done = subprocess.run(
            [git, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")
