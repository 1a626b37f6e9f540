"""Codex CLI hooks as a delivery path (selfheal §9): ``install-hook --codex`` run as the real CLI, then a
fake Codex process (tests/support/fake_codex.py) runs the hooks it finds in that ``hooks.json`` with the
documented payloads and Codex's output contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxtail_core.model import Envelope
from oxtail_core.routing import session_inbox
from oxtail_fs.store.fs_store import FsStore
from oxtail_mcp.hooks import codex
from tests.support.e2e import SERVER_COMMAND, base_env

FAKE_CODEX = Path(__file__).parents[1] / "support" / "fake_codex.py"
THREAD = "01a23325-23e5-7501-8000-0123456789ab"  # Codex thread ids are UUIDv7


class Box:
    """A HOME with a ``codex`` of the given version on PATH, and our Codex hooks installed."""

    def __init__(self, tmp_path: Path, version: str = "0.171.0", *, world: Any = None) -> None:
        """In ``tmp_path``, or sharing HOME, state dir and project ``proj`` with an e2e ``world``."""
        self.tmp = tmp_path
        self.home = world.home if world else tmp_path / "home"
        self.codex_home = self.home / ".codex"
        self.state = world.oxtail_home if world else tmp_path / "oxtail"
        self.project = world.project("proj") if world else tmp_path / "proj"
        self.project.mkdir(parents=True, exist_ok=True)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "codex"
        fake.write_text(f"#!/bin/sh\necho 'codex-cli {version}'\n")
        fake.chmod(0o755)
        (tmp_path / "tmux").mkdir()
        self.env = world.env() if world else base_env(self.home, self.state, tmp_path / "tmux", {})
        self.env["PATH"] = f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}"
        self.store = FsStore(self.state)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SERVER_COMMAND, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )

    @property
    def hooks_json(self) -> Path:
        return self.codex_home / "hooks.json"

    def doc(self) -> Any:
        return json.loads(self.hooks_json.read_text())

    def codex(self, event: str, *flags: str, **fields: Any) -> dict[str, Any]:
        """One run of ``event`` by the fake Codex; returns what reached the model."""
        payload = {
            "session_id": THREAD,
            "transcript_path": None,
            "cwd": str(self.project),
            "model": "gpt-6.2-sol",
            "permission_mode": "default",
            "turn_id": "01a23325-23e5-7501-8000-00000000beef",
            **fields,
        }
        done = subprocess.run(
            [sys.executable, str(FAKE_CODEX), str(self.codex_home), event, *flags],
            input=json.dumps(payload),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def tool_call(self, **fields: Any) -> dict[str, Any]:
        tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "call_1"}
        return self.codex("PreToolUse", **tool, **fields)

    def mail(self, *bodies: str) -> list[str]:
        ids = [f"{i:016x}" for i in range(0xA0, 0xA0 + len(bodies))]
        envelopes = [Envelope(id=i, body=b, enqueued_at=1) for i, b in zip(ids, bodies, strict=True)]
        self.store.append(session_inbox(THREAD), envelopes)
        return ids

    def depth(self) -> int:
        return self.store.depth(session_inbox(THREAD))

    def marker(self) -> str | None:
        got = self.store.activity_get(THREAD)
        return None if got is None else got.status


@pytest.fixture
def box(tmp_path: Path) -> Box:
    b = Box(tmp_path)
    done = b.cli("install-hook", "--codex")
    assert done.returncode == 0, done.stderr
    return b


def commands(doc: Any, event: str) -> list[str]:
    return [h["command"] for group in doc["hooks"][event] for h in group["hooks"]]


# The installer ------------------------------------------------------------------------------------------
def test_install_writes_one_strict_entry_per_event_and_says_how_to_trust_them(box: Box) -> None:
    doc = box.doc()
    assert set(doc) == {"hooks"}  # Codex ignores a hooks.json with any other top-level key
    for event, hook_id in codex.hook_ids(mid_turn=True).items():
        assert doc["hooks"][event] == [
            {"hooks": [{"type": "command", "command": f'"{SERVER_COMMAND}" hook {hook_id}', "timeout": 10}]}
        ]
    again = box.cli("install-hook", "--codex")
    assert again.returncode == 0 and "already installed" in again.stdout
    assert codex.TRUST_HINT in again.stdout


def test_a_reinstall_that_changes_nothing_keeps_the_file_byte_for_byte(box: Box) -> None:
    """Codex keys trust by position and hashes the definition: an unchanged entry must stay put."""
    user = {"hooks": [{"type": "command", "command": "~/bin/mine.sh"}]}
    doc = box.doc()
    doc["hooks"]["Stop"].append(user)
    box.hooks_json.write_text(json.dumps(doc, indent=2) + "\n")
    before = box.hooks_json.read_bytes()
    assert box.cli("install-hook", "--codex").returncode == 0
    assert box.hooks_json.read_bytes() == before
    assert not list(box.codex_home.glob("hooks.json.oxtail-backup.*"))


def test_install_takes_out_the_claude_hooks_codex_imported_and_keeps_the_users(tmp_path: Path) -> None:
    b = Box(tmp_path)
    mine = {"hooks": [{"type": "command", "command": "~/bin/codex-guard.sh"}]}
    copied = {
        "description": "mine",
        "hooks": {
            "PreToolUse": [
                {"hooks": [{"type": "command", "command": f'"{SERVER_COMMAND}" hook pretooluse'}]},
                mine,
            ],
            "SessionStart": [
                {"hooks": [{"type": "command", "command": f'"{SERVER_COMMAND}" hook sessionstart'}]}
            ],
        },
    }
    b.codex_home.mkdir(parents=True)
    b.hooks_json.write_text(json.dumps(copied, indent=2) + "\n")
    assert b.cli("install-hook", "--codex").returncode == 0
    doc = b.doc()
    assert doc["description"] == "mine"
    assert commands(doc, "PreToolUse") == [
        "~/bin/codex-guard.sh",
        f'"{SERVER_COMMAND}" hook codex-pretooluse',
    ]
    assert commands(doc, "SessionStart") == [f'"{SERVER_COMMAND}" hook codex-sessionstart']
    assert len(list(b.codex_home.glob("hooks.json.oxtail-backup.*"))) == 1


def test_dry_run_writes_nothing_and_uninstall_removes_only_ours(box: Box) -> None:
    """S47 for Codex; uninstall leaves the user's hooks and the (now empty) arrays."""
    doc = box.doc()
    doc["hooks"]["Stop"].insert(0, {"hooks": [{"type": "command", "command": "~/bin/mine.sh"}]})
    box.hooks_json.write_text(json.dumps(doc, indent=2) + "\n")
    before = box.hooks_json.read_bytes()
    dry = box.cli("uninstall-hook", "--codex", "--dry-run")
    assert dry.returncode == 0 and "codex-stop" in dry.stdout and box.hooks_json.read_bytes() == before
    assert box.cli("uninstall-hook", "--codex").returncode == 0
    assert box.doc()["hooks"] == {
        "SessionStart": [],
        "UserPromptSubmit": [],
        "PreToolUse": [],
        "Stop": [{"hooks": [{"type": "command", "command": "~/bin/mine.sh"}]}],
    }
    assert "nothing to do" in box.cli("uninstall-hook", "--codex").stdout


