"""The ``_oxtailHook`` marker version: a reinstall replaces every older install, ours or the reference's."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

from oxtail_mcp.hooks import installer
from oxtail_mcp.hooks.installer import MARKER_KEY, MARKER_VERSION, command_hash, hook_command

EXE = "/opt/oxtail/bin/oxtail-mcp"
NOW = datetime.datetime(2026, 12, 2, 0, 30, 0, 0, tzinfo=datetime.UTC)
REFERENCE_MARKER_VERSION = 14
"""What ``scripts/hook-constants.mjs`` of the reference 0.32.1 writes (accounting.md §0.3)."""


def _script(name: str) -> dict[str, Any]:
    return {"hooks": [{"type": "command", "command": f'"$HOME/.oxtail/hooks/{name}.sh"'}]}


REFERENCE_0_32_1 = {
    "hooks": {
        "PreToolUse": [_script("pretooluse")],
        "Stop": [_script("stop")],
        "UserPromptSubmit": [_script("userpromptsubmit")],
        "SessionStart": [_script("sessionstart")],
    },
    MARKER_KEY: {
        "version": REFERENCE_MARKER_VERSION,
        "installedAt": "2026-11-30T10:00:00.000Z",
        "hashes": {
            "pretooluse": "1111111111111111",
            "stop": "2222222222222222",
            "userpromptsubmit": "3333333333333333",
            "sessionstart": "4444444444444444",
            "helper:hook-drain.js": "5555555555555555",
            "helper:mailbox.js": "6666666666666666",
        },
    },
}


def run_install(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = installer.install(
        path, lambda h: hook_command(EXE, h), dry_run=False, out=out, err=io.StringIO(), now=NOW
    )
    return code, out.getvalue()


def assert_ours(doc: Any) -> None:
    for hook_id, event, _ in installer.MANAGED:
        assert [h["command"] for e in doc["hooks"][event] for h in e["hooks"]] == [hook_command(EXE, hook_id)]
    assert doc[MARKER_KEY]["version"] == MARKER_VERSION
    assert doc[MARKER_KEY]["hashes"] == {
        h: command_hash(hook_command(EXE, h)) for h, _, _ in installer.MANAGED
    }


def test_our_marker_version_is_above_every_version_the_reference_wrote() -> None:
    assert MARKER_VERSION > REFERENCE_MARKER_VERSION


def test_a_reinstall_over_our_v8_install_rewrites_it_to_this_version(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    assert run_install(path)[0] == 0
    path.write_text(path.read_text().replace(f'"version": {MARKER_VERSION}', '"version": 8'))
    code, out = run_install(path)
    assert code == 0 and "already installed" not in out
    assert_ours(json.loads(path.read_text()))
    assert run_install(path)[1] == f"oxtail hooks already installed (v{MARKER_VERSION}). No changes.\n"


def test_a_reference_0_32_1_install_is_replaced_in_place_sessionstart_and_helper_hashes_too(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(REFERENCE_0_32_1, indent=2) + "\n")
    assert run_install(path)[0] == 0
    doc = json.loads(path.read_text())
    assert_ours(doc)
    assert doc["hooks"]["SessionStart"] == [
        {"hooks": [{"type": "command", "command": hook_command(EXE, "sessionstart")}]}
    ]
    assert "oxtail/hooks/" not in path.read_text()
    assert run_install(path)[1].startswith("oxtail hooks already installed")


def test_an_install_of_ours_at_v15_reads_stale_for_sessionstart_and_a_reinstall_adds_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    exe = installer.executable()  # what the freshness check compares with
    v15 = {
        "hooks": {
            event: [{"hooks": [{"type": "command", "command": hook_command(exe, hook_id)}]}]
            for hook_id, event, _ in installer.MANAGED
            if hook_id != "sessionstart"
        },
        MARKER_KEY: {
            "version": 15,
            "installedAt": "2026-11-01T00:00:00.000Z",
            "hashes": {
                h: command_hash(hook_command(exe, h)) for h, _, _ in installer.MANAGED if h != "sessionstart"
            },
        },
    }
    path.write_text(json.dumps(v15, indent=2) + "\n")
    hint = installer.freshness_hint({"HOME": str(tmp_path)})
    assert hint is not None and "(sessionstart drifted" in hint  # only the hook v15 did not have
    code, out = run_install(path)
    assert code == 0 and "already installed" not in out
    assert_ours(json.loads(path.read_text()))
