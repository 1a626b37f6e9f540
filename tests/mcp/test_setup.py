"""``oxtail-mcp setup`` run as the real console script in a temp HOME, with fake ``claude`` / ``codex`` on
PATH: what it writes (parsed), what it keeps (bytes), its backups, a second run, ``--dry-run``,
``--uninstall``, client selection, and every refusal as one line that leaves every file as it was.

The concurrent-rewrite cases run the real command too, with a ``sitecustomize`` on ``PYTHONPATH``
that makes the compare step start a separate process which rewrites ``~/.claude.json`` the way
Claude Code does, at the one moment that matters: between setup's read and its replace.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import pty
import shutil
import subprocess
import tempfile
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxtail_mcp.hooks.installer import CODEX_FORWARDED_ENV, MANAGED
from tests.support.e2e import SERVER_COMMAND, base_env

EXE = SERVER_COMMAND
CLAUDE_STATE = textwrap.dedent(
    """\
    {
      "numStartups": 7,
      "projects": {
        "/home/you/api": {
          "allowedTools": [],
          "mcpServers": {}
        }
      },
      "mcpServers": {
        "github": {
          "type": "stdio",
          "command": "gh-mcp",
          "args": ["--stdio"]
        }
      },
      "userID": "abc"
    }
    """
)
CODEX_CONFIG = textwrap.dedent(
    """\
    # my Codex settings
    model = "o3"   # the one I like

    [mcp_servers.github]
    command = "gh-mcp"   # keep
    args = ["--stdio"]

    [profiles.fast]
    model = "o4-mini"
    """
)


class Machine:
    """A HOME, a PATH of fake CLIs, and the ``oxtail-mcp setup`` command run in them."""

    def __init__(self, tmp_path: Path, *, claude: bool = True, codex: bool = True, tmux: bool = True) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        scripts = {"claude": "echo 2.1.197", "codex": "echo 'codex-cli 0.171.0'", "tmux": "exit 0"}
        for name, on in (("claude", claude), ("codex", codex), ("tmux", tmux)):
            if on:
                self.fake(name, scripts[name])
        (tmp_path / "tmux-tmp").mkdir()
        self.env = base_env(self.home, tmp_path / "oxtail", tmp_path / "tmux-tmp", {"PATH": str(self.bin)})
        for name in ("CLAUDE_CONFIG_DIR", "UV_CACHE_DIR", "XDG_CACHE_HOME", "PIPX_HOME", "NO_COLOR"):
            self.env.pop(name, None)

    def fake(self, name: str, body: str) -> None:
        script = self.bin / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)

    def setup(
        self, *args: str, exe: str = EXE, prefix: tuple[str, ...] = (), **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, exe, "setup", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @property
    def claude_json(self) -> Path:
        return self.home / ".claude.json"

    @property
    def codex_toml(self) -> Path:
        return self.home / ".codex" / "config.toml"

    @property
    def settings(self) -> Path:
        return self.home / ".claude" / "settings.json"

    @property
    def hooks_json(self) -> Path:
        return self.home / ".codex" / "hooks.json"

    def tree(self) -> dict[str, tuple[bytes, int]]:
        """Every file under HOME: its bytes and its mtime (ns)."""
        return {
            str(p.relative_to(self.home)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(self.home.rglob("*"))
            if p.is_file()
        }

    def backups(self) -> list[Path]:
        return sorted(self.home.rglob("*.oxtail-backup.*"))


def claude_entry(machine: Machine) -> Any:
    return json.loads(machine.claude_json.read_text())["mcpServers"]["oxtail"]


def codex_entry(machine: Machine) -> Any:
    return tomllib.loads(machine.codex_toml.read_text())["mcp_servers"]["oxtail"]


def hook_commands(path: Path) -> dict[str, list[str]]:
    doc = json.loads(path.read_text())
    return {
        event: [h["command"] for group in groups for h in group["hooks"]]
        for event, groups in doc.get("hooks", {}).items()
    }


def assert_one_error_line(
    done: subprocess.CompletedProcess[str], *fragments: str, planned: bool = True
) -> None:
    """Exit 1, one line on stderr; a refusal while planning prints nothing else at all."""
    assert done.returncode == 1, done
    assert done.stdout == "" or not planned, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("oxtail-mcp setup: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


# What it writes -------------------------------------------------------------------------------------
def test_a_fresh_home_gets_both_mcp_entries_and_every_hook_and_is_told_it_is_ready(machine: Machine) -> None:
    done = machine.setup()
    assert (done.returncode, done.stderr) == (0, ""), done
    assert claude_entry(machine) == {"command": EXE, "args": []}
    assert codex_entry(machine) == {"command": EXE, "env_vars": list(CODEX_FORWARDED_ENV)}
    claude_hooks = hook_commands(machine.settings)
    assert {event for _, event, _ in MANAGED} == set(claude_hooks)
    assert all(len(cmds) == 1 and cmds[0].startswith(f'"{EXE}" hook ') for cmds in claude_hooks.values())
    codex_hooks = hook_commands(machine.hooks_json)
    assert set(codex_hooks) == {"SessionStart", "UserPromptSubmit", "PreToolUse", "Stop"}
    assert "  ✓ Claude Code  ~/.claude.json — registered oxtail MCP" in done.stdout.splitlines()
    assert "  ✓ Codex CLI    ~/.codex/config.toml — registered oxtail MCP" in done.stdout.splitlines()
    assert "Installed oxtail hooks (PreToolUse, Stop, UserPromptSubmit, SessionStart)" in done.stdout
    assert done.stdout.rstrip().endswith(
        "✓ ready — restart running Claude Code / Codex sessions so they start oxtail."
    )
    assert machine.backups() == []  # nothing existed, so nothing to keep
    registered = subprocess.run(
        [codex_entry(machine)["command"], "--version"], capture_output=True, text=True, check=True
    )
    assert registered.stdout.startswith("oxtail-mcp ")  # what both clients will start is a working script
    assert machine.claude_json.stat().st_mode & 0o777 == 0o600  # it will hold Claude Code's account data


def test_existing_files_keep_every_other_key_and_byte_and_are_backed_up_first(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    machine.codex_toml.parent.mkdir()
    machine.codex_toml.write_text(CODEX_CONFIG)
    done = machine.setup()
    assert done.returncode == 0, done
    after = json.loads(machine.claude_json.read_text())
    before = json.loads(CLAUDE_STATE)
    assert after["mcpServers"].pop("oxtail") == {"command": EXE, "args": []}
    assert after == before
    assert machine.claude_json.read_text().startswith(CLAUDE_STATE.split('      "args": ["--stdio"]')[0])
    toml = machine.codex_toml.read_text()
    assert toml.startswith(CODEX_CONFIG + "\n[mcp_servers.oxtail]\n"), toml  # the user's bytes, untouched
    backups = {p.name.split(".oxtail-backup.")[0]: p.read_text() for p in machine.backups()}
    assert backups == {".claude.json": CLAUDE_STATE, "config.toml": CODEX_CONFIG}
    assert f"    backup: {machine.home}/.claude.json.oxtail-backup." in done.stdout


def test_a_second_run_says_nothing_to_change_and_writes_nothing(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    assert machine.setup().returncode == 0
    before = machine.tree()
    done = machine.setup()
    assert (done.returncode, done.stderr) == (0, ""), done
    assert machine.tree() == before  # same files, same bytes, same mtimes: no write, no backup
    assert "  ✓ Claude Code  ~/.claude.json — already registered" in done.stdout.splitlines()
    assert "oxtail hooks already installed (v16). No changes." in done.stdout
    assert done.stdout.rstrip().endswith("✓ nothing to change — oxtail is set up.")


def test_dry_run_prints_the_exact_diffs_and_touches_no_file(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    machine.codex_toml.parent.mkdir()
    machine.codex_toml.write_text(CODEX_CONFIG)
    before = machine.tree()
    preview = machine.setup("--dry-run")
    assert preview.returncode == 0, preview
    assert machine.tree() == before
    assert preview.stdout.startswith("oxtail-mcp setup (dry-run — nothing will be written)\n")
    assert "  ~ Claude Code  ~/.claude.json — would register oxtail MCP" in preview.stdout
    assert "  ~ Claude Code  hooks — would change ~/.claude/settings.json:" in preview.stdout
    assert preview.stdout.rstrip().endswith("dry-run complete — re-run without --dry-run to apply.")
    assert machine.setup().returncode == 0
    for path, old in ((machine.claude_json, CLAUDE_STATE), (machine.codex_toml, CODEX_CONFIG)):
        new = path.read_text()
        exact = difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), f"{path} (new)")
        assert "".join(exact) in preview.stdout  # what it showed is what it then wrote


def test_uninstall_takes_out_exactly_what_setup_put_in(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    machine.codex_toml.parent.mkdir()
    machine.codex_toml.write_text(CODEX_CONFIG)
    mine = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}}
    machine.settings.parent.mkdir()
    machine.settings.write_text(json.dumps(mine, indent=2) + "\n")
    assert machine.setup().returncode == 0
    installed = machine.tree()
    preview = machine.setup("--uninstall", "--dry-run")
    assert preview.stdout.startswith("oxtail-mcp setup --uninstall (dry-run — nothing will be written)\n")
    assert "  ~ Claude Code  ~/.claude.json — would remove oxtail MCP" in preview.stdout
    assert machine.tree() == installed
    done = machine.setup("--uninstall")
    assert (done.returncode, done.stderr) == (0, ""), done
    assert machine.claude_json.read_text() == CLAUDE_STATE
    assert machine.codex_toml.read_text() == CODEX_CONFIG
    assert hook_commands(machine.settings)["Stop"] == ["notify-send done"]
    assert all(not cmds for event, cmds in hook_commands(machine.settings).items() if event != "Stop")
    assert all(not cmds for cmds in hook_commands(machine.hooks_json).values())
    assert "  ✓ Claude Code  ~/.claude.json — removed oxtail MCP" in done.stdout.splitlines()
    before = machine.tree()
    again = machine.setup("--uninstall")
    assert again.returncode == 0 and machine.tree() == before
    assert again.stdout.rstrip().endswith("✓ nothing to change — oxtail was not set up here.")


def test_an_oxtail_mcp_of_another_venv_is_pointed_here_and_keeps_its_other_keys(machine: Machine) -> None:
    old = {"mcpServers": {"oxtail": {"command": "/old/venv/bin/oxtail-mcp", "args": [], "env": {"A": "1"}}}}
    machine.claude_json.write_text(json.dumps(old, indent=2))
    done = machine.setup("--claude")
    assert done.returncode == 0, done
    assert claude_entry(machine) == {"command": EXE, "args": [], "env": {"A": "1"}}
    assert f"~/.claude.json — pointed the oxtail MCP entry at {EXE}" in done.stdout


def test_an_oxtail_entry_that_is_not_ours_is_refused_and_force_replaces_it(machine: Machine) -> None:
    reference = {"mcpServers": {"oxtail": {"command": "npx", "args": ["-y", "oxtail@latest"]}}}
    machine.claude_json.write_text(json.dumps(reference, indent=2) + "\n")
    before = machine.tree()
    done = machine.setup()
    assert_one_error_line(
        done, '"mcpServers.oxtail"', "`npx -y oxtail@latest`", "--force", "nothing was changed"
    )
    assert machine.tree() == before  # not even the Codex config or the hooks
    forced = machine.setup("--force")
    assert forced.returncode == 0, forced
    assert claude_entry(machine) == {"command": EXE, "args": []}
    assert "replaced the oxtail MCP entry (--force)" in forced.stdout
    assert [json.loads(p.read_text()) for p in machine.backups() if ".claude.json" in p.name] == [reference]
    kept = machine.setup("--uninstall", "--claude")
    assert kept.returncode == 0 and "oxtail" not in json.loads(machine.claude_json.read_text()).get(
        "mcpServers", {}
    )


@pytest.mark.parametrize("falsy", [None, False])
def test_a_null_or_false_oxtail_entry_counts_as_none_and_is_overwritten(machine: Machine, falsy: Any) -> None:
    machine.claude_json.write_text(json.dumps({"mcpServers": {"oxtail": falsy, "github": {"command": "gh"}}}))
    done = machine.setup("--claude")
    assert done.returncode == 0, done
    assert json.loads(machine.claude_json.read_text())["mcpServers"] == {
        "oxtail": {"command": EXE, "args": []},
        "github": {"command": "gh"},
    }


def test_uninstall_leaves_an_oxtail_entry_that_is_not_ours(machine: Machine) -> None:
    reference = {"mcpServers": {"oxtail": {"command": "npx", "args": ["-y", "oxtail@latest"]}}}
    machine.claude_json.write_text(json.dumps(reference))
    done = machine.setup("--uninstall", "--claude")
    assert done.returncode == 0, done
    assert json.loads(machine.claude_json.read_text()) == reference
    assert '"mcpServers.oxtail" is not ours — left as it is' in done.stdout


# Which clients --------------------------------------------------------------------------------------
def test_with_no_flag_only_the_clients_that_are_present_are_set_up(tmp_path: Path) -> None:
    machine = Machine(tmp_path, codex=False)
    done = machine.setup()
    assert done.returncode == 0, done
    assert claude_entry(machine)["command"] == EXE
    assert not (machine.home / ".codex").exists()
    assert "  – Codex CLI    not found (no `codex` on PATH, no ~/.codex/) — skipped" in done.stdout
    only = machine.setup("--codex")  # asked for: set up even though it is not here
    assert only.returncode == 0, only
    assert codex_entry(machine)["command"] == EXE
    assert "Claude Code" not in only.stdout.split("prerequisites:")[0]


def test_a_codex_config_folder_alone_makes_codex_present(tmp_path: Path) -> None:
    machine = Machine(tmp_path, claude=False, codex=False)
    (machine.home / ".codex").mkdir()
    done = machine.setup()
    assert done.returncode == 0, done
    assert codex_entry(machine)["command"] == EXE
    assert not machine.claude_json.exists()


def test_with_no_client_present_setup_refuses_and_writes_nothing(tmp_path: Path) -> None:
    machine = Machine(tmp_path, claude=False, codex=False)
    assert_one_error_line(machine.setup(), "neither Claude Code nor Codex", "--claude / --codex")
    assert machine.tree() == {}


def test_codex_home_and_claude_config_dir_move_the_files_they_name(machine: Machine) -> None:
    codex_home, claude_dir = machine.tmp / "codex-home", machine.tmp / "claude-dir"
    done = machine.setup(CODEX_HOME=str(codex_home), CLAUDE_CONFIG_DIR=str(claude_dir))
    assert done.returncode == 0, done
    assert tomllib.loads((codex_home / "config.toml").read_text())["mcp_servers"]["oxtail"]["command"] == EXE
    assert hook_commands(codex_home / "hooks.json")
    assert json.loads((claude_dir / ".claude.json").read_text())["mcpServers"]["oxtail"]["command"] == EXE
    assert hook_commands(claude_dir / "settings.json")
    assert machine.tree() == {}  # nothing under ~ itself


# Prerequisites ---------------------------------------------------------------------------------------
def test_prerequisites_are_reported_and_a_missing_tmux_is_almost_there(tmp_path: Path) -> None:
    machine = Machine(tmp_path, tmux=False, codex=False)
    done = machine.setup("--claude")
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    if Path(EXE).is_relative_to(tempfile.gettempdir()):  # a checkout under /tmp (a CI clone, say)
        assert any(line.startswith(f"    ⚠ oxtail-mcp  {EXE} — in the temp directory") for line in lines)
    else:
        assert f"    ✓ oxtail-mcp  {EXE}" in lines
    assert any(line.startswith("    ✓ python      3.") for line in lines)
    assert any(line.startswith("    ⚠ tmux        missing") for line in lines)
    assert "    ✓ claude CLI  found" in lines
    assert "    ⚠ codex CLI   missing — install + log in to run Codex agents" in lines
    assert lines[-1].startswith("  almost there — install tmux")


def test_a_console_script_in_uvx_cache_is_refused_and_force_registers_it_with_a_warning(
    machine: Machine,
) -> None:
    cached = machine.home / ".cache" / "uv" / "archive-v0" / "k3Jx" / "bin" / "oxtail-mcp"
    cached.parent.mkdir(parents=True)
    cached.symlink_to(EXE)
    before = machine.tree()
    done = machine.setup(exe=str(cached))
    assert_one_error_line(
        done, str(cached), "uv's cache", "uv tool install oxtail-mcp", "pipx install oxtail-mcp"
    )
    assert machine.tree() == before
    forced = machine.setup("--force", exe=str(cached))
    assert forced.returncode == 0, forced
    assert claude_entry(machine)["command"] == str(cached)
    assert any(
        line.startswith(f"    ⚠ oxtail-mcp  {cached} is in uv's cache") for line in forced.stdout.splitlines()
    )


def tty_output(machine: Machine, **env: str) -> str:
    """What setup prints to a terminal (a pseudo-terminal as its stdout)."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [EXE, "setup", "--claude"], env={**machine.env, **env}, stdout=follower, timeout=120, check=True
        )
        assert done.returncode == 0
        os.set_blocking(leader, False)
        chunks = []
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(leader, 65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        os.close(follower)


def test_a_terminal_gets_color_unless_no_color_is_set(machine: Machine) -> None:
    assert "\x1b[32m✓\x1b[0m Claude Code" in tty_output(machine)
    assert "\x1b[" not in tty_output(machine, NO_COLOR="1")


# Every refusal is one line and leaves every file as it was -------------------------------------------------
BROKEN = {
    "malformed ~/.claude.json": (".claude.json", '{"numStartups": 3,,}', ("not valid JSON",)),
    "~/.claude.json not an object": (".claude.json", "[1, 2]", ("not a JSON object",)),
    "mcpServers not an object": (".claude.json", '{"mcpServers": []}', ('"mcpServers" is not an object',)),
    "malformed config.toml": (".codex/config.toml", "[mcp_servers\nx = 1\n", ("not valid TOML",)),
    "mcp_servers not a table": (
        ".codex/config.toml",
        'mcp_servers = "x"\n',
        ("'mcp_servers' is not a table",),
    ),
    "foreign codex entry": (
        ".codex/config.toml",
        '[mcp_servers.oxtail]\ncommand = "node"\nargs = ["dist/server.js"]\n',
        ("[mcp_servers.oxtail]", "`node dist/server.js`", "--force"),
    ),
    "settings.json with comments": (".claude/settings.json", '{ // mine\n  "x": 1\n}\n', ("comments",)),
    "~/.claude.json not UTF-8": (".claude.json", b'{"a": "\xff"}', ("not UTF-8",)),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_file_setup_cannot_edit_safely_is_one_error_line_and_nothing_changes(
    machine: Machine, case: str
) -> None:
    name, content, fragments = BROKEN[case]
    machine.claude_json.write_text(CLAUDE_STATE)
    (machine.home / ".codex").mkdir()
    machine.codex_toml.write_text(CODEX_CONFIG)
    target = machine.home / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = machine.tree()
    assert_one_error_line(machine.setup(), *fragments, "nothing was changed")
    assert machine.tree() == before


def test_a_folder_that_cannot_be_created_is_refused_before_any_write(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    blocker = machine.tmp / "not-a-dir"
    blocker.write_text("a file where CODEX_HOME's parent should be")
    before = machine.tree()
    done = machine.setup(CODEX_HOME=str(blocker / "codex"))
    assert_one_error_line(done, "Not a directory", "nothing was changed")
    assert machine.tree() == before
    assert blocker.read_text() == "a file where CODEX_HOME's parent should be"


NOBODY = 65534


@pytest.fixture
def unprivileged(tmp_path: Path) -> Iterator[tuple[Machine, tuple[str, ...]]]:
    """A machine whose setup runs as a user the permission bits apply to (root ignores them)."""
    if os.geteuid() != 0:
        yield Machine(tmp_path), ()
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop privileges")
    base = Path(tempfile.mkdtemp(prefix="oxtail-setup-"))  # outside pytest's root-only folder
    try:
        yield Machine(base), (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir():
                path.chmod(0o700)
        shutil.rmtree(base)


def test_an_unwritable_folder_is_refused_before_any_write(
    unprivileged: tuple[Machine, tuple[str, ...]],
) -> None:
    machine, prefix = unprivileged
    machine.claude_json.write_text(CLAUDE_STATE)
    codex_home = machine.home / ".codex"
    codex_home.mkdir()
    if prefix:
        for path in [machine.tmp, *machine.tmp.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
    codex_home.chmod(0o500)
    before = machine.tree()
    done = machine.setup(prefix=prefix)
    assert_one_error_line(
        done, f"cannot write {codex_home}/config.toml", "not writable", "nothing was changed"
    )
    assert machine.tree() == before


# Claude Code rewriting ~/.claude.json while setup writes it -----------------------------------------------
CLAUDE_CODE_WRITER = """\
import json, os, sys
path, n = sys.argv[1], int(sys.argv[2])
doc = json.load(open(path))
doc["numStartups"] = 100 + n
doc.setdefault("tipsHistory", {})[f"tip{n}"] = n
tmp = path + ".cc-tmp"
with open(tmp, "w") as f:
    f.write(json.dumps(doc, indent=2))
os.replace(tmp, path)
"""

SITECUSTOMIZE = """\
import os, subprocess, sys
from oxtail_mcp.commands.setup import files

_reread, _left = files.reread, [int(os.environ["SETUP_TEST_REWRITES"])]
_fail = os.environ.get("SETUP_TEST_FAIL_REPLACE")


def reread(path):
    # Another process (Claude Code) rewrites the file between setup's read and its replace.
    if path.name == ".claude.json" and _left[0] > 0:
        n = int(os.environ["SETUP_TEST_REWRITES"]) - _left[0] + 1
        _left[0] -= 1
        subprocess.run([sys.executable, os.environ["SETUP_TEST_WRITER"], str(path), str(n)], check=True)
    return _reread(path)


_replace = files.replace


def replace(snapshot, new):
    if _fail and snapshot.path.name == _fail:
        raise OSError(28, "No space left on device", str(snapshot.path))
    return _replace(snapshot, new)


_read, _torn = files.read, [os.environ.get("SETUP_TEST_TORN_READ") == "1"]


def read(path):
    # The first read lands in the middle of Claude Code's in-place write: truncate, half, ..., rest.
    if path.name == ".claude.json" and _torn[0]:
        _torn[0] = False
        whole = path.read_bytes()
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(whole[: len(whole) // 2])
        caught = _read(path)
        with open(path, "r+b") as f:
            f.seek(len(whole) // 2)
            f.write(whole[len(whole) // 2 :])
        return caught
    return _read(path)


files.reread, files.replace, files.read = reread, replace, read
"""


def patched(machine: Machine, rewrites: int, fail_replace: str = "", torn: bool = False) -> dict[str, str]:
    site = machine.tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    writer = machine.tmp / "claude_code_writer.py"
    writer.write_text(CLAUDE_CODE_WRITER)
    return {
        "PYTHONPATH": str(site),
        "SETUP_TEST_REWRITES": str(rewrites),
        "SETUP_TEST_WRITER": str(writer),
        "SETUP_TEST_FAIL_REPLACE": fail_replace,
        "SETUP_TEST_TORN_READ": "1" if torn else "",
    }


def test_a_read_that_catches_claude_code_mid_write_is_read_again_not_refused(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    done = machine.setup("--claude", **patched(machine, rewrites=0, torn=True))
    assert (done.returncode, done.stderr) == (0, ""), done
    doc = json.loads(machine.claude_json.read_text())
    assert doc["mcpServers"]["oxtail"] == {"command": EXE, "args": []} and doc["userID"] == "abc"


def test_a_rewrite_by_claude_code_between_read_and_replace_is_kept_and_setup_plans_again(
    machine: Machine,
) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    done = machine.setup("--claude", **patched(machine, rewrites=1))
    assert done.returncode == 0, done
    doc = json.loads(machine.claude_json.read_text())
    assert doc["numStartups"] == 101 and doc["tipsHistory"] == {"tip1": 1}  # Claude Code's write survived
    assert doc["mcpServers"]["oxtail"] == {"command": EXE, "args": []}
    assert doc["mcpServers"]["github"]["command"] == "gh-mcp"
    assert "planned again from the new contents" in done.stdout
    [backup] = [p for p in machine.backups() if ".claude.json" in p.name]
    assert json.loads(backup.read_text())["numStartups"] == 101  # the bytes it replaced, not the stale read


def test_a_file_rewritten_twice_under_setup_is_refused_with_claude_codes_version_intact(
    machine: Machine,
) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    done = machine.setup(**patched(machine, rewrites=2))
    assert_one_error_line(done, "changed twice while setup was writing it", "re-run", planned=False)
    doc = json.loads(machine.claude_json.read_text())
    assert doc["numStartups"] == 102 and "oxtail" not in doc["mcpServers"]  # Claude Code's, not ours
    assert not machine.codex_toml.exists() and not machine.settings.exists()  # it stopped at the first file
    assert machine.backups() == []


def test_a_write_that_fails_part_way_puts_back_the_files_already_changed(machine: Machine) -> None:
    machine.claude_json.write_text(CLAUDE_STATE)
    (machine.home / ".codex").mkdir()
    machine.codex_toml.write_text(CODEX_CONFIG)
    done = machine.setup(**patched(machine, rewrites=0, fail_replace="config.toml"))
    assert_one_error_line(
        done, "No space left on device", "the files it had changed were put back", planned=False
    )
    assert machine.claude_json.read_text() == CLAUDE_STATE
    assert machine.codex_toml.read_text() == CODEX_CONFIG
    assert not machine.settings.exists() and not machine.hooks_json.exists()
