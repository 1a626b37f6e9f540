"""``oxtail-mcp message`` from a plain shell: the installed console script against a real FsStore whose
agents are real processes (selfheal.md §8.3). What lands is then read the way an agent reads it: by the
real hook, whose text frames it as operator-origin, untrusted and one-way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from oxtail_core.operator import NUDGE_BODY, OPERATOR_SOURCE
from oxtail_core.routing import session_inbox
from oxtail_mcp.hooks.render import OPERATOR_STEER
from tests.mcp import test_status_check
from tests.mcp.test_status_check import CLI, Fleet
from tests.support.e2e import sid

A, B = sid(0xA1), sid(0xB2)
fleet = test_status_check.fleet  # the same fixture: agents whose servers are real processes


def message(f: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXTAIL", "MCP_TRACE", "TMUX"))}
    env.update(HOME=str(f.tmp), OXTAIL_HOME=str(f.home))
    return subprocess.run(
        [CLI, "message", "--project", str(f.proj), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def hook_text(f: Fleet, session_id: str) -> str:
    """What Claude Code would inject for ``session_id`` at its next tool call (the real hook)."""
    payload = json.dumps({"session_id": session_id, "hook_event_name": "PreToolUse", "tool_name": "Bash"})
    done = subprocess.run(
        [sys.executable, "-m", "oxtail_mcp", "hook", "pretooluse"],
        input=payload,
        env=dict(os.environ, OXTAIL_HOME=str(f.home)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    context = json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
    assert isinstance(context, str)
    return context


def test_a_message_by_short_id_lands_in_the_inbox_and_the_hook_frames_it_as_operator_untrusted(
    fleet: Fleet,
) -> None:
    b = fleet.join(B)
    done = message(fleet, B[:8], "please", "wrap up")
    assert done.returncode == 0, done
    [line] = done.stdout.splitlines()
    assert line.startswith(f"✓ operator → {B[:8]}  (") and line.endswith(" · wake:skipped_no_target")
    message_id = line.split("(")[1].split(")")[0]
    env = fleet.ctx.store.ledger_lookup(B, message_id)
    assert env is not None
    assert (env.body, env.origin, env.operator_source, env.from_session_id) == (
        "please wrap up",
        "operator",
        OPERATOR_SOURCE,
        None,
    )
    text = hook_text(fleet, B)
    assert OPERATOR_STEER.strip() in text
    [header] = [h for h in text.splitlines() if f"message_id={message_id}" in h]
    assert f"origin=operator ({OPERATOR_SOURCE})" in header and "from_session_id" not in header
    assert fleet.ctx.store.depth(session_inbox(B)) == 0  # the hook delivered it
    assert b.me.session_id == B


def test_nudge_sends_the_standard_nudge_and_no_wake_types_nothing(fleet: Fleet) -> None:
    b = fleet.join(B)
    done = message(fleet, "--nudge", "--no-wake", B)
    assert done.returncode == 0 and done.stdout.rstrip().endswith(" · wake:off"), done
    [msg] = b.read_messages().messages
    assert msg.body == NUDGE_BODY and msg.origin == "operator"


def test_a_dead_agent_is_refused_with_its_reason_and_its_inbox_is_untouched(fleet: Fleet) -> None:
    b = fleet.join(B)
    fleet.join(A).send(B, "held mail")  # so the dead agent's entry is kept (it holds mail)
    fleet.kill(b)
    done = message(fleet, B, "are you there?")
    assert done.returncode == 1
    assert done.stdout.strip() == f"✗ {B[:8]}: target process is not alive"
    assert fleet.ctx.store.depth(session_inbox(B)) == 1


def test_no_text_no_match_and_an_ambiguous_name_are_one_line_errors(fleet: Fleet) -> None:
    fleet.join(A)
    fleet.join(B)
    cases = {
        (B,): "error: empty message (give text or --nudge)",
        ("nobody", "hi"): "error: no agent matches 'nobody' in scope — see 'oxtail-mcp status' for ids",
        ("000000", "hi"): "error: ambiguous target '000000' — matches 2 agents; use its session id",
    }
    for args, expected in cases.items():
        done = message(fleet, *args)
        assert (done.returncode, done.stdout.strip(), done.stderr) == (1, expected, ""), args


def test_a_hostile_name_is_echoed_inert(fleet: Fleet) -> None:
    done = message(fleet, "\x1b]52;c;aGk=\x07", "hi")
    assert done.returncode == 1 and "\x1b" not in done.stdout and "\\x1b]52" in done.stdout
