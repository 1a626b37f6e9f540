"""A minimal client for ``codex app-server``: JSON-RPC 2.0, one JSON object per line over stdio.

Codex 0.171.0 documents the protocol with ``codex app-server generate-json-schema``. Only what the
real-client tests need is here: requests with ids, answers matched by id, notifications kept in
arrival order, and a reader thread so a silent server never blocks the test past its timeout.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class AppServerError(Exception):
    """The app-server answered a request with a JSON-RPC error, or did not answer in time."""


class AppServer:
    """One ``codex app-server`` process, already initialized."""

    def __init__(self, codex: Path, env: Mapping[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [str(codex), "app-server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.request(
            "initialize", {"clientInfo": {"name": "oxtail-tests", "title": None, "version": "0"}}, timeout=30
        )
        self.notify("initialized")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                continue
        self.lines.put(None)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    def request(self, method: str, params: dict[str, Any], timeout: float = 60) -> Any:
        """Send one request and wait for its answer; notifications that arrive meanwhile are kept."""
        self.next_id += 1
        wanted = self.next_id
        self._send({"jsonrpc": "2.0", "id": wanted, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if message is None:
                raise AppServerError(f"app-server exited while waiting for {method}")
            if message.get("id") == wanted and "method" not in message:
                if "error" in message:
                    raise AppServerError(f"{method}: {message['error']}")
                return message.get("result")
            if "method" in message and "id" in message:
                # A server-to-client request (an approval): decline, so nothing runs.
                self._send(
                    {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}}
                )
            elif "method" in message:
                self.notifications.append(message)
        raise AppServerError(f"no answer to {method} within {timeout}s")

    def wait_for(self, method: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
        """The first notification named ``method`` whose params contain ``match``, waiting for it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for note in self.notifications[seen:]:
                params = note.get("params") or {}
                if note["method"] == method and all(params.get(k) == v for k, v in match.items()):
                    return note
            seen = len(self.notifications)
            if time.monotonic() > deadline:
                raise AppServerError(f"no {method} {match} within {timeout}s")
            try:
                message = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if message is None:
                raise AppServerError(f"app-server exited while waiting for {method}")
            if "method" in message and "id" not in message:
                self.notifications.append(message)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
