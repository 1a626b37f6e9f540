"""install-hook / uninstall-hook: format-preserving edits of ~/.claude/settings.json (hooks.md §9-10)."""

from __future__ import annotations

import datetime
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxtail_mcp.hooks import installer
from oxtail_mcp.hooks.installer import MARKER_KEY, MARKER_VERSION, command_hash, hook_command
from oxtail_mcp.hooks.jsonc import parse_jsonc

EXE = "/opt/ox tail/bin/oxtail-mcp"
NOW = datetime.datetime(2026, 11, 25, 12, 18, 21, 621000, tzinfo=datetime.UTC)
CLI = str(Path(sys.executable).with_name("oxtail-mcp"))

REFERENCE_V7 = """{
  "hooks": {
    "PreToolUse": [
      { "hooks": [ { "type": "command", "command": "\\"$HOME/.oxtail/hooks/pretooluse.sh\\"" } ] }
    ],
    "Stop": [ { "hooks": [ { "type": "command", "command": "\\"$HOME/.oxtail/hooks/stop.sh\\"" } ] } ],
    "UserPromptSubmit": [
      { "hooks": [ { "type": "command", "command": "\\"$HOME/.oxtail/hooks/userpromptsubmit.sh\\"" } ] }
    ]
  },
  "_oxtailHook": { "version": 7, "installedAt": "2026-01-01T00:00:00.000Z",
                   "hashes": { "pretooluse": "0", "stop": "0", "userpromptsubmit": "0" } }
}
"""

USER_SETTINGS = """{
  // my model choice
  "model": "opus",
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [ { "type": "command", "command": "~/bin/guard.sh" } ] /* keep me */
      },
    ],
  },
}
"""


def command_of(hook_id: str) -> str:
    return hook_command(EXE, hook_id)


