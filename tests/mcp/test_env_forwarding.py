"""A Codex-launched server whose environment was stripped says so (issue 14, problem 4)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from oxtail_mcp.identity.client import forwarded_nothing
from tests.support.e2e import SERVER_COMMAND


async def _connect_and_read_stderr(env: dict[str, str], cwd: Path, log: Path) -> str:
    params = StdioServerParameters(command=SERVER_COMMAND, args=[], env=env, cwd=str(cwd))
    with log.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await session.call_tool("get_my_session", {})
    return log.read_text()


def test_a_server_started_with_codexs_bare_environment_says_nothing_was_forwarded(tmp_path: Path) -> None:
    bare = {name: os.environ[name] for name in ("LANG", "PATH", "SHELL", "TERM") if name in os.environ}
    bare["HOME"] = str(tmp_path)
    stderr = asyncio.run(_connect_and_read_stderr(bare, tmp_path, tmp_path / "bare.log"))
    assert "OXTAIL_HOME, TMUX, TMUX_PANE and OXTAIL_* settings were not forwarded" in stderr
    assert "env_vars" in stderr and "Traceback" not in stderr


def test_a_server_with_forwarded_settings_says_nothing_about_it(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "OXTAIL_HOME": str(tmp_path / "state")}
    stderr = asyncio.run(_connect_and_read_stderr(env, tmp_path, tmp_path / "fwd.log"))
    assert "not forwarded" not in stderr


def test_only_codexs_bare_set_counts_as_forwarded_nothing() -> None:
    assert forwarded_nothing({"HOME": "/h", "LANG": "C", "PATH": "/bin", "SHELL": "sh", "TERM": "x"})
    assert forwarded_nothing({"HOME": "/h", "PATH": "/bin", "SSL_CERT_FILE": "/c", "LC_CTYPE": "C.UTF-8"})
    assert not forwarded_nothing({"HOME": "/h", "PATH": "/bin", "TMUX": "/tmp/t,1,0"})
    assert not forwarded_nothing({})
