"""A live demo of oxtail-mcp: real MCP servers, driven by the official MCP client.

alice and carol are driven from here; bob lives in a tmux pane when tmux is
installed (a private tmux server, killed at the end), so alice's ask makes
oxtail type the wake line into bob's terminal, and bob answers because of it.
Without tmux, bob is driven from here too and answers by polling.

Shows: claim_session, set_my_state, list_project_sessions, send_message,
read_my_messages, ask_peer answered, ask_peer timing out, and the late reply
pulling the asker back (wake_reason late_reply_to_pending).
Run: ``bash scripts/demo.sh``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

ALICE = "aaaaaaaa-1111-4111-8111-000000000001"
BOB = "bbbbbbbb-2222-4222-8222-000000000002"
CAROL = "cccccccc-3333-4333-8333-000000000003"
T0 = time.monotonic()
HERE = Path(__file__).resolve().parent


def say(who: str, text: str) -> None:
    print(f"[{time.monotonic() - T0:6.2f}s] {who:<5} {text}", flush=True)


def oxtail_mcp() -> str:
    local = Path(sys.executable).with_name("oxtail-mcp")
    return str(local) if local.exists() else (shutil.which("oxtail-mcp") or "oxtail-mcp")


class Demo:
    def __init__(self, root: Path) -> None:
        self.project = root / "project"
        (self.project / ".git").mkdir(parents=True)
        self.env = {**os.environ, "HOME": str(root / "home"), "OXTAIL_HOME": str(root / "state")}
        (root / "home").mkdir()
        self.tmux_name = f"oxtail-demo-{os.getpid()}"
        self.tmux_ok = shutil.which("tmux") is not None

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.tmux_name, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def start_bob_pane(self) -> bool:
        env_args = [f"-e{key}={self.env[key]}" for key in ("HOME", "OXTAIL_HOME")]
        command = f"{sys.executable} {HERE / 'pane_agent.py'} {BOB} bob 'bob says: 42'"
        started = self.tmux(
            "new-session",
            "-d",
            "-s",
            "bob",
            "-x",
            "160",
            "-y",
            "40",
            "-c",
            str(self.project),
            *env_args,
            command,
        )
        if started.returncode != 0:
            say("demo", f"tmux failed ({started.stderr.strip()}); bob will poll instead")
            return False
        socket = self.tmux("display-message", "-p", "#{socket_path},#{pid},0").stdout.strip()
        self.env["TMUX"] = socket  # our servers talk to this private tmux server
        return True

    def capture_bob(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "bob").stdout

    def params(self) -> StdioServerParameters:
        return StdioServerParameters(command=oxtail_mcp(), args=[], env=self.env, cwd=str(self.project))


async def call(session: ClientSession, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await session.call_tool(tool, args or {})
    text = result.content[0].text  # type: ignore[union-attr]
    if result.is_error:
        raise RuntimeError(text)
    return json.loads(text)  # type: ignore[no-any-return]


def show(who: str, tool: str, out: dict[str, Any]) -> None:
    say(who, f"{tool} -> {json.dumps(out, ensure_ascii=False)}")


async def step(session: ClientSession, who: str, tool: str, args: dict[str, Any] | None = None) -> None:
    """Call a tool and print what it returned."""
    show(who, tool, await call(session, tool, args))


async def wait_until_listed(session: ClientSession, session_id: str, seconds: float = 20) -> None:
    """bob starts in his pane at his own pace; wait until the registry lists him."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listing = await call(session, "list_project_sessions")
        if any(row["client_session_id"] == session_id for row in listing["sessions"]):
            return
        await anyio.sleep(0.1)
    raise RuntimeError(f"{session_id} never showed up")


async def poll_and_answer(session: ClientSession, name: str, answer: str, delay: float) -> None:
    while True:
        inbox = await call(session, "read_my_messages")
        for message in inbox["messages"]:
            if message.get("request_id"):
                await anyio.sleep(delay)
                await step(session, name, "reply_to_message", {"message_id": message["id"], "body": answer})
        await anyio.sleep(0.05)


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="oxtail-mcp-demo-") as tmp:
        demo = Demo(Path(tmp))
        demo.tmux_ok = demo.tmux_ok and "--no-tmux" not in sys.argv
        bob_in_tmux = demo.tmux_ok and demo.start_bob_pane()
        where = "lives in a tmux pane" if bob_in_tmux else "polls (no tmux)"
        say("demo", f"state in {demo.env['OXTAIL_HOME']}; bob {where}")
        try:
            await run(demo, bob_in_tmux)
        finally:
            if bob_in_tmux:
                shown = "\n    ".join(line for line in demo.capture_bob().splitlines() if line.strip())
                say("demo", "bob's terminal:\n    " + shown)
                demo.tmux("kill-server")


async def run(demo: Demo, bob_in_tmux: bool) -> None:
    async with (
        stdio_client(demo.params()) as (ar, aw),
        ClientSession(ar, aw) as alice,
        stdio_client(demo.params()) as (cr, cw),
        ClientSession(cr, cw) as carol,
    ):
        await alice.initialize()
        await carol.initialize()
        await step(alice, "alice", "claim_session", {"session_id": ALICE})
        await step(carol, "carol", "claim_session", {"session_id": CAROL})
        await step(alice, "alice", "set_my_state", {"purpose": "refactoring the parser"})
        async with anyio.create_task_group() as tg:
            if bob_in_tmux:
                await wait_until_listed(alice, BOB)
            else:
                await _start_polling_bob(demo, tg)
            await step(alice, "alice", "list_project_sessions", {"compact": True})
            heads_up = {"target": BOB, "body": "heads-up: parser.py is mine", "wake": "off"}  # FYI: no wake
            await step(alice, "alice", "send_message", heads_up)
            say("alice", "ask_peer(bob, 'what is 6*7?') ...")
            await step(
                alice, "alice", "ask_peer", {"target": BOB, "body": "what is 6*7?", "timeout_ms": 15000}
            )
            tg.start_soon(poll_and_answer, carol, "carol", "carol says: 42 (sorry, slow)", 2.0)
            say("alice", "ask_peer(carol, 'and you?', timeout_ms=1000) ...")
            await step(alice, "alice", "ask_peer", {"target": CAROL, "body": "and you?", "timeout_ms": 1000})
            say("alice", "timed out; the question stays open as a pending ask ...")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                inbox = await call(alice, "read_my_messages")
                if inbox["count"]:
                    show("alice", "read_my_messages", inbox)
                    break
                await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
        if bob_in_tmux:
            demo.tmux("send-keys", "-t", "bob", "quit", "Enter")


async def _start_polling_bob(demo: Demo, tg: anyio.abc.TaskGroup) -> None:
    """Without tmux, bob is one more MCP client here, answering by polling."""
    ready = anyio.Event()

    async def bob_main() -> None:
        async with stdio_client(demo.params()) as (br, bw), ClientSession(br, bw) as bob:
            await bob.initialize()
            await call(bob, "claim_session", {"session_id": BOB})
            ready.set()
            await poll_and_answer(bob, "bob", "bob says: 42", 0.0)

    tg.start_soon(bob_main)
    await ready.wait()


if __name__ == "__main__":
    anyio.run(main)