def test_a_commented_hooks_json_is_refused_until_asked_to_rewrite_it(tmp_path: Path) -> None:
    b = Box(tmp_path)
    b.codex_home.mkdir(parents=True)
    b.hooks_json.write_text('{\n  // mine\n  "hooks": {},\n}\n')
    refused = b.cli("install-hook", "--codex")
    assert refused.returncode == 1 and "Codex ignores a hooks.json" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert b.cli("install-hook", "--codex", "--rewrite-strict").returncode == 0
    assert set(b.doc()["hooks"]) == {"SessionStart", "UserPromptSubmit", "PreToolUse", "Stop"}


def test_a_codex_not_known_to_carry_mid_turn_context_gets_marker_only_hooks_there(tmp_path: Path) -> None:
    b = Box(tmp_path, version="0.150.2")
    done = b.cli("install-hook", "--codex")
    assert done.returncode == 0 and "mid-turn" in done.stderr
    doc = b.doc()
    assert commands(doc, "PreToolUse") == [f'"{SERVER_COMMAND}" hook codex-busy']
    assert commands(doc, "UserPromptSubmit") == [f'"{SERVER_COMMAND}" hook codex-busy']
    assert commands(doc, "Stop") == [f'"{SERVER_COMMAND}" hook codex-stop']
    b.mail("for later")
    ran = b.tool_call()
    assert ran == {"context": [], "blocks": [], "failures": []}
    assert b.depth() == 1 and b.marker() == "busy"  # never drained where the context would be dropped
    assert b.codex("Stop", "--stop-loop", stop_hook_active=False)["blocks"][0].count("for later") == 1
    assert b.depth() == 0


