"""End-to-end harness: agents that talk to real ``oxtail-mcp`` servers over stdio.

An *agent* is what a Claude Code or Codex session looks like from oxtail's side:
a process that spawns its own ``oxtail-mcp`` child through the official MCP
client (``stdio_client`` + ``ClientSession``) and calls tools on it. Two kinds:

* :class:`PaneAgent` -- a small Python process (this file, run as a script) that
  is the foreground program of a real tmux pane on a private tmux server. Its
  server inherits ``TMUX``/``TMUX_PANE``, so the server's pane binding and the
  senders' wake-pane verification (process-tree walk from the server pid) run for
  real. The agent puts its pane's tty in non-canonical mode and records every
  chunk typed into the pane with a ``time.monotonic()`` stamp (the clock is
  system-wide on Linux, so the test can compare it with its own), which is how a
  test sees the wake line arrive, then Enter. The test drives the agent over a
  UNIX socket: one JSON request line, one JSON response line per connection.
  With ``stamp_busy_on_text`` (a session id) the agent marks that session busy
  the moment typed text reaches its pane, before any Enter, as the hooks of a
  peer that starts a turn would: the way a test puts a marker inside the Codex
  submit gap.
* :class:`DirectAgent` -- the same client, run in the test process on a
  background event loop (no tmux pane; cheaper: the MCP client is already
  imported). Its server is not in any pane.

Both share :meth:`call` (returns a :class:`Result`), :meth:`server_pid`,
:meth:`restart` (start a fresh ``oxtail-mcp`` child in place of the old one) and
:meth:`start_responder` (a background loop that polls ``read_my_messages`` and
answers every question with ``reply_to_message``).

Environment: every server gets ``HOME`` and ``OXTAIL_HOME`` under the test's
``tmp_path``, ``TMUX_TMPDIR`` pointing at a private empty directory (so a server
outside tmux can never reach a tmux server we did not start), and no inherited
``TMUX``/``TMUX_PANE``/``CLAUDECODE``/``CODEX_*``/``CLAUDE_CODE_*``; a pane agent
adds its own pane's ``TMUX``/``TMUX_PANE``, a direct agent in a tmux test gets
``TMUX`` naming the private server (so its wakes can reach the panes).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
VENV_BIN = Path(sys.executable).parent
SERVER_COMMAND = str(VENV_BIN / "oxtail-mcp")
WAKE_TEXT = (  # accounting.md §0.3 (0.25): typed by every keystroke wake
    "oxtail msg: read_my_messages, then act on it — close action_required work via complete_work/block_work; "
    "otherwise reply via send_message (reply_to=request_id if present)"
)
CALL_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0

_STRIPPED_PREFIXES = ("TMUX", "CODEX_", "CLAUDE_CODE_", "OXTAIL_", "MCP_TRACE")
_STRIPPED = {"CLAUDECODE", "HOME", "PYTEST_CURRENT_TEST"}


def base_env(
    home: Path, oxtail_home: Path, tmux_tmpdir: Path, extra: Mapping[str, str] | None = None
) -> dict:
    """The environment of one ``oxtail-mcp`` server (see the module docstring)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _STRIPPED and not key.startswith(_STRIPPED_PREFIXES)
    }
    env.update(HOME=str(home), OXTAIL_HOME=str(oxtail_home), TMUX_TMPDIR=str(tmux_tmpdir))
    env.update(extra or {})
    return env


# ----------------------------------------------------------------------------------------------------------
# Agent side: runs in the agent's event loop (in a pane process, or on a DirectAgent's background loop).
# ----------------------------------------------------------------------------------------------------------


