"""An unclaimed Codex CLI peer is known as Codex from its handshake on (issue 9, defect 2).

Codex gives its MCP servers no ``CODEX_*`` variable (only its bare set and what
``env_vars`` forwards), so before the agent claims a session, only the
handshake's ``clientInfo.name`` (``codex-mcp-client``) says it is Codex. That
must reach the registry at once (peers list it as ``codex``) and the wake
(text, the ~500 ms submit gap, then Enter; without the gap Codex's paste-burst
heuristic turns the Enter into a newline and the wake is lost).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oxtail_mcp.identity.client import BARE_ENV
from tests.support.e2e import WAKE_TEXT, sid, wait_until, wake_timing, world

CODEX_ENV = BARE_ENV | {"OXTAIL_HOME", "TMUX", "TMUX_PANE"}  # Codex bare set + the env_vars that matter


@pytest.mark.tmux
def test_an_unclaimed_codex_peer_is_listed_as_codex_and_woken_with_the_submit_gap(tmp_path: Path) -> None:
    with world(tmp_path, tmux=True) as w:
        proj = w.project("proj")
        (codex,) = w.panes([("codex", proj, None)], client_name="codex-mcp-client", env_only=CODEX_ENV)
        (sender,) = w.directs([("sender", proj, None)])
        sender.claim(sid(1))

        # No tool call from the Codex side yet: the handshake alone must have been published.
        def codex_row() -> dict | None:
            rows = sender.ok("list_project_sessions")["sessions"]
            return next((row for row in rows if row["name"] == "codex"), None)

        row = wait_until(lambda: (r := codex_row()) is not None and r["client_type"] == "codex" and r, 5)
        assert row and row["client_type"] == "codex" and row["client_session_id"] is None, codex_row()

        got = sender.ok("send_message", {"target": "codex", "body": "please claim", "wake": "auto"})
        assert got["target_session_id"] is None and got["target_server_pid"] == codex.server_pid()
        keys = codex.wait_typed(WAKE_TEXT + "\n")
        typed, gap = wake_timing(keys)
        assert typed == WAKE_TEXT + "\n" and 0.45 <= gap < 1.5, keys  # text, the Codex gap, then Enter
        assert codex.entry()["client"]["type"] == "codex"
        assert [m["body"] for m in codex.read()["messages"]] == ["please claim"]