# The hooks under Codex ------------------------------------------------------------------------------------
def test_mail_reaches_a_codex_agent_mid_turn_through_pretooluse(box: Box) -> None:
    box.mail("hello from a peer")
    ran = box.tool_call()
    assert ran["failures"] == [] and ran["blocks"] == []
    (context,) = ran["context"]
    assert "hello from a peer" in context and "1 new peer message(s)" in context
    assert box.depth() == 0 and box.marker() == "busy"
    assert (box.state / "receipts" / "00000000000000a0").exists()


def test_a_subagents_tool_call_stamps_busy_and_drains_nothing(box: Box) -> None:
    """S60."""
    box.mail("not for the subagent")
    ran = box.tool_call(agent_id="agent-1", agent_type="worker")
    assert ran == {"context": [], "blocks": [], "failures": []}
    assert box.depth() == 1 and box.marker() == "busy"


def test_mail_at_turn_end_continues_the_turn_once_and_the_next_stop_is_a_real_stop(box: Box) -> None:
    """The Stop loop of Codex: after our block, its next Stop has stop_hook_active and ends the turn."""
    box.mail("arrived as you finished")
    ran = box.codex("Stop", "--stop-loop", stop_hook_active=False, last_assistant_message="done")
    assert ran["failures"] == [] and ran["stops"] == 2
    (reason,) = ran["blocks"]
    assert "arrived as you finished" in reason and "finished your turn" in reason
    assert box.depth() == 0 and box.marker() == "idle"


def test_a_stop_with_stop_hook_active_never_blocks_even_with_fresh_mail(box: Box) -> None:
    """S61: the mail waits for the next turn (or a wake) instead of looping the turn."""
    box.mail("fresh")
    ran = box.codex("Stop", stop_hook_active=True, last_assistant_message="done")
    assert ran == {"context": [], "blocks": [], "failures": []}
    assert box.depth() == 1 and box.marker() == "idle"


def test_a_quiet_stop_stamps_idle_and_prints_nothing(box: Box) -> None:
    ran = box.codex("Stop", "--stop-loop", stop_hook_active=False)
    assert ran == {"context": [], "blocks": [], "failures": [], "stops": 1}
    assert box.marker() == "idle"


def test_userpromptsubmit_prints_nothing_without_mail_and_hands_mail_over_as_context(box: Box) -> None:
    """S62: plain stdout would be injected; ours is empty, or the JSON form when there is mail."""
    quiet = box.codex("UserPromptSubmit", prompt="hi")
    assert quiet == {"context": [], "blocks": [], "failures": []}
    assert box.marker() == "busy"
    box.mail("read me at turn start")
    ran = box.codex("UserPromptSubmit", prompt="oxtail msg: read_my_messages")
    assert ran["failures"] == [] and "read me at turn start" in ran["context"][0]
    assert box.depth() == 0


