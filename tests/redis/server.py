"""A private redis-server for tests: a free loopback port, no persistence unless asked, killed by pid.

Fault tests ask for an append-only file (``persistence="everysec"`` or ``"always"``), kill the
server with SIGKILL (:meth:`RedisServer.kill`) and start it again on the same port and directory
(:meth:`RedisServer.restart`), so clients reconnect to the same URL and Redis loads its AOF.

A missing ``redis-server`` is a failure with the fix in the message, never a skip: a green run
must not hide Redis tests that did not run (``scripts/redis_server.sh`` installs it).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import attrs
import pytest
import redis

from oxtail_core.testing import Backend
from oxtail_core.testing.stores import Made
from oxtail_redis.store import RedisStore

ID_MODULES = ("oxtail_redis.inbox", "oxtail_redis.ledger", "oxtail_redis.records", "oxtail_redis.store")
"""The modules whose ``new_id`` mints batch and op ids (replaced by the race machines)."""


PERSISTENCE = {
    "none": ("--appendonly", "no"),
    "everysec": ("--appendonly", "yes", "--appendfsync", "everysec"),
    "always": ("--appendonly", "yes", "--appendfsync", "always"),
}
"""What a server keeps across a restart: nothing (the default), or an AOF fsynced every second or
on every write. RDB snapshots are always off (``--save ''``), so the AOF is the only record."""


@attrs.define
class RedisServer:
    proc: subprocess.Popen[bytes]
    port: int
    directory: Path
    persistence: str = "none"
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or ``kill -9`` would: no shutdown, no final AOF write."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)

    def restart(self) -> RedisServer:
        """A new server on the same port, directory and settings (it loads the AOF, if any)."""
        self.stop()
        return start_server(self.directory, *self.extra, persistence=self.persistence, port=self.port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    directory: Path, *extra: str, persistence: str = "none", port: int | None = None
) -> RedisServer:
    """Start redis-server on a loopback port (``port``, else a free one) in ``directory``, keeping
    what ``persistence`` names (:data:`PERSISTENCE`); fail (never skip) if it cannot run."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run scripts/redis_server.sh (it apt-get installs it)")
    log = directory / "redis.log"
    for _ in range(5 if port is None else 1):  # a free port may be taken between the probe and the bind
        chosen = free_port() if port is None else port
        args = [exe, "--bind", "127.0.0.1", "--port", str(chosen), "--save", "", *PERSISTENCE[persistence]]
        args += ["--dir", str(directory), "--logfile", str(log), *extra]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        server = RedisServer(proc, chosen, directory, persistence, extra)
        client = redis.Redis(host="127.0.0.1", port=chosen, socket_timeout=0.5)
        for _ in range(200):
            if proc.poll() is not None:
                break
            try:
                if client.ping():
                    client.close()
                    return server
            except redis.RedisError:
                time.sleep(0.05)
        client.close()
        server.stop()
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    pytest.fail(f"redis-server did not start; its log ends:\n{tail}")


def redis_factory(url: str) -> Backend:
    """Fresh RedisStores on the server at ``url``, each on its own team namespace (dropped after)."""

    def make() -> Made:
        store = RedisStore(url, "t" + uuid.uuid4().hex[:12], prefix="oxt")

        def cleanup() -> None:
            store.drop_namespace()
            store.close()

        return store, cleanup

    return Backend(make, id_modules=ID_MODULES)
