"""Which machine we are, and how a process on any machine of the team is judged alive.

A pid and a start time only mean something on their own machine. The host id names that
machine for the store: ``hash32(boot id, pid namespace, uid)[:16]``.

==================  =========================================================================
part                why it is in the id
==================  =========================================================================
boot id             a reboot restarts pids: what ran before it belongs to a host that is gone
pid namespace       two containers on one machine see different process tables
uid                 tmux servers are per user: a relay can only type into its own user's panes
==================  =========================================================================

``OXTAIL_HOST_ID`` overrides it (tests run several "hosts" on one machine); it must match
:data:`oxtail_core.model.HOST_ID`, because it becomes part of key names.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Mapping

from oxtail_core.errors import StoreError
from oxtail_core.ids import hash32
from oxtail_core.model import HOST_ID
from oxtail_core.protocols import Host
from oxtail_redis.lease import Leases

HOST_ID_ENV = "OXTAIL_HOST_ID"
HOST_ID_CHARS = 16


def host_id(environ: Mapping[str, str] = os.environ) -> str:
    """This process's host id: ``OXTAIL_HOST_ID`` when set (validated), else computed once."""
    override = environ.get(HOST_ID_ENV)
    if override:
        if not HOST_ID.match(override):
            raise StoreError(f"invalid {HOST_ID_ENV} {override!r}: want {HOST_ID.pattern}")
        return override
    return _computed()


@functools.cache
def _computed() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else -1
    return hash32(f"{_boot_id()}\n{_pid_namespace()}\n{uid}")[:HOST_ID_CHARS]


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read(200).strip()
    except OSError:
        return ""


def _boot_id() -> str:
    """Linux's boot id, or macOS's boot session UUID; "" when neither can be read."""
    found = _read("/proc/sys/kernel/random/boot_id")
    if found or sys.platform != "darwin":
        return found
    try:
        done = subprocess.run(
            ["/usr/sbin/sysctl", "-n", "kern.bootsessionuuid"],
            capture_output=True,
            text=True,
            timeout=2,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()[:200]


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


class ClusterHost:
    """The :class:`~oxtail_core.protocols.Host` of a team spread over several machines.

    =============================  ==============================================================
    question                       answered by
    =============================  ==============================================================
    a process on this host         the local Host (the process tree: exact, immediate, a
    (``host`` None or ours)        recycled pid fails the start-time check)
    a process on another host      whether its lease exists in Redis (a cached answer at most
                                   ``cache_s`` old, primed by every registry read)
    project, parent, working dir   the local Host (only this machine's directories and
                                   processes can be looked at; routing never asks it about
                                   another host's paths)
    =============================  ==============================================================

    The local Host is injected (``oxtail_fs.host.project.LocalHost`` in a server): this package
    reads no process table itself. Building one makes the store's heartbeat the janitor of
    this host: each beat, the leases of this host's dead processes are dropped, so other hosts
    see a crash within one beat instead of one lease TTL.
    """

    def __init__(self, leases: Leases, local: Host) -> None:
        self._leases = leases
        self._local = local
        self.host_id: str | None = leases.host_id
        leases.local_alive = self._local_alive

    def _local_alive(self, pid: int, process_start: float | None) -> bool:
        return self._local.is_alive(pid, process_start)

    def is_alive(self, pid: int, process_start: float | None, host: str | None = None) -> bool:
        if host is None or host == self.host_id:
            return self._local.is_alive(pid, process_start)
        return self._leases.alive(host, pid, process_start)

    def same_project(self, caller_cwd: str, peer_cwd: str) -> bool:
        return self._local.same_project(caller_cwd, peer_cwd)

    def parent_of(self, pid: int) -> tuple[int, float | None] | None:
        return self._local.parent_of(pid)

    def working_dir(self, pid: int) -> str | None:
        return self._local.working_dir(pid)
