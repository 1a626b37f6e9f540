"""``oxtail-mcp cockpit`` in a real tmux pane (private ``-L`` server, always killed), read back with
``capture-pane``: it lists a real agent (a pane whose MCP client runs a real ``oxtail-mcp`` server),
nudges it (the wake line is typed into the agent's pane, the operator message waits in its inbox),
jumps to its pane, and quits with its key.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oxtail_core.model import WAKE_TEXT
from oxtail_core.operator import NUDGE_BODY
from tests.support.e2e import sid, world
from tests.support.tmux import private_tmux, wait_for

CLI = str(Path(sys.executable).with_name("oxtail-mcp"))
B = sid(0xB2)

pytestmark = pytest.mark.tmux


def test_the_cockpit_in_a_real_pane_nudges_jumps_and_quits_with_its_key(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        assert w.tmux is not None
        proj = w.project("proj")
        [agent] = w.panes([("fleet", proj, None)])
        agent.claim(B)
        env = [arg for name, value in w.env().items() for arg in ("-e", f"{name}={value}")]
        cockpit = w.tmux.raw(
            "new-window",
            "-t",
            "fleet",
            "-c",
            str(proj),
            "-P",
            "-F",
            "#{pane_id}",
            *env,
            f"exec {CLI} cockpit .",
        ).strip()

        def screen() -> str:
            return w.tmux.raw("capture-pane", "-p", "-J", "-t", cockpit)

        assert wait_for(lambda: B[:8] in screen() and "refreshed" in screen(), timeout_s=30), screen()
        shown = screen()
        assert "1 agent" in shown and "q quit" in shown and "nobody is waiting on anybody" in shown

        w.tmux.raw("send-keys", "-t", cockpit, "n")
        assert wait_for(lambda: "✓ operator → " in screen(), timeout_s=30), screen()
        agent.wait_typed(
            WAKE_TEXT + "\n", timeout_s=30
        )  # text and Enter, into the agent's own pane by the core's waker
        drained = agent.read()
        [message] = drained["messages"]
        assert (message["body"], message["origin"]) == (NUDGE_BODY, "operator")
        assert "from_session_id" not in message or message["from_session_id"] is None
        assert "operator_message_hint" in drained

        w.tmux.raw("send-keys", "-t", cockpit, "j")
        active = lambda: w.tmux.raw("display-message", "-p", "-t", "fleet", "#{pane_id}").strip()  # noqa: E731
        assert wait_for(lambda: active() == agent.pane, timeout_s=30), (active(), agent.pane, screen())

        w.tmux.raw("send-keys", "-t", cockpit, "q")
        alive = lambda: cockpit in w.tmux.raw("list-panes", "-a", "-F", "#{pane_id}").split()  # noqa: E731
        assert wait_for(lambda: not alive(), timeout_s=30), screen()


def test_status_watch_on_a_terminal_is_the_cockpit(tmp_path: Path) -> None:
    with private_tmux() as tmux:
        proj = tmp_path / "proj"
        (proj / ".git").mkdir(parents=True)
        (tmp_path / "state").mkdir()
        env = f"OXTAIL_HOME={tmp_path / 'state'} HOME={tmp_path}"
        pane = tmux.new_session("watch", f"exec env {env} {CLI} status --watch", cwd=str(proj))

        def screen() -> str:
            return tmux.raw("capture-pane", "-p", "-J", "-t", pane)

        assert wait_for(lambda: "oxtail cockpit  proj  0 agents" in screen(), timeout_s=30), screen()
        tmux.raw("send-keys", "-t", pane, "q")
        panes = lambda: tmux.tmux.run("list-panes", "-a", "-F", "#{pane_id}")  # noqa: E731
        assert wait_for(lambda: pane not in panes().stdout.split(), 30)  # its only pane: the server ends too
