"""A private tmux server for tests: its own ``-L`` socket, no user config, always killed.

Imported explicitly by the tests that need it (``from tests.support.tmux import private_tmux``);
no test ever talks to a tmux server it did not start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from oxtail_fs.tmux.client import Tmux


class PrivateTmux:
    """One tmux server on a socket name no other process uses."""

    def __init__(self) -> None:
        self.socket_name = f"oxtail-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.tmux = Tmux(socket_name=self.socket_name, timeout_s=5.0)
        self.socket_path: str | None = None

    def raw(self, *args: str) -> str:
        """Run tmux on this server (user config ignored) and return stdout; raise on failure."""
        proc = subprocess.run(
            ["tmux", "-L", self.socket_name, "-f", "/dev/null", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"tmux {args!r} failed: {proc.stderr.strip()}")
        return proc.stdout

    def new_session(self, name: str, command: str, cwd: str | None = None) -> str:
        """Start a detached session running ``command`` (a shell command line); return its pane id."""
        where = ["-c", cwd] if cwd else []
        args = ["new-session", "-d", "-s", name, "-x", "200", "-y", "50", *where, "-P", "-F", "#{pane_id}"]
        pane = self.raw(*args, command).strip()
        if self.socket_path is None:
            self.socket_path = self.raw("display-message", "-p", "#{socket_path}").strip()
        return pane

    def pane_pid(self, pane: str) -> int:
        return int(self.raw("display-message", "-p", "-t", pane, "#{pane_pid}").strip())

    def kill(self) -> None:
        """Stop the server and remove its socket file (tmux leaves it behind)."""
        subprocess.run(
            ["tmux", "-L", self.socket_name, "kill-server"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        if self.socket_path:
            with_socket = self.socket_path
            self.socket_path = None
            if os.path.exists(with_socket):
                os.unlink(with_socket)


@contextmanager
def private_tmux() -> Iterator[PrivateTmux]:
    """A fresh private server, killed on exit whatever happened."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    server = PrivateTmux()
    try:
        yield server
    finally:
        server.kill()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``predicate`` every 10 ms until it holds or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
