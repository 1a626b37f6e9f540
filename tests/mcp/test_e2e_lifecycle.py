"""Server lifecycle over real processes: the registry entry lives exactly as long as the server.

A server publishes ``registry/<pid>.json`` before serving and removes it when
stdin closes, on SIGTERM, and when its parent (the agent host) dies -- the last
one without stdin closing, since another process may still hold the pipe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.e2e import SERVER_COMMAND, World, spawn_raw, wait_until


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def registered(w: World, pid: int) -> bool:
    path = w.registry_file(pid)
    try:
        return json.loads(path.read_text())["server_pid"] == pid
    except (OSError, ValueError):
        return False


def initialize(proc: subprocess.Popen) -> dict:
    """One MCP initialize round trip over the raw pipes: proves the server is serving."""
    assert proc.stdin is not None and proc.stdout is not None
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "lifecycle-test", "version": "0"},
        },
    }
    proc.stdin.write((json.dumps(request) + "\n").encode())
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def test_registry_entry_lives_until_stdin_eof(tmp_path: Path) -> None:
    w = World(tmp_path)
    proj = w.project("proj")
    proc = spawn_raw(w, proj)
    try:
        assert wait_until(lambda: registered(w, proc.pid), 20)
        answer = initialize(proc)
        assert answer["result"]["serverInfo"]["name"] == "oxtail"
        assert registered(w, proc.pid)
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(10) == 0
        assert not w.registry_file(proc.pid).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        w.close()


def test_sigterm_while_serving_exits_and_removes_entry(tmp_path: Path) -> None:
    w = World(tmp_path)
    proj = w.project("proj")
    proc = spawn_raw(w, proj)
    try:
        assert wait_until(lambda: registered(w, proc.pid), 20)
        assert initialize(proc)["result"]["serverInfo"]["name"] == "oxtail"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(3) == 0
        assert not w.registry_file(proc.pid).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        w.close()


def test_server_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """The host is SIGKILLed while the server's stdin stays open (we hold the pipe): it exits by itself."""
    w = World(tmp_path)
    proj = w.project("proj")
    read_end, write_end = os.pipe()
    launcher = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.argv[1]], stdin=int(sys.argv[2]), stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    host = subprocess.Popen(
        [sys.executable, "-c", launcher, SERVER_COMMAND, str(read_end)],
        pass_fds=(read_end,),
        stdout=subprocess.PIPE,
        env=w.env(),
        cwd=proj,
        text=True,
    )
    os.close(read_end)
    server_pid = 0
    try:
        assert host.stdout is not None
        server_pid = int(host.stdout.readline())
        assert wait_until(lambda: registered(w, server_pid), 20)
        host.kill()
        host.wait()
        killed = time.monotonic()
        assert wait_until(lambda: gone(server_pid), 3)
        assert time.monotonic() - killed < 2.5
        assert wait_until(lambda: not w.registry_file(server_pid).exists(), 2)
    finally:
        os.close(write_end)
        if host.poll() is None:
            host.kill()
            host.wait()
        if server_pid and not gone(server_pid):
            psutil.Process(server_pid).kill()
        w.close()
