"""Installs from the built wheels, made the ways people install tools, give a working oxtail-mcp.

A clean venv (not the editable checkout) takes the wheels, the setup step configures Claude Code and
Codex in a temporary HOME, and two of its servers exchange a message over the official MCP client.
pipx and uv (from the wheels, and uv straight from the clone) each put an ``oxtail-mcp`` in
``~/.local/bin`` that prints its version and serves the tools.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.redis.server import start_server
from tests.smoke.installs import (
    CORE_TOOLS,
    REPO,
    Sandbox,
    exchange,
    hook_commands,
    probe,
    setup_step,
)
from tests.support.e2e import sid

pytestmark = pytest.mark.smoke

BODY = "hello from an install made of wheels"
IMPORT_CHECK = (
    "import json, sysconfig, oxtail_core, oxtail_fs, oxtail_mcp\n"
    "print(json.dumps({'purelib': sysconfig.get_paths()['purelib'],"
    " 'files': [m.__file__ for m in (oxtail_core, oxtail_fs, oxtail_mcp)]}))"
)


def _version() -> str:
    with (REPO / "oxtail_mcp" / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


@pytest.fixture(scope="module")
def venv_box(tmp_path_factory: pytest.TempPathFactory, tools: Path, caches: Path, wheels: dict) -> Sandbox:
    """One sandbox whose HOME holds ``~/.venvs/oxtail``, made by the documented venv lines."""
    box = Sandbox.make(tmp_path_factory.mktemp("venv"), tools, caches)
    box.documented("venv")
    return box


def test_a_clean_venv_from_the_wheels_imports_oxtail_from_its_own_site_packages(venv_box: Sandbox) -> None:
    python = venv_box.home / ".venvs" / "oxtail" / "bin" / "python"
    found = json.loads(venv_box.run(python, "-c", IMPORT_CHECK, cwd=venv_box.project))
    purelib = Path(found["purelib"])
    assert purelib.is_relative_to(venv_box.home / ".venvs" / "oxtail")
    assert [Path(f).relative_to(purelib).parts[0] for f in found["files"]] == [
        "oxtail_core",
        "oxtail_fs",
        "oxtail_mcp",
    ]
    pointing_home = [p.name for p in purelib.glob("*.pth") if str(REPO) in p.read_text()]
    assert pointing_home == []  # no editable hook back into the checkout


def test_after_the_setup_step_two_servers_of_the_wheel_venv_deliver_a_message(venv_box: Sandbox) -> None:
    script = venv_box.home / ".venvs" / "oxtail" / "bin" / "oxtail-mcp"
    command = setup_step(venv_box, script)
    assert command == script
    hooks = hook_commands(venv_box)
    assert len(hooks) >= 8 and all(hook.startswith(f'"{script}" hook ') for hook in hooks), hooks
    sent, read = exchange(command, venv_box, BODY)
    assert (sent["ok"], sent["target_session_id"]) == (True, sid(2)), sent
    assert [(m["body"], m["from_session_id"]) for m in read["messages"]] == [(BODY, sid(1))], read


@pytest.fixture(scope="module")
def redis_box(tmp_path_factory: pytest.TempPathFactory, tools: Path, caches: Path, wheels: dict) -> Sandbox:
    """A sandbox whose ``~/.venvs/oxtail`` holds ``oxtail-mcp[redis]``, made by the documented lines."""
    box = Sandbox.make(tmp_path_factory.mktemp("redis-venv"), tools, caches)
    box.documented("redis-venv")
    return box


def test_the_redis_extra_from_the_wheels_puts_two_servers_on_one_redis_with_use_store(
    redis_box: Sandbox, tmp_path: Path
) -> None:
    """The four wheels, installed with the extra: ``use-store`` points the state directory at a
    real redis-server, and two servers of the install exchange a message through it."""
    from oxtail_redis.store import RedisStore

    (tmp_path / "redis").mkdir()
    server = start_server(tmp_path / "redis")
    try:
        script = redis_box.home / ".venvs" / "oxtail" / "bin" / "oxtail-mcp"
        redis_box.run(script, "use-store", server.url, "--team", "smoke", cwd=redis_box.project)
        store_line = json.loads(redis_box.run(script, "status", "--json", cwd=redis_box.project))["store"]
        assert (store_line["kind"], store_line["team"]) == ("redis", "smoke"), store_line
        sent, read = exchange(script, redis_box, BODY)
        assert sent["ok"] is True, sent
        assert [(m["body"], m["from_session_id"]) for m in read["messages"]] == [(BODY, sid(1))], read
        shared = RedisStore(server.url, "smoke")
        try:
            assert [r.envelope.id for r in shared.ledger_records(sid(2))] == [sent["message_id"]]
        finally:
            shared.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("lane", "tool_home"),
    [
        ("pipx", ".local/share/pipx"),
        ("uv-wheels", ".local/share/uv/tools"),
        ("uv-clone", ".local/share/uv/tools"),
    ],
)
def test_a_tool_install_puts_an_oxtail_mcp_in_local_bin_that_serves_the_tools(
    box: Sandbox, lane: str, tool_home: str
) -> None:
    box.documented(lane)
    script = box.bin / "oxtail-mcp"
    assert script.resolve().is_relative_to(box.home / tool_home), script.resolve()
    assert box.run(script, "--version", cwd=box.project).startswith(f"oxtail-mcp {_version()} ")
    served = probe(script, box)
    assert served.name == "oxtail"
    assert served.tools >= CORE_TOOLS and len(served.tools) >= 14, served.tools
