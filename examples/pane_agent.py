"""A stand-in for an agent session living in a tmux pane (used by examples/mcp_demo.py).

Like Claude Code or Codex, it runs its own ``oxtail-mcp`` child over stdio. Its
"composer" is the pane's terminal: every line typed into the pane (a wake line
from a peer) makes it read its messages and answer the questions among them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client


def server_command() -> str:
    local = Path(sys.executable).with_name("oxtail-mcp")
    return str(local) if local.exists() else (shutil.which("oxtail-mcp") or "oxtail-mcp")


async def call(session: ClientSession, tool: str, args: dict[str, object]) -> dict[str, object]:
    result = await session.call_tool(tool, args)
    text = result.content[0].text  # type: ignore[union-attr]
    return json.loads(text) if not result.is_error else {"error": text}


async def main(session_id: str, name: str, answer: str) -> None:
    params = StdioServerParameters(command=server_command(), args=[], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await call(session, "claim_session", {"session_id": session_id})
        await call(session, "set_my_state", {"purpose": f"{name}: waiting for questions"})
        print(f"[{name}] ready as {session_id}", flush=True)
        while True:
            line = (await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)).rstrip("\n")
            print(f"[{name}] terminal received: {line!r}", flush=True)
            if line.strip() == "quit" or not line:
                return
            inbox = await call(session, "read_my_messages", {})
            for message in inbox.get("messages", []):  # type: ignore[union-attr]
                print(f"[{name}] message: {message['body']!r}", flush=True)
                if message.get("request_id"):
                    reply = await call(
                        session, "reply_to_message", {"message_id": message["id"], "body": answer}
                    )
                    print(f"[{name}] replied: {json.dumps(reply)}", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
