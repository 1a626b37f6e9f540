"""``oxtail-mcp print-skill``: the packaged join instructions, printed or installed where clients look."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxtail_mcp.commands import skills

CLI = str(Path(sys.executable).with_name("oxtail-mcp"))


def cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, HOME=str(home)) | env
    if "CODEX_HOME" not in env:
        full.pop("CODEX_HOME", None)
    return subprocess.run([CLI, "print-skill", *args], env=full, capture_output=True, text=True, check=False)


def test_claude_command_follows_the_join_workflow(tmp_path: Path) -> None:
    done = cli("claude", home=tmp_path)
    assert done.returncode == 0
    text = done.stdout
    assert text.startswith("---\ndescription: ")
    assert 'echo "$CLAUDE_CODE_SESSION_ID"' in text
    assert "`claim_session`" in text and "transcript_path" in text
    assert "not running inside Claude Code" in text
    assert not (tmp_path / ".claude").exists()


def test_codex_skill_front_matter_and_workflow(tmp_path: Path) -> None:
    text = cli("codex", home=tmp_path).stdout
    assert text.startswith("---\nname: oxtail-join\ndescription: ")
    assert "mcp__oxtail__get_my_session" in text and "mcp__oxtail__claim_session" in text
    assert "${CODEX_THREAD_ID:-$CODEX_COMPANION_SESSION_ID}" in text
    assert "Registered: <session_id>\nTranscript: <transcript_path>" in text


def test_install_writes_each_client_s_files_once(tmp_path: Path) -> None:
    done = cli("claude", "--install", home=tmp_path)
    target = tmp_path / ".claude" / "commands" / "oxtail-join.md"
    assert done.stdout == f"Wrote {target}\n"
    assert target.read_text() == skills.text("claude/oxtail-join.md")
    assert cli("claude", "--install", home=tmp_path).stdout == f"Up to date: {target}\n"
    codex_home = tmp_path / "codex-home"
    done = cli("codex", "--install", home=tmp_path, CODEX_HOME=str(codex_home))
    skill_dir = codex_home / "skills" / "oxtail-join"
    assert done.stdout.splitlines() == [
        f"Wrote {skill_dir / 'SKILL.md'}",
        f"Wrote {skill_dir / 'agents/openai.yaml'}",
    ]
    assert 'value: "oxtail"' in (skill_dir / "agents" / "openai.yaml").read_text()


@pytest.mark.parametrize("args", [(), ("cursor",), ("claude", "codex"), ("claude", "--force")])
def test_bad_arguments_print_usage(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = cli(*args, home=tmp_path)
    assert (done.returncode, done.stderr) == (2, skills.USAGE + "\n")


@pytest.mark.parametrize("client", ["claude", "codex"])
def test_the_skills_teach_reserving_before_editing_shared_files_and_releasing_after(
    tmp_path: Path, client: str
) -> None:
    text = cli(client, home=tmp_path).stdout
    assert "reserve_paths" in text and "release_paths" in text and "conflicts" in text
