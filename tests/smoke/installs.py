"""Installs made the way the docs tell a person to make them, and the checks each must pass.

The smoke lane never uses the editable checkout: ``bash scripts/build_wheels.sh`` builds the three
wheels into ``dist/`` (gitignored), and each install takes them from there, with the third-party
dependencies coming from the machine's configured index. The install commands are the documented
ones, run word for word by bash from the repository root (:data:`DOCUMENTED`; a test checks that
README.md or docs/getting-started.md prints each of them).

Every install lives in a :class:`Sandbox`: a temporary HOME, with the pipx and uv folders named
explicitly inside it, so a PIPX_HOME or UV_TOOL_DIR of the person running the tests can never be
the one written, and nothing of the checkout can leak into the install (PYTHONPATH, VIRTUAL_ENV and
the dev venv's bin are dropped, and so is CLAUDE_CONFIG_DIR, so the setup step writes only the
sandbox's). XDG_CONFIG_HOME keeps pointing at the real configuration, which is where a user-level
pip or uv index setting lives.

:func:`setup_step` is the one place the smoke lane configures the clients; :func:`probe` and
:func:`exchange` drive installed ``oxtail-mcp`` servers over stdio with the official MCP client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import attrs

from tests.support.e2e import base_env, sid

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "dist"
# folder = import name; the distribution name uses "-"
DISTRIBUTIONS = ("oxtail_core", "oxtail_fs", "oxtail_mcp", "oxtail_redis")

# The install commands of README.md and docs/getting-started.md, run verbatim from the repository root.
DOCUMENTED: dict[str, tuple[str, ...]] = {
    "build": ("bash scripts/build_wheels.sh",),
    "venv": (
        "python3 -m venv ~/.venvs/oxtail",
        "~/.venvs/oxtail/bin/pip install --find-links dist oxtail-mcp",
    ),
    "pipx": ('pipx install --pip-args="--find-links=dist" oxtail-mcp',),
    "uv-wheels": ("uv tool install --find-links dist oxtail-mcp",),
    "uv-clone": ("uv tool install ./oxtail_mcp --with ./oxtail_core --with ./oxtail_fs",),
    "redis-venv": (
        "python3 -m venv ~/.venvs/oxtail",
        "~/.venvs/oxtail/bin/pip install --find-links dist 'oxtail-mcp[redis]'",
    ),
}
DOCS = (REPO / "README.md", REPO / "docs" / "getting-started.md")

CORE_TOOLS = frozenset(  # the 14 tools of 0.32.1 (docs/tools.md)
    {
        "list_project_sessions",
        "read_session",
        "register_my_session",
        "claim_session",
        "get_my_session",
        "set_my_state",
        "send_message",
        "message_status",
        "reply_to_message",
        "read_my_messages",
        "my_open_work",
        "complete_work",
        "block_work",
        "ask_peer",
    }
)
CALL_TIMEOUT_S = 120.0  # one whole MCP session, server start-up included (slow under load)
COMMAND_TIMEOUT_S = 300.0

# Variables that would let the checkout into an install, send an install elsewhere, or point a client's
# configuration outside the sandbox (base_env already drops TMUX*, CODEX_*, CLAUDE_CODE_*, OXTAIL_*).
_DROPPED = {
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_USER",
    "CLAUDE_CONFIG_DIR",
}
_DROPPED_PREFIXES = ("UV_", "XDG_", "PIPX_")


@attrs.frozen
class Sandbox:
    """A temporary HOME for one install, and how to run a command inside it.

    ``tools`` is a folder holding only ``pipx`` and ``uv`` (links into the tools venv), so that a
    bare ``python3`` or ``pip`` on the documented lines is never one of ours. ``caches`` is shared
    by every sandbox of a run (download caches only, never an install).
    """

    root: Path
    tools: Path
    caches: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def bin(self) -> Path:
        """Where pipx and uv put console scripts: ``~/.local/bin`` of the sandbox HOME."""
        return self.home / ".local" / "bin"

    @property
    def project(self) -> Path:
        """A project the servers run in (a git marker, so both are scoped to it)."""
        return self.root / "project"

    @classmethod
    def make(cls, root: Path, tools: Path, caches: Path) -> Sandbox:
        box = cls(root, tools, caches)
        for folder in (box.home, root / "tmux", box.project / ".git"):
            folder.mkdir(parents=True, exist_ok=True)
        return box

    def env(self) -> dict[str, str]:
        """The environment of every command and server of this sandbox (the module docstring)."""
        env = base_env(self.home, self.home / ".oxtail", self.root / "tmux")
        for key in list(env):
            if key in _DROPPED or key.startswith(_DROPPED_PREFIXES):
                del env[key]
        dev_bin = str(Path(sys.executable).parent)
        path = [entry for entry in env.get("PATH", os.defpath).split(os.pathsep) if entry != dev_bin]
        env.update(
            PATH=os.pathsep.join([str(self.tools), str(self.bin), *path]),
            XDG_CONFIG_HOME=os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config"),
            PIPX_HOME=str(self.home / ".local" / "share" / "pipx"),
            PIPX_BIN_DIR=str(self.bin),
            UV_TOOL_DIR=str(self.home / ".local" / "share" / "uv" / "tools"),
            UV_TOOL_BIN_DIR=str(self.bin),
            PIP_CACHE_DIR=str(self.caches / "pip"),
            UV_CACHE_DIR=str(self.caches / "uv"),
        )
        return env

    def run(self, *argv: str | Path, cwd: Path = REPO) -> str:
        """Run one command in the sandbox; fail the test with its output if it fails. Returns stdout."""
        done = subprocess.run(
            [str(arg) for arg in argv],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 0, (
            f"{argv} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    def documented(self, lane: str) -> None:
        """Run the documented lines of ``lane``, word for word, with bash in the repository root."""
        for line in DOCUMENTED[lane]:
            self.run("bash", "-c", line)


# ----------------------------------------------------------------------------------------------------------
# THE SETUP STEP. The one place the smoke lane configures the clients for an installed oxtail-mcp.
# Today it runs the commands that exist: `install-hook` (Claude Code), `install-hook --codex`, and
# `print-config`, whose Claude Code entry is the command a client is told to start. When
# `oxtail-mcp setup` lands, this becomes: run `[script, "setup"]`, then read the command from the
# `mcpServers.oxtail` entry it wrote in ~/.claude.json (and check `[mcp_servers.oxtail]` in
# ~/.codex/config.toml). The callers need nothing else to change.
# ----------------------------------------------------------------------------------------------------------


def setup_step(box: Sandbox, script: Path) -> Path:
    """Configure Claude Code and Codex in ``box``'s HOME with ``script setup`` (both clients named: the
    sandbox has neither CLI); return the server command it registered."""
    box.run(script, "setup", "--claude", "--codex", cwd=box.project)
    server = json.loads((box.home / ".claude.json").read_text())["mcpServers"]["oxtail"]
    codex = tomllib.loads((box.home / ".codex" / "config.toml").read_text())["mcp_servers"]["oxtail"]
    assert server["args"] == [] and codex["command"] == server["command"], (server, codex)
    return Path(server["command"])


def hook_commands(box: Sandbox) -> list[str]:
    """Every hook command installed in the sandbox's Claude Code settings and Codex hooks."""
    commands = []
    for path in (box.home / ".claude" / "settings.json", box.home / ".codex" / "hooks.json"):
        for groups in json.loads(path.read_text())["hooks"].values():
            commands += [hook["command"] for group in groups for hook in group["hooks"]]
    return commands


