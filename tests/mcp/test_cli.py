"""The ``oxtail-mcp`` console script as a person (or a host) runs it: a real subprocess each time."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_mcp import COMPATIBLE_VERSION, __version__
from oxtail_mcp.commands import status
from oxtail_mcp.commands.terminal import inert

EXE = str(Path(sys.executable).with_name("oxtail-mcp"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, HOME=str(tmp_path), OXTAIL_HOME=str(tmp_path / "state"))


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], check=False, input=stdin, env=env, capture_output=True, text=True, timeout=60
    )


def test_version_is_one_version_and_names_the_server_info(env: dict[str, str]) -> None:
    done = cli(env, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"oxtail-mcp {__version__} (MCP serverInfo: oxtail {COMPATIBLE_VERSION})"


@pytest.mark.parametrize(
    "command", ["status", "diagnose", "install-hook", "uninstall-hook", "print-config", "hook"]
)
def test_every_command_answers_help_without_running(env: dict[str, str], command: str) -> None:
    done = cli(env, command, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: oxtail-mcp {command}")
    assert not Path(env["OXTAIL_HOME"]).exists()


def test_an_unknown_command_exits_2_with_one_line_and_starts_no_server(env: dict[str, str]) -> None:
    done = cli(env, "statsu")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "invalid choice: 'statsu'" in done.stderr
    assert not Path(env["OXTAIL_HOME"]).exists()


def test_a_state_dir_that_is_a_file_is_one_clear_line_and_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = cli(dict(env, OXTAIL_HOME=str(tmp_path / "file")), "serve")
    assert done.returncode == 1
    assert done.stderr.startswith("oxtail-mcp: cannot start:") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_bare_oxtail_mcp_on_a_terminal_prints_help_instead_of_serving(env: dict[str, str]) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [EXE], check=False, stdin=follower, env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: oxtail-mcp")
    assert not Path(env["OXTAIL_HOME"]).exists()


def test_status_works_when_no_state_dir_can_be_made(env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        done = cli(dict(env, HOME=str(home), OXTAIL_HOME=""), "status")
        diag = cli(dict(env, HOME=str(home), OXTAIL_HOME=""), "diagnose")
    finally:
        home.chmod(0o700)
    assert done.returncode == 0 and "No oxtail state" in done.stdout
    assert diag.returncode == 0 and "Traceback" not in diag.stderr


def test_status_watch_into_a_closed_pipe_ends_without_a_traceback(env: dict[str, str]) -> None:
    Path(env["OXTAIL_HOME"]).mkdir()
    shell = f"{EXE} status --watch | head -n 1"
    done = subprocess.run(
        ["sh", "-c", shell], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip()
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_an_osc52_purpose_reaches_the_terminal_as_inert_text() -> None:
    purpose = "fix \x1b]52;c;ZXZpbA==\x07 now\x9b2J"
    row = status.Row(
        client="claude",
        session_id="s",
        server_pid=1,
        tmux_session="t",
        purpose=purpose,
        activity="idle",
        activity_age_ms=0,
        activity_stale=False,
        inbox=0,
        open_asks=0,
        last_wake=None,
        last_wake_at=None,
    )
    text = status.table([row], "/p", color=True)
    assert "\x1b]" not in text and "\x07" not in text and "\x9b" not in text
    assert inert(purpose) in text
