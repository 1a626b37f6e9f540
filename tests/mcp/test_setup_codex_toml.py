"""``setup --codex`` on a ``config.toml`` that already holds an ``oxtail`` entry, in every form TOML allows.

The reference looks for a ``[mcp_servers.oxtail]`` line and appends a second table otherwise (S44),
which Codex then refuses as invalid TOML. Ours parses: whatever the form, the entry is found, edited
where it is, and the user's comments and layout stay byte for byte.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from oxtail_mcp.hooks.installer import CODEX_FORWARDED_ENV, codex_config
from tests.mcp.test_setup import EXE, Machine

OLD = "/old/venv/bin/oxtail-mcp"
FORMS = {
    "table": f'# mine\n[mcp_servers.oxtail]\ncommand = "{OLD}"  # my venv\n\n[other]\nx = 1\n',
    "quoted table": f'[mcp_servers."oxtail"]\ncommand = "{OLD}"\n',
    "dotted keys at the root": f'mcp_servers.oxtail.command = "{OLD}"\nmodel = "o3"  # fast\n',
    "dotted keys in [mcp_servers]": f'[mcp_servers]\noxtail.command = "{OLD}"\noxtail.args = []\n',
    "inline table in [mcp_servers]": (
        f'[mcp_servers]\noxtail = {{ command = "{OLD}" }}  # mine\nfoo = {{ command = "x" }}\n'
    ),
    "inline table at the root": f'mcp_servers = {{ oxtail = {{ command = "{OLD}" }} }}\n',
    "with a sub-table": f'[mcp_servers.oxtail]\ncommand = "{OLD}"\n\n[mcp_servers.oxtail.env]\nA = "1"\n',
}


def run_codex_setup(machine: Machine, text: str, *args: str) -> str:
    machine.codex_toml.parent.mkdir(exist_ok=True)
    machine.codex_toml.write_text(text)
    done = machine.setup("--codex", *args)
    assert (done.returncode, done.stderr) == (0, ""), done
    return machine.codex_toml.read_text()


def other_lines(text: str) -> list[str]:
    """The lines that are not about our entry, in order (comments and layout included)."""
    return [line for line in text.splitlines() if "oxtail" not in line and "OXTAIL" not in line]


@pytest.mark.parametrize("form", list(FORMS))
def test_an_existing_entry_in_any_toml_form_is_found_and_edited_in_place(tmp_path: Path, form: str) -> None:
    machine = Machine(tmp_path)
    text = FORMS[form]
    new = run_codex_setup(machine, text)
    before, after = tomllib.loads(text), tomllib.loads(new)
    assert after["mcp_servers"]["oxtail"].pop("command") == EXE
    assert after["mcp_servers"]["oxtail"].pop("env_vars") == list(CODEX_FORWARDED_ENV)
    before["mcp_servers"]["oxtail"].pop("command")
    assert after == before  # nothing else changed: no second table, no key lost
    assert other_lines(new) == other_lines(text)
    assert new.count("command") == text.count("command")  # edited where it was, no second entry
    state = machine.tree()
    second = machine.setup("--codex")
    assert "already registered" in second.stdout and machine.tree() == state


@pytest.mark.parametrize("form", list(FORMS))
def test_uninstall_takes_out_the_entry_in_any_form_and_keeps_the_rest(tmp_path: Path, form: str) -> None:
    machine = Machine(tmp_path)
    text = FORMS[form]
    run_codex_setup(machine, text)
    done = machine.setup("--codex", "--uninstall")
    assert done.returncode == 0, done
    left = machine.codex_toml.read_text()
    expected = tomllib.loads(text)
    del expected["mcp_servers"]["oxtail"]
    assert {k: v for k, v in tomllib.loads(left).items() if v != {}} == {
        k: v for k, v in expected.items() if v != {}
    }
    kept = [line for line in other_lines(text) if line.strip() and line != 'A = "1"']  # A was our entry's
    assert [line for line in other_lines(left) if line.strip() and line != "mcp_servers = {  }"] == kept


def test_a_table_is_appended_after_the_users_bytes_and_uninstall_restores_them_exactly(
    tmp_path: Path,
) -> None:
    machine = Machine(tmp_path)
    text = '# Codex\nmodel = "o3"   # spacing kept\n\n[mcp_servers.github]\ncommand = "gh-mcp"\n'
    new = run_codex_setup(machine, text)
    assert new == text + "\n" + codex_config(EXE)
    machine.setup("--codex", "--uninstall")
    assert machine.codex_toml.read_text() == text


def test_our_entry_written_as_a_quoted_table_is_not_duplicated(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    forwarded = ", ".join(f'"{name}"' for name in CODEX_FORWARDED_ENV)
    text = f'[mcp_servers."oxtail"]\ncommand = "{EXE}"\nenv_vars = [{forwarded}]\n'
    machine.codex_toml.parent.mkdir()
    machine.codex_toml.write_text(text)
    state = machine.tree()
    done = machine.setup("--codex")
    assert "  ✓ Codex CLI    ~/.codex/config.toml — already registered" in done.stdout.splitlines()
    assert machine.tree()[".codex/config.toml"] == state[".codex/config.toml"]


def test_a_forwarded_name_missing_from_env_vars_is_added_and_the_users_own_are_kept(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    text = f'[mcp_servers.oxtail]\ncommand = "{EXE}"\nenv_vars = ["MY_VAR", "OXTAIL_HOME"]\n'
    entry = tomllib.loads(run_codex_setup(machine, text))["mcp_servers"]["oxtail"]
    assert entry["env_vars"][:2] == ["MY_VAR", "OXTAIL_HOME"]
    assert set(entry["env_vars"]) == {"MY_VAR", *CODEX_FORWARDED_ENV}


def test_an_inline_mcp_servers_table_gets_our_entry_inside_it(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    text = 'mcp_servers = { github = { command = "gh-mcp" } }\n'
    doc = tomllib.loads(run_codex_setup(machine, text))
    assert doc["mcp_servers"]["github"] == {"command": "gh-mcp"}
    assert doc["mcp_servers"]["oxtail"]["command"] == EXE


def test_an_env_vars_that_is_not_a_list_is_replaced_by_the_names_we_forward(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    text = '[mcp_servers.oxtail]\ncommand = "/old/oxtail-mcp"\nenv_vars = "OXTAIL_HOME"  # wrong type\n'
    entry = tomllib.loads(run_codex_setup(machine, text))["mcp_servers"]["oxtail"]
    assert entry == {"command": EXE, "env_vars": list(CODEX_FORWARDED_ENV)}


def test_force_replaces_a_foreign_entry_in_place_of_appending_a_second(tmp_path: Path) -> None:
    machine = Machine(tmp_path)
    text = '# dev\n[mcp_servers.oxtail]\ncommand = "node"\nargs = ["dist/server.js"]\n\n[other]\nx = 1\n'
    new = run_codex_setup(machine, text, "--force")
    doc = tomllib.loads(new)
    assert doc["mcp_servers"]["oxtail"] == {"command": EXE, "env_vars": list(CODEX_FORWARDED_ENV)}
    assert doc["other"] == {"x": 1} and new.startswith("# dev\n")
    assert new.count("[mcp_servers.oxtail]") == 1
