"""Issue 15 items 2 and 12 through real ``oxtail-mcp`` servers: metadata cannot blow up a read or a
ledger, and a full inbox refuses its sender with ``inbox-full`` before anything is recorded."""

from __future__ import annotations

import os
from pathlib import Path

from oxtail_core.limits import ID_MAX_CHARS, INBOX_MAX_BYTES, READ_METADATA_MAX_BYTES, SESSION_ID_MAX_CHARS
from oxtail_core.protocols import InboxId
from oxtail_core.testing.contract import ALIVE, mint
from oxtail_core.wire import dumps, utf8len
from oxtail_fs.store.fs_store import FsStore
from oxtail_fs.store.layout import Layout
from oxtail_mcp.hooks import render
from tests.support.e2e import sid, world

LONG = "r" * ID_MAX_CHARS


def test_a_read_of_messages_carrying_every_id_at_its_bound_stays_within_its_budgets(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, {"OXTAIL_READ_MAX_BODY_BYTES": "2000"})])
        a.claim("s" * SESSION_ID_MAX_CHARS)
        b.claim(sid(2))
        for i in range(40):
            a.ok(
                "send_message",
                {
                    "target": sid(2),
                    "body": f"t{i}",
                    "reply_to": LONG,
                    "source_message_id": LONG,
                    "wake": "off",
                },
            )
        got = 0
        while (read := b.read())["count"]:
            assert utf8len(dumps(read["messages"])) <= 2000 + READ_METADATA_MAX_BYTES
            got += read["count"]
        assert got == 40


def test_metadata_grows_the_receivers_ledger_by_a_bounded_line_per_message(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim("s" * SESSION_ID_MAX_CHARS)
        b.claim(sid(2))
        ledger = Layout(w.oxtail_home).ledger(sid(2))
        for _ in range(30):
            a.ok(
                "send_message",
                {"target": sid(2), "body": "t", "reply_to": LONG, "source_message_id": LONG, "wake": "off"},
            )
        size = os.stat(ledger).st_size
        assert size < 30 * 2048, size
        refused = a.call("send_message", {"target": sid(2), "body": "t", "reply_to": "r" * (1 << 20)})
        assert refused.is_error and len(refused.text) < 1000
        assert os.stat(ledger).st_size == size


def test_a_delegation_to_a_full_inbox_is_refused_with_inbox_full_and_leaves_no_open_work(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        proj = w.project("proj")
        a, b = w.directs([("a", proj, None), ("b", proj, None)])
        a.claim(sid(1))
        b.claim(sid(2))
        inbox = Layout(w.oxtail_home).inbox(InboxId.for_session(sid(2)))
        inbox.parent.mkdir(parents=True, exist_ok=True)
        with open(inbox, "ab") as fh:  # a flood's worth of unread mail (garbage will do: it has bytes)
            fh.truncate(INBOX_MAX_BYTES - 100)
        os.chmod(inbox, 0o600)
        refused = a.call("send_message", {"target": sid(2), "body": "do X", "action_required": True})
        assert refused.is_error, refused
        assert "inbox-full" in refused.text and len(refused.text) < 1000
        assert b.ok("my_open_work")["count"] == 0
        assert not Layout(w.oxtail_home).ledger(sid(2)).exists()


def test_the_hook_looks_at_a_bounded_prefix_and_still_counts_everything_waiting(tmp_path: Path) -> None:
    store = FsStore(tmp_path / "home")
    inbox = InboxId.for_session(sid(2))
    for start in range(0, 5000, 1000):
        store.append(inbox, [mint(i, "m") for i in range(start, start + 1000)])
    select = render.PrefixSelector(render.DEFAULT_MAX_BODY_CHARS)
    batch = store.take(inbox, select, ALIVE)
    assert batch is not None and 0 < len(batch.envelopes) <= render.PrefixSelector.window
    assert select.waiting == 5000 - len(batch.envelopes)
    assert render.headers_fitting(batch.envelopes) == len(batch.envelopes)
