"""Issue 15 item 2 and item 14: id-like fields are bounded, and refusals do not echo huge inputs back.

Real ``oxtail-mcp`` servers driven by the official MCP client.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from oxtail_core.clock import FakeClock
from oxtail_core.delivery import mint
from oxtail_core.limits import ID_MAX_CHARS, SESSION_ID_MAX_CHARS, check_id
from tests.support.e2e import sid, world


@pytest.mark.parametrize("field", ["reply_to", "source_message_id"])
def test_a_megabyte_id_field_is_refused_without_being_echoed_and_nothing_is_delivered(
    tmp_path: Path, field: str
) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        huge = "r" * (1 << 20)
        result = a.call("send_message", {"target": sid(2), "body": "t", field: huge, "wake": "off"})
        assert result.is_error, result
        assert len(result.text) < 1000, len(result.text)
        assert field in result.text
        assert b.ok("read_my_messages")["count"] == 0
        fitting = "r" * ID_MAX_CHARS
        sent = a.ok("send_message", {"target": sid(2), "body": "t", field: fitting, "wake": "off"})
        assert sent["ok"] is True
        got = b.ok("read_my_messages")["messages"]
        assert [m[field] for m in got] == [fitting]


def test_a_session_id_over_the_bound_is_refused_at_claim_and_the_agent_stays_visible(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        (a,) = w.directs([("a", proj, None)])
        result = a.call("claim_session", {"session_id": "s" * (600 << 10)})
        assert result.is_error, result
        assert len(result.text) < 1000
        entry = a.entry()
        assert entry["client"]["session_id"] is None
        registry = json.loads(w.registry_file(entry["server_pid"]).read_text())
        assert registry["server_pid"] == entry["server_pid"]
        a.claim("s" * SESSION_ID_MAX_CHARS)


@pytest.mark.parametrize("lone", ["agent-\ud800", "agent-\udfff"])
def test_ids_with_a_lone_surrogate_are_refused_so_they_cannot_share_a_key_with_u_fffd(lone: str) -> None:
    for field in ("session_id", "reply_to", "request_id"):
        with pytest.raises(ValueError, match="surrogate"):
            check_id(field, lone)
    ctx: Any = SimpleNamespace(clock=FakeClock())
    with pytest.raises(ValueError, match="surrogate"):
        mint(ctx, "x", lone)
    with pytest.raises(ValueError, match="surrogate"):
        mint(ctx, "x", "a", reply_to=lone)
    check_id("session_id", "agent-\ufffd")


class _Forged:
    """An inbox message as a forged line could carry it (the core would refuse to mint it)."""

    def __init__(self, index: int, meta: str) -> None:
        self.id = f"{index:016x}"
        self.body = "t"
        self.from_session_id = meta
        self.request_id = meta
        self.reply_to = meta


def test_the_hook_text_stays_bounded_however_long_the_metadata_and_however_many_the_messages() -> None:
    from oxtail_mcp.hooks import render

    assert render.HEADER_FIELD_MAX_CHARS == ID_MAX_CHARS
    heavy = [_Forged(i, "r" * (1 << 20)) for i in range(3)]
    select = render.PrefixSelector(24000)
    chosen = select(heavy)
    text = render.render("pretooluse", [heavy[i] for i in chosen], 24000, waiting=select.waiting)
    assert len(text) < 2 * 24000 + 2000, len(text)
    many = [_Forged(i, "s") for i in range(10_000)]
    select = render.PrefixSelector(24000)
    chosen = select(many)
    text = render.render("pretooluse", [many[i] for i in chosen], 24000, waiting=select.waiting)
    assert 0 < len(chosen) < len(many) and select.waiting == len(many) - len(chosen)
    assert len(text) < 2 * 24000 + 2000, len(text)