class Holder:
    """One live MCP client session to one ``oxtail-mcp`` child; :meth:`restart` replaces the child."""

    def __init__(self, params: Any, errlog: Any, client_name: str | None = None) -> None:
        self.params = params
        self.errlog = errlog
        self.client_name = client_name  # the handshake's clientInfo.name (the SDK's own when None)
        self.session: Any = None
        self.initialized: Any = None
        self._close: Any = None
        self._done: Any = None
        self.responder_log: list[dict] = []
        self._responder_scope: Any = None

    async def start(self, tg: Any) -> None:
        import anyio

        ready = anyio.Event()
        self._close = anyio.Event()
        self._done = anyio.Event()
        failure: list[BaseException] = []
        tg.start_soon(self._run, ready, self._close, self._done, failure)
        await ready.wait()
        if failure:
            raise RuntimeError(f"server did not start: {failure[0]!r}")

    async def _run(self, ready: Any, close: Any, done: Any, failure: list) -> None:
        from mcp import ClientSession, stdio_client
        from mcp.types import Implementation

        info = Implementation(name=self.client_name, version="0.0.0") if self.client_name else None
        try:
            async with (
                stdio_client(self.params, errlog=self.errlog) as (r, w),
                ClientSession(r, w, client_info=info) as s,
            ):
                self.initialized = await s.initialize()
                self.session = s
                ready.set()
                await close.wait()
        except Exception as exc:  # noqa: BLE001 - a killed server breaks the streams; report, never crash
            failure.append(exc)
        finally:
            ready.set()
            done.set()

    async def stop(self) -> None:
        if self._responder_scope is not None:
            self._responder_scope.cancel()
        if self._close is not None:
            self._close.set()
            await self._done.wait()
        self.session = None

    async def restart(self, tg: Any) -> None:
        await self.stop()
        await self.start(tg)

    async def call(self, tool: str, args: Mapping[str, Any] | None) -> dict:
        try:
            result = await self.session.call_tool(tool, dict(args or {}))
        except Exception as exc:  # noqa: BLE001 - the test sees the failure as data
            return {"text": None, "is_error": True, "exception": repr(exc)}
        texts = [item.text for item in result.content if getattr(item, "type", None) == "text"]
        return {"text": texts[0] if len(texts) == 1 else texts, "is_error": bool(result.is_error)}

    async def responder(self, interval_ms: float, prefix: str, tg: Any) -> None:
        """Poll read_my_messages every ``interval_ms``; answer each question (request_id) by reply."""
        import anyio

        scope = anyio.CancelScope()
        self._responder_scope = scope

        async def loop() -> None:
            with scope:
                while True:
                    got = await self.call("read_my_messages", {})
                    if not got["is_error"] and got["text"]:
                        for message in json.loads(got["text"])["messages"]:
                            entry = {"message": message, "at": time.monotonic()}
                            if message.get("request_id"):
                                reply = await self.call(
                                    "reply_to_message",
                                    {"message_id": message["id"], "body": prefix + message["body"]},
                                )
                                entry["reply"] = reply
                            self.responder_log.append(entry)
                    await anyio.sleep(interval_ms / 1000)

        tg.start_soon(loop)


# ----------------------------------------------------------------------------------------------------------
# The pane agent process (``python e2e.py agent <spec.json>``).
# ----------------------------------------------------------------------------------------------------------


def _record_tty(keys: list, on_text: Callable[[], None] | None = None) -> None:
    """Make the pane's tty non-canonical, no echo, and record every chunk typed into it.

    Chunks are decoded incrementally, so a character split across two reads
    (the wake line has an em dash) is recorded whole. ``on_text`` runs before
    a chunk that carries more than line ends is recorded.
    """
    import termios

    fd = 0
    try:
        attrs = termios.tcgetattr(fd)
        attrs[3] &= ~(termios.ICANON | termios.ECHO)
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        return
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        text = decoder.decode(data)
        if on_text is not None and text.strip("\r\n"):
            on_text()
        keys.append((time.monotonic(), text))


