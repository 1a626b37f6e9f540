"""A stand-in for a Claude Code session starting, run as its own process.

``python fake_claude.py <spec.json>``. Like Claude Code 2.1.197, it first runs every SessionStart
command of ``settings.json`` through ``sh -c`` with the documented payload on stdin (no matcher:
every source), then starts ``oxtail-mcp`` as its own MCP child over stdio with the official client,
*without* ``CLAUDE_CODE_SESSION_ID`` in the child's environment (what an MCP child of a host that
strips it sees), and calls the tools of ``spec["calls"]``.

Spec: ``settings`` (path), ``cwd``, ``env`` (for hooks and the server; a ``TMUX`` / ``TMUX_PANE`` of
our own, as in a tmux pane, is passed on), ``server`` (command), ``session_id``, ``transcript_path``,
``source``, ``calls`` (tool names, called in order, no arguments), and optionally ``out`` (write the
result there instead of stdout) and ``hold`` (keep the session, and so its server, alive until that
path exists). The result is one JSON object: ``hooks`` (rc, stdout, stderr of each SessionStart
command), ``results`` (each call's decoded JSON text), ``pid`` (this process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_hooks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    settings = json.loads(Path(spec["settings"]).read_text())
    payload = {
        "session_id": spec["session_id"],
        "transcript_path": spec["transcript_path"],
        "cwd": spec["cwd"],
        "hook_event_name": "SessionStart",
        "source": spec.get("source", "startup"),
    }
    runs = []
    for group in settings.get("hooks", {}).get("SessionStart", []):
        for handler in group.get("hooks", []):
            done = subprocess.run(
                ["/bin/sh", "-c", handler["command"]],
                input=json.dumps(payload),
                capture_output=True,
                text=True,
                cwd=spec["cwd"],
                env=spec["env"],
                timeout=60,
                check=False,
            )
            runs.append({"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr})
    return runs


async def session(spec: dict[str, Any], hooks: list[dict[str, Any]]) -> None:
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {**spec["env"], **{k: os.environ[k] for k in ("TMUX", "TMUX_PANE") if k in os.environ}}
    params = StdioServerParameters(command=spec["server"], args=[], env=env, cwd=spec["cwd"])
    results = []
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as client:
            await client.initialize()
            for tool in spec["calls"]:
                result = await client.call_tool(tool, {})
                results.append(json.loads(result.content[0].text))  # type: ignore[union-attr]
            text = json.dumps({"hooks": hooks, "results": results, "pid": os.getpid()})
            if spec.get("out"):
                Path(spec["out"] + ".tmp").write_text(text)
                os.replace(spec["out"] + ".tmp", spec["out"])
            else:
                print(text)
            while spec.get("hold") and not Path(spec["hold"]).exists():
                await anyio.sleep(0.05)


def main() -> None:
    import anyio

    spec = json.loads(Path(sys.argv[1]).read_text())
    anyio.run(session, spec, run_hooks(spec))


if __name__ == "__main__":
    main()