def test_sessionstart_prints_nothing_and_leaves_a_codex_drop(box: Box) -> None:
    ran = box.codex("SessionStart", source="startup")
    assert ran == {"context": [], "blocks": [], "failures": []}
    (drop,) = (box.state / "session-starts").iterdir()
    record = json.loads(drop.read_text())
    assert (record["client"], record["payload"]["session_id"]) == ("codex", THREAD)


def test_two_sources_running_our_hooks_at_once_deliver_each_message_once(box: Box) -> None:
    """S63: all matching hooks run concurrently; the inbox lock lets one of them take each message."""
    doc = box.doc()
    doc["hooks"]["PreToolUse"].append(doc["hooks"]["PreToolUse"][0])
    box.hooks_json.write_text(json.dumps(doc))
    ids = box.mail(*(f"message {n}" for n in range(5)))
    ran = box.tool_call()
    text = "\n".join(ran["context"])
    assert ran["failures"] == []
    assert [text.count(f"message_id={i}") for i in ids] == [1] * 5
    assert box.depth() == 0


def test_status_says_codex_hooks_are_untrusted_until_a_trust_record_exists_and_they_fired(box: Box) -> None:
    """S59: untrusted hooks never run; the hint says what to do, and goes once they are trusted and ran."""
    env = dict(box.env)
    hint = codex.hint(env)
    assert hint is not None and "not trusted yet" in hint and "/hooks" in hint
    keys = [f"{box.hooks_json}:{snake}:0:0" for _, snake, _, _ in codex.MANAGED]
    trust = "".join(f'[hooks.state."{key}"]\ntrusted_hash = "sha256:{"0" * 64}"\n' for key in keys)
    (box.codex_home / "config.toml").write_text(trust)
    never = codex.hint(env)
    assert never is not None and "never run" in never
    box.codex("UserPromptSubmit", prompt="hi")
    assert codex.hint(env) is None
    assert codex.last_fired_ms(env) is not None


def test_diagnose_tells_the_user_to_trust_the_codex_hooks(box: Box) -> None:
    done = box.cli("diagnose")
    assert done.returncode == 0
    assert "Codex hooks in" in done.stderr and "not trusted yet" in done.stderr and "/hooks" in done.stderr


def test_a_hooked_codex_agent_is_seen_busy_by_its_peers_and_gets_their_mail_at_turn_end(
    tmp_path: Path,
) -> None:
    """End to end with real servers: the Codex hooks' markers are what a sender's wake gate reads."""
    from tests.support.e2e import world

    with world(tmp_path) as w:
        b = Box(tmp_path, world=w)
        codex_agent, sender = w.directs(
            [("codex", b.project, {"CODEX_THREAD_ID": THREAD}), ("claude", b.project, {"CLAUDECODE": "1"})]
        )
        sender.claim("aaaaaaaa-1111-2222-3333-444444444444")
        assert b.cli("install-hook", "--codex").returncode == 0
        assert b.codex("UserPromptSubmit", prompt="work on it")["failures"] == []  # the turn starts: busy
        sent = sender.ok("send_message", {"target": THREAD, "body": "status?", "wake": "auto"})
        assert sent["ok"] is True and sent["wake_status"] == "skipped_busy"  # not typed into its turn
        ran = b.codex("Stop", "--stop-loop", stop_hook_active=False)
        assert ran["stops"] == 2 and "status?" in ran["blocks"][0]
        assert codex_agent.ok("read_my_messages")["count"] == 0  # the hook delivered it already
        assert b.marker() == "idle"


def test_install_notes_hooks_defined_inline_in_config_toml(tmp_path: Path) -> None:
    b = Box(tmp_path)
    b.codex_home.mkdir(parents=True)
    (b.codex_home / "config.toml").write_text(
        '[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ntype = "command"\ncommand = "x"\n'
    )
    done = b.cli("install-hook", "--codex")
    assert done.returncode == 0 and "defines hooks inline too" in done.stderr