def _busy_stamper(env: Mapping[str, str], session_id: str) -> Callable[[], None]:
    """Write ``session_id``'s busy marker with the hook's own code (what its hooks would do)."""
    from oxtail_fs.store.names import state_dir
    from oxtail_mcp.hooks.hook import stamp

    return lambda: stamp(state_dir(env), session_id, "busy", time.time_ns() // 1_000_000)


def agent_main(spec_path: str) -> None:
    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream
    from mcp import StdioServerParameters

    spec = json.loads(Path(spec_path).read_text())
    keys: list = []
    stamper = (
        _busy_stamper(spec["env"], spec["stamp_busy_on_text"]) if spec.get("stamp_busy_on_text") else None
    )
    threading.Thread(target=_record_tty, args=(keys, stamper), daemon=True).start()
    env = dict(spec["env"])
    for name in ("TMUX", "TMUX_PANE"):
        if name in os.environ:
            env[name] = os.environ[name]
    if spec.get("env_only") is not None:  # a host that passes only these (Codex: its bare set + env_vars)
        env = {name: value for name, value in env.items() if name in spec["env_only"]}
    params = StdioServerParameters(command=spec["command"], args=[], env=env, cwd=spec["cwd"])
    errlog = open(spec["server_log"], "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            holder = Holder(params, errlog, spec.get("client_name"))
            await holder.start(tg)
            stopping = anyio.Event()

            async def handle(stream: Any) -> None:
                async with stream:
                    buffered = BufferedByteReceiveStream(stream)
                    request = json.loads(await buffered.receive_until(b"\n", 1 << 20))
                    op = request["op"]
                    if op == "call":
                        answer = await holder.call(request["tool"], request.get("args"))
                    elif op == "keys":
                        answer = {"keys": keys}
                    elif op == "info":
                        answer = {"pid": os.getpid(), "tmux_pane": os.environ.get("TMUX_PANE")}
                    elif op == "restart":
                        await holder.restart(tg)
                        answer = {"ok": True}
                    elif op == "responder":
                        await holder.responder(request["interval_ms"], request["prefix"], tg)
                        answer = {"ok": True}
                    elif op == "responder_log":
                        answer = {"log": holder.responder_log}
                    elif op == "stop":
                        answer = {"ok": True}
                        stopping.set()
                    else:
                        answer = {"error": f"unknown op {op!r}"}
                    await stream.send((json.dumps(answer) + "\n").encode())

            listener = await anyio.create_unix_listener(spec["socket"])
            tg.start_soon(listener.serve, handle)
            await stopping.wait()
            await holder.stop()
            tg.cancel_scope.cancel()

    anyio.run(main)


# ----------------------------------------------------------------------------------------------------------
# Test side.
# ----------------------------------------------------------------------------------------------------------


class Result:
    """One tool call's outcome: the text, the error flag, and the parsed JSON (None if not JSON)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)
        if "exception" in raw:
            raise AssertionError(f"tool call failed in the client: {raw['exception']}")
        self.text: str = raw["text"]
        self.is_error: bool = raw["is_error"]

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def keys(self) -> list[str]:
        return list(self.json)

    def __repr__(self) -> str:
        return f"Result(is_error={self.is_error}, text={self.text!r})"


class AgentBase:
    name: str

    def call(
        self, tool: str, args: Mapping[str, Any] | None = None, timeout_s: float = CALL_TIMEOUT_S
    ) -> Result:
        raise NotImplementedError

    def ok(self, tool: str, args: Mapping[str, Any] | None = None, **kw: Any) -> dict:
        """Call and parse; fail the test on an MCP error result."""
        result = self.call(tool, args, **kw)
        assert not result.is_error, result
        return result.json

    def claim(self, session_id: str) -> dict:
        body = self.ok("claim_session", {"session_id": session_id})
        assert body["ok"] is True and body["session_id"] == session_id, body
        self.session_id = session_id
        return body

    def entry(self) -> dict:
        return self.ok("get_my_session")["entry"]

    def server_pid(self) -> int:
        return int(self.entry()["server_pid"])

    def read(self) -> dict:
        return self.ok("read_my_messages")


class DirectAgent(AgentBase):
    """An MCP client in this process (background event loop) with its own ``oxtail-mcp`` child."""

    def __init__(self, name: str, env: Mapping[str, str], cwd: Path, server_log: Path) -> None:
        from anyio.from_thread import start_blocking_portal
        from mcp import StdioServerParameters

        self.name = name
        self.session_id: str | None = None
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(start_blocking_portal())
        self._errlog = self._stack.enter_context(open(server_log, "a", buffering=1))  # noqa: SIM115
        params = StdioServerParameters(command=SERVER_COMMAND, args=[], env=dict(env), cwd=str(cwd))
        self.holder = Holder(params, self._errlog)
        self._tg_ready = threading.Event()
        self._tg: Any = None
        self._stopped = threading.Event()
        self._portal.start_task_soon(self._group)
        self._tg_ready.wait(10)

    async def _group(self) -> None:
        import anyio

        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._tg_ready.set()
            await anyio.to_thread.run_sync(self._stopped.wait)
            tg.cancel_scope.cancel()

    def start(self) -> DirectAgent:
        self._portal.call(self.holder.start, self._tg)
        return self

    def call(
        self, tool: str, args: Mapping[str, Any] | None = None, timeout_s: float = CALL_TIMEOUT_S
    ) -> Result:
        future = self._portal.start_task_soon(self.holder.call, tool, args)
        return Result(future.result(timeout=timeout_s))

    def restart(self) -> None:
        self._portal.call(self.holder.restart, self._tg)

    def start_responder(self, interval_ms: float = 10, prefix: str = "re: ") -> None:
        self._portal.call(self.holder.responder, interval_ms, prefix, self._tg)

    def responder_log(self) -> list[dict]:
        return list(self.holder.responder_log)

    def close(self) -> None:
        try:
            self._portal.call(self.holder.stop)
        finally:
            self._stopped.set()
            self._stack.close()


class PaneAgent(AgentBase):
    """An agent process that is the foreground program of a private tmux server's pane."""

    def __init__(self, world: World, name: str, spec_path: Path, sock: str, log: Path) -> None:
        self.world = world
        self.name = name
        self.session_id: str | None = None
        self.spec_path = spec_path
        self.sock = sock
        self.log = log
        self.pane: str | None = None

    def _request(self, request: Mapping[str, Any], timeout_s: float = CALL_TIMEOUT_S) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(self.sock)
            conn.sendall((json.dumps(request) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        if not data:
            raise AssertionError(f"agent {self.name} closed the connection; log:\n{self.log_text()}")
        return json.loads(data)

    def log_text(self) -> str:
        parts = []
        for path in (self.log, self.world.server_log):
            with suppress(OSError):
                parts.append(f"--- {path}\n{path.read_text()[-4000:]}")
        return "\n".join(parts)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                info = self._request({"op": "info"}, timeout_s=5)
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.02)
                continue
            self.pid = info["pid"]
            self.pane = info["tmux_pane"]
            return
        raise AssertionError(f"agent {self.name} did not come up; log:\n{self.log_text()}")

    def call(
        self, tool: str, args: Mapping[str, Any] | None = None, timeout_s: float = CALL_TIMEOUT_S
    ) -> Result:
        return Result(self._request({"op": "call", "tool": tool, "args": dict(args or {})}, timeout_s))

    def keys(self) -> list[tuple[float, str]]:
        """Every chunk typed into this agent's pane so far, as ``(monotonic time, text)``."""
        return [(t, text) for t, text in self._request({"op": "keys"})["keys"]]

    def typed(self) -> str:
        return "".join(text for _, text in self.keys())

    def wait_typed(self, expected: str, timeout_s: float = 10.0) -> list[tuple[float, str]]:
        """Wait until the pane has received exactly ``expected`` (all chunks joined); return the chunks."""
        deadline = time.monotonic() + timeout_s
        while True:
            keys = self.keys()
            joined = "".join(text for _, text in keys)
            if joined == expected or time.monotonic() > deadline:
                assert joined == expected, f"pane {self.name} received {joined!r}, expected {expected!r}"
                return keys
            time.sleep(0.02)

    def restart(self) -> None:
        assert self._request({"op": "restart"}) == {"ok": True}

    def start_responder(self, interval_ms: float = 10, prefix: str = "re: ") -> None:
        self._request({"op": "responder", "interval_ms": interval_ms, "prefix": prefix})

    def responder_log(self) -> list[dict]:
        return self._request({"op": "responder_log"})["log"]

    def close(self) -> None:
        with suppress(OSError):
            self._request({"op": "stop"}, timeout_s=15)


def wake_timing(keys: Iterable[tuple[float, str]]) -> tuple[str, float]:
    """For chunks ``WAKE_TEXT`` then ``"\\n"``: the text received and the gap text -> Enter, in seconds."""
    keys = list(keys)
    text = "".join(t for _, t in keys)
    enter_at = next(t for t, chunk in keys if "\n" in chunk)
    text_done = (
        max(t for t, chunk in keys if chunk.strip() and "\n" not in chunk) if len(keys) > 1 else enter_at
    )
    return text, enter_at - text_done


class World:
    """One test's universe: HOME, OXTAIL_HOME, sockets, logs, agents; optionally a private tmux server."""

    def __init__(self, tmp_path: Path, tmux: Any = None) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.oxtail_home = tmp_path / "oxtail"
        self.home.mkdir(exist_ok=True)
        self.tmux_tmpdir = tmp_path / "tmux-tmpdir"
        self.tmux_tmpdir.mkdir(exist_ok=True)
        self.sock_dir = tempfile.mkdtemp(prefix="oxe-")  # UNIX socket paths must stay short
        self.server_log = tmp_path / "servers.log"
        self.tmux = tmux
        self.agents: list[AgentBase] = []

    def project(self, name: str, git: bool = True) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        if git:
            (path / ".git").mkdir(exist_ok=True)
        return path.resolve()

    def env(self, extra: Mapping[str, str] | None = None) -> dict:
        return base_env(self.home, self.oxtail_home, self.tmux_tmpdir, extra)

    def store(self) -> Any:
        from oxtail_fs.store.fs_store import FsStore

        return FsStore(self.oxtail_home)

    def set_activity(self, session_id: str, status: str, age_ms: int = 0) -> None:
        from oxtail_core.model import ActivityMarker

        self.store().activity_put(session_id, ActivityMarker(status, int(time.time() * 1000) - age_ms))

    def run_hook(self, event: str, session_id: str) -> None:
        """Run the real ``oxtail-mcp hook <event>`` with the payload Claude Code sends for
        ``session_id``: ``stop`` on an empty inbox leaves it idle, ``userpromptsubmit`` busy."""
        names = {"stop": "Stop", "userpromptsubmit": "UserPromptSubmit"}
        payload: dict[str, Any] = {
            "session_id": session_id,
            "cwd": str(self.tmp),
            "hook_event_name": names[event],
        }
        if event == "stop":
            payload["stop_hook_active"] = False
        done = subprocess.run(
            [SERVER_COMMAND, "hook", event],
            input=json.dumps(payload).encode(),
            env=self.env(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, b""), done

    def registry_file(self, pid: int) -> Path:
        return self.oxtail_home / "registry" / f"{pid}.json"

    def direct(self, name: str, cwd: Path, env: Mapping[str, str] | None = None) -> DirectAgent:
        return self.directs([(name, cwd, env)])[0]

    def directs(self, specs: Iterable[tuple[str, Path, Mapping[str, str] | None]]) -> list[DirectAgent]:
        """Start several direct agents; their servers start in parallel."""
        extra_tmux = {}
        if self.tmux is not None:
            base = os.path.realpath(os.environ.get("TMUX_TMPDIR") or "/tmp")
            socket_path = os.path.join(base, f"tmux-{os.getuid()}", self.tmux.socket_name)
            extra_tmux = {"TMUX": f"{socket_path},0,0"}
        agents = [
            DirectAgent(name, self.env({**extra_tmux, **(env or {})}), cwd, self.server_log)
            for name, cwd, env in specs
        ]
        self.agents.extend(agents)
        futures = [a._portal.start_task_soon(a.holder.start, a._tg) for a in agents]
        for future in futures:
            future.result(timeout=START_TIMEOUT_S)
        return agents

    def panes(
        self,
        specs: Iterable[tuple[str, Path, Mapping[str, str] | None]],
        *,
        window_of: Mapping[str, str] = {},
        client_name: str | None = None,
        env_only: Iterable[str] | None = None,
        stamp_busy_on_text: Mapping[str, str] = {},
    ) -> list[PaneAgent]:
        """Start pane agents, each in a new tmux session named by its name (or a new window of the
        session ``window_of[name]``); all start at once, then this waits for every one.

        ``client_name`` is the clientInfo.name their handshakes send; ``env_only`` the only variables
        their servers get (TMUX and TMUX_PANE are the pane's own), as a host with an allow-list does.
        ``stamp_busy_on_text[name]``: the session that agent marks busy when text reaches its pane."""
        assert self.tmux is not None, "pane agents need World(tmp_path, tmux=private server)"
        agents = []
        for name, cwd, env in specs:
            idx = len(self.agents) + len(agents)
            spec_path = self.tmp / f"agent-{idx}.json"
            sock = os.path.join(self.sock_dir, f"a{idx}.sock")
            log = self.tmp / f"agent-{idx}.log"
            spec = {
                "env": self.env(env),
                "cwd": str(cwd),
                "command": SERVER_COMMAND,
                "socket": sock,
                "server_log": str(self.server_log),
                "client_name": client_name,
                "env_only": sorted(env_only) if env_only is not None else None,
                "stamp_busy_on_text": stamp_busy_on_text.get(name),
            }
            spec_path.write_text(json.dumps(spec))
            command = f"exec {sys.executable} {HERE} agent {spec_path} 2>>{log}"
            session = window_of.get(name)
            if session is None:
                self.tmux.new_session(name, command, cwd=str(cwd))
            else:
                self.tmux.raw("new-window", "-d", "-t", session, "-c", str(cwd), command)
            agents.append(PaneAgent(self, name, spec_path, sock, log))
        self.agents.extend(agents)
        deadline = time.monotonic() + START_TIMEOUT_S
        for agent in agents:
            agent.wait_ready(deadline)
        return agents

    def close(self) -> None:
        for agent in self.agents:
            with contextlib.suppress(Exception):  # teardown must reach every agent
                agent.close()
        for entry in os.listdir(self.sock_dir):
            os.unlink(os.path.join(self.sock_dir, entry))
        os.rmdir(self.sock_dir)


@contextmanager
def world(tmp_path: Path, *, tmux: bool = False) -> Iterator[World]:
    """A World, with a private tmux server if asked; everything is stopped on exit."""
    with ExitStack() as stack:
        server = None
        if tmux:
            # imported here, not at the top: this file also runs as the pane agent's script,
            # where the tests package is not importable (and not needed)
            from tests.support.tmux import private_tmux

            server = stack.enter_context(private_tmux())
        w = World(tmp_path, server)
        try:
            yield w
        finally:
            w.close()


def spawn_raw(w: World, cwd: Path) -> subprocess.Popen[bytes]:
    """One ``oxtail-mcp`` on raw pipes (no MCP client): for tests that drive the bytes themselves."""
    return subprocess.Popen(
        [SERVER_COMMAND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=w.env(),
        cwd=cwd,
    )


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.01) -> Any:
    """Poll until ``predicate()`` is truthy; return it, or its last (falsy) value after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def sid(n: int) -> str:
    """A distinct lowercase UUID-shaped session id."""
    return f"{n:08x}-0000-4000-8000-{n:012x}"


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "agent":
    agent_main(sys.argv[2])