def run_install(path: Path, *, dry_run: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = installer.install(path, command_of, dry_run=dry_run, out=out, err=err, now=NOW)
    return code, out.getvalue(), err.getvalue()


def run_uninstall(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = installer.uninstall(path, dry_run=False, out=out, err=err, now=NOW)
    return code, out.getvalue(), err.getvalue()


def settings(path: Path) -> Any:
    return parse_jsonc(path.read_text()).plain()


def commands(doc: Any, event: str) -> list[str]:
    return [h["command"] for entry in doc["hooks"][event] for h in entry["hooks"]]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / ".claude" / "settings.json"


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob("settings.json.oxtail-backup.*"))


def assert_installed(doc: Any) -> None:
    for hook_id, event, _ in installer.MANAGED:
        assert commands(doc, event).count(command_of(hook_id)) == 1
    marker = doc[MARKER_KEY]
    assert marker["version"] == MARKER_VERSION
    assert marker["installedAt"] == "2026-11-25T12:18:21.621Z"
    assert marker["hashes"] == {h: command_hash(command_of(h)) for h, _, _ in installer.MANAGED}


def test_the_command_runs_our_console_script_by_absolute_path() -> None:
    assert hook_command("/usr/local/bin/oxtail-mcp", "stop") == '"/usr/local/bin/oxtail-mcp" hook stop'
    assert hook_command('/weird/$x"/oxtail-mcp', "stop") == "'/weird/$x\"/oxtail-mcp' hook stop"


def test_missing_file_is_created_with_the_four_hooks(path: Path) -> None:
    code, out, _ = run_install(path)
    assert code == 0
    assert_installed(settings(path))
    assert json.loads(path.read_text())  # plain JSON when we wrote all of it
    assert backups(path) == []
    assert f"Installed oxtail hooks (PreToolUse, Stop, UserPromptSubmit, SessionStart) in {path}." in out


def test_empty_file_counts_as_an_empty_object(path: Path) -> None:
    path.parent.mkdir()
    path.write_text("  \n")
    assert run_install(path)[0] == 0
    assert_installed(settings(path))
    assert len(backups(path)) == 1


STRICT_USER_SETTINGS = """{
  "model":   "opus",
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [ { "type": "command", "command": "~/bin/guard.sh" } ]
      }
    ]
  }
}
"""


def run_install_strict(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = installer.install(path, command_of, dry_run=False, out=out, err=err, now=NOW, rewrite_strict=True)
    return code, out.getvalue(), err.getvalue()


def test_user_entries_keys_and_layout_survive_and_a_second_run_changes_nothing(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(STRICT_USER_SETTINGS)
    os.chmod(path, 0o600)
    code, out, err = run_install(path)
    assert code == 0
    text = path.read_text()
    assert '"model":   "opus"' in text and '"matcher": "Bash"' in text  # spliced: the user's layout stays
    assert json.loads(text)  # and Claude Code can read it
    doc = settings(path)
    assert_installed(doc)
    assert commands(doc, "PreToolUse") == ["~/bin/guard.sh", command_of("pretooluse")]
    assert "1 other hook(s) already present" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [backup] = backups(path)
    assert backup.read_text() == STRICT_USER_SETTINGS
    assert backup.name == "settings.json.oxtail-backup.2026-11-25T12-18-21-621Z"
    assert "Backed up existing settings to" in out
    before = path.read_text()
    code, out, _ = run_install(path)
    assert (code, out) == (0, f"oxtail hooks already installed (v{MARKER_VERSION}). No changes.\n")
    assert path.read_text() == before
    assert len(backups(path)) == 1


def test_a_settings_file_with_comments_is_refused_because_claude_code_ignores_it(path: Path) -> None:
    """Claude Code 2.1.197 skips a settings.json with comments or trailing commas as a whole."""
    path.parent.mkdir()
    path.write_text(USER_SETTINGS)
    code, out, err = run_install(path)
    assert code == 1 and out == ""
    assert "Claude Code ignores a settings.json that is not strict JSON" in err
    assert "--rewrite-strict" in err and "Nothing was changed." in err
    assert path.read_text() == USER_SETTINGS and backups(path) == []


def test_rewrite_strict_turns_a_commented_file_into_strict_json_with_a_backup(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(USER_SETTINGS)
    os.chmod(path, 0o600)
    assert run_install_strict(path)[0] == 0
    doc = json.loads(path.read_text())
    assert doc["model"] == "opus"
    assert_installed(doc)
    assert commands(doc, "PreToolUse") == ["~/bin/guard.sh", command_of("pretooluse")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [backup] = backups(path)
    assert backup.read_text() == USER_SETTINGS
    assert run_install(path)[0] == 0 and len(backups(path)) == 1  # now strict: a plain run is a no-op


def test_the_references_entries_are_replaced_in_place(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(REFERENCE_V7)
    assert run_install(path)[0] == 0
    doc = settings(path)
    assert_installed(doc)
    for _, event, _ in installer.MANAGED:
        assert len(doc["hooks"][event]) == 1
    assert "oxtail/hooks/" not in path.read_text()


def test_an_older_marker_of_ours_is_refreshed(path: Path) -> None:
    path.parent.mkdir()
    assert run_install(path)[0] == 0
    moved = path.read_text().replace("/opt/ox tail/bin/oxtail-mcp", "/old/venv/bin/oxtail-mcp")
    path.write_text(moved.replace(f'"version": {MARKER_VERSION}', '"version": 6'))
    assert run_install(path)[0] == 0
    doc = settings(path)
    assert_installed(doc)
    assert "/old/venv" not in path.read_text()


@pytest.mark.parametrize(
    "text",
    [
        '{"hooks": {"Stop": [}',
        "[1, 2]",
        '{"hooks": {"Stop": {}}}',
        '{"hooks": []}',
        '{"a": 1} extra',
        "/* open",
    ],
)
def test_a_settings_file_we_cannot_edit_is_left_alone(path: Path, text: str) -> None:
    path.parent.mkdir()
    path.write_text(text)
    code, _, err = run_install(path)
    assert code == 1
    assert err.startswith(f"install-hook failed: {path}: ") and "Nothing was changed." in err
    assert path.read_text() == text
    assert backups(path) == []


def test_a_symlinked_settings_file_stays_a_symlink(path: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude-settings.json"
    real.parent.mkdir()
    real.write_text(STRICT_USER_SETTINGS)
    path.parent.mkdir()
    path.symlink_to(real)
    assert run_install(path)[0] == 0
    assert path.is_symlink()
    assert_installed(settings(real))


def test_dry_run_prints_a_diff_and_writes_nothing(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(STRICT_USER_SETTINGS)
    code, out, _ = run_install(path, dry_run=True)
    assert code == 0
    assert out.startswith(f"--- {path}\n+++ {path} (new)\n@@")
    assert f'+{" " * 12}"command": {json.dumps(command_of("stop"))}' in out
    assert path.read_text() == STRICT_USER_SETTINGS
    assert backups(path) == []


def test_uninstall_removes_only_ours_and_is_idempotent(path: Path) -> None:
    """Uninstall still edits a commented file (an install by an older version may be in it)."""
    path.parent.mkdir()
    commands_by_id = {hook_id: command_of(hook_id) for hook_id, _, _ in installer.MANAGED}
    path.write_text(installer.installed_text(USER_SETTINGS, commands_by_id, "2026-11-25T12:18:21.621Z"))
    code, out, _ = run_uninstall(path)
    assert (code, out.splitlines()[-1]) == (0, f"Removed oxtail hooks from {path}.")
    text = path.read_text()
    assert "// my model choice" in text and "/* keep me */" in text
    doc = settings(path)
    assert MARKER_KEY not in doc
    assert commands(doc, "PreToolUse") == ["~/bin/guard.sh"]
    assert doc["hooks"]["Stop"] == [] and doc["hooks"]["UserPromptSubmit"] == []
    assert doc["hooks"]["SessionStart"] == []
    assert run_uninstall(path) == (0, "oxtail hooks not installed — nothing to do.\n", "")
    assert path.read_text() == text


def test_uninstall_removes_the_references_entries_too(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(REFERENCE_V7)
    assert run_uninstall(path)[0] == 0
    assert settings(path) == {"hooks": {"PreToolUse": [], "Stop": [], "UserPromptSubmit": []}}


def test_uninstall_without_a_settings_file(path: Path) -> None:
    assert run_uninstall(path) == (0, f"No {path} — nothing to do.\n", "")
    assert not path.exists()


def test_jsonc_reader_keeps_spans() -> None:
    text = '{ "a" : [1, /* c */ "x",], // z\n "b": {"c": null} }'
    root = parse_jsonc(text)
    assert root.plain() == {"a": [1, "x"], "b": {"c": None}}
    node = root.get("a")
    assert node is not None and text[node.start : node.end] == '[1, /* c */ "x",]'


def test_cli_install_print_config_and_uninstall(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path))
    done = subprocess.run([CLI, "install-hook"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    doc = settings(tmp_path / ".claude" / "settings.json")
    assert commands(doc, "PreToolUse") == [f'"{CLI}" hook pretooluse']
    config = subprocess.run([CLI, "print-config"], env=env, capture_output=True, text=True, check=True).stdout
    assert f'"command": "{CLI}"' in config and f'[mcp_servers.oxtail]\ncommand = "{CLI}"' in config
    assert '"mcp__oxtail__ask_peer"' in config
    flag = subprocess.run(
        [CLI, "install-hook", "--print-config"], env=env, capture_output=True, text=True, check=True
    )
    assert flag.stdout == config
    done = subprocess.run([CLI, "uninstall-hook"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert MARKER_KEY not in settings(tmp_path / ".claude" / "settings.json")


def test_freshness_hint_absent_stale_and_ok(tmp_path: Path) -> None:
    from oxtail_mcp.hooks.installer import HINT_ABSENT, freshness_hint

    env = {"HOME": str(tmp_path)}
    assert freshness_hint(env) == HINT_ABSENT  # no settings at all
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    reference_marker = {"_oxtailHook": {"version": 7, "hashes": {"pretooluse": "0" * 16}}}
    settings.write_text(json.dumps(reference_marker))
    stale = freshness_hint(env)
    assert stale is not None and "pretooluse, stop, userpromptsubmit, sessionstart drifted" in stale
    assert installer.main("install-hook", [], env) == 0
    assert freshness_hint(env) is None


def test_the_codex_config_forwards_every_oxtail_setting_the_code_reads() -> None:
    """Codex starts MCP servers with only HOME LANG PATH SHELL TERM: what we read must be forwarded."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    read = set()
    for package in ("oxtail_core", "oxtail_fs", "oxtail_mcp"):
        for source in (root / package / "src").rglob("*.py"):
            read |= set(re.findall(r"\bOXTAIL_[A-Z][A-Z0-9_]*\b", source.read_text()))
    read -= {"OXTAIL_REF_CMD", "OXTAIL_REF_HOOK"}  # benchmarks only
    table = tomllib.loads(installer.codex_config(EXE))["mcp_servers"]["oxtail"]
    assert table["command"] == EXE
    assert read <= set(table["env_vars"]), read - set(table["env_vars"])
    assert {"TMUX", "TMUX_PANE", "OXTAIL_HOME"} <= set(table["env_vars"])


@pytest.mark.parametrize(
    "exe", ["/opt/ox tail/bin/oxtail-mcp", 'C:\\x\\"q"\\oxtail', "/home/\U0001f600/\x01bin"]
)
def test_the_codex_command_is_a_valid_toml_string_for_any_path(exe: str) -> None:
    import tomllib

    assert tomllib.loads(installer.codex_config(exe))["mcp_servers"]["oxtail"]["command"] == exe


def test_claude_config_dir_moves_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere"
    env = dict(os.environ, HOME=str(tmp_path), CLAUDE_CONFIG_DIR=str(config))
    done = subprocess.run([CLI, "install-hook"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert commands(settings(config / "settings.json"), "Stop") == [f'"{CLI}" hook stop']
    assert not (tmp_path / ".claude").exists()


def test_cli_refuses_a_commented_settings_file_until_asked_to_rewrite_it(tmp_path: Path) -> None:
    target = tmp_path / ".claude" / "settings.json"
    target.parent.mkdir()
    target.write_text(USER_SETTINGS)
    env = dict(os.environ, HOME=str(tmp_path))
    refused = subprocess.run([CLI, "install-hook"], env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr and target.read_text() == USER_SETTINGS
    done = subprocess.run(
        [CLI, "install-hook", "--rewrite-strict"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert commands(json.loads(target.read_text()), "Stop") == [f'"{CLI}" hook stop']


REFERENCE_V14_SESSIONSTART = """{
  "hooks": {
    "SessionStart": [
      { "hooks": [ { "type": "command", "command": "\\"$HOME/.oxtail/hooks/sessionstart.sh\\"" } ] },
      { "hooks": [ { "type": "command", "command": "~/bin/mine.sh" } ] }
    ]
  }
}
"""


def test_install_over_the_reference_0_32_1_replaces_its_sessionstart_hook_in_place(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(REFERENCE_V14_SESSIONSTART)
    assert run_install(path)[0] == 0
    doc = json.loads(path.read_text())
    assert commands(doc, "SessionStart") == [command_of("sessionstart"), "~/bin/mine.sh"]
    assert "oxtail/hooks/sessionstart.sh" not in path.read_text()
    assert_installed(doc)
    assert run_install(path)[1].startswith("oxtail hooks already installed")


def test_uninstall_takes_out_the_references_sessionstart_hook_too(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(REFERENCE_V14_SESSIONSTART)
    assert run_uninstall(path)[0] == 0
    assert commands(json.loads(path.read_text()), "SessionStart") == ["~/bin/mine.sh"]


def test_claude_hooks_that_codex_imported_are_taken_out_of_its_hooks_json(tmp_path: Path) -> None:
    """Codex's import of Claude settings copies our hooks verbatim; install and uninstall manage them."""
    codex = tmp_path / "codex-home"
    codex.mkdir()
    hooks_json = codex / "hooks.json"
    mine = {"hooks": [{"type": "command", "command": "~/bin/codex-guard.sh"}]}
    copied = {
        "hooks": {
            "PreToolUse": [
                {"hooks": [{"type": "command", "command": f'"{CLI}" hook pretooluse'}]},
                mine,
            ],
            "Stop": [{"hooks": [{"type": "command", "command": f'"{CLI}" hook stop'}]}],
        }
    }
    hooks_json.write_text(json.dumps(copied, indent=2) + "\n")
    env = dict(os.environ, HOME=str(tmp_path), CODEX_HOME=str(codex))
    done = subprocess.run([CLI, "install-hook"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Removed 2 oxtail Claude Code hook(s) that Codex had imported" in done.stdout
    assert json.loads(hooks_json.read_text()) == {"hooks": {"PreToolUse": [mine], "Stop": []}}
    assert len(list(codex.glob("hooks.json.oxtail-backup.*"))) == 1
    again = subprocess.run([CLI, "uninstall-hook"], env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "Codex had imported" not in again.stdout
    assert json.loads(hooks_json.read_text()) == {"hooks": {"PreToolUse": [mine], "Stop": []}}