# ----------------------------------------------------------------------------------------------------------
# Driving installed servers with the official MCP client.
# ----------------------------------------------------------------------------------------------------------


@attrs.frozen
class Served:
    """What a server answered to ``initialize`` and ``tools/list``."""

    name: str
    version: str
    tools: frozenset[str]


async def _connect(stack: AsyncExitStack, command: Path, box: Sandbox, errlog: IO[str]) -> tuple[Any, Any]:
    """Start ``command`` under an MCP client that lives as long as ``stack``: (session, initialize result)."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=str(command), args=[], env=box.env(), cwd=str(box.project))
    read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
    session = await stack.enter_async_context(ClientSession(read, write))
    return session, await session.initialize()


async def _call(session: Any, tool: str, args: Mapping[str, Any] | None = None) -> Any:
    result = await session.call_tool(tool, dict(args or {}))
    assert not result.is_error, result
    (item,) = result.content
    return json.loads(item.text)


def _run_async(fn: Any, *args: Any) -> Any:
    import anyio

    async def bounded() -> Any:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return await fn(*args)

    return anyio.run(bounded)


def probe(command: Path, box: Sandbox) -> Served:
    """Start ``command`` as an MCP stdio server: its ``initialize`` answer and its tool names."""

    async def go() -> Served:
        with (box.root / "server.log").open("a") as errlog:
            async with AsyncExitStack() as stack:
                session, initialized = await _connect(stack, command, box, errlog)
                listed = await session.list_tools()
                info = initialized.server_info
                return Served(info.name, info.version, frozenset(tool.name for tool in listed.tools))

    result: Served = _run_async(go)
    return result


def exchange(command: Path, box: Sandbox, body: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two servers of ``command`` in one project: alice and bob claim sessions, alice sends ``body``
    to bob, bob reads his messages. Returns (alice's send_message result, bob's read)."""

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        with (box.root / "server.log").open("a") as errlog:
            async with AsyncExitStack() as stack:
                alice, _ = await _connect(stack, command, box, errlog)
                bob, _ = await _connect(stack, command, box, errlog)
                for session, n in ((alice, 1), (bob, 2)):
                    claimed = await _call(session, "claim_session", {"session_id": sid(n)})
                    assert claimed["ok"] is True, claimed
                sent = await _call(alice, "send_message", {"target": sid(2), "body": body})
                read = await _call(bob, "read_my_messages")
                return sent, read

    result: tuple[dict[str, Any], dict[str, Any]] = _run_async(go)
    return result
