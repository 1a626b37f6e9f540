"""Issue 15 item 2: every budget counts whole envelopes as rendered, and refusals quote huge ids short.

The body budgets are the reference's (``OXTAIL_READ_MAX_BODY_BYTES`` counts
body bytes); ours adds a bound on everything else a batch renders (ids,
metadata, JSON framing and escapes), so no metadata can make a batch larger
than its bodies' budget plus :data:`~oxtail_core.limits.READ_METADATA_MAX_BYTES`.
"""

from __future__ import annotations

from oxtail_core import Settings
from oxtail_core.limits import ID_MAX_CHARS, READ_METADATA_MAX_BYTES, SESSION_ID_MAX_CHARS
from oxtail_core.results import OpenWork, Sent
from oxtail_core.wire import dumps, utf8len
from oxtail_mcp.server.responses import render
from tests.support.world import B, make_world

LONG_SENDER = "s" * SESSION_ID_MAX_CHARS
LONG_ID = "r" * ID_MAX_CHARS
BODY_BUDGET = 1000


def test_a_read_of_messages_with_the_longest_metadata_stays_within_its_budget_and_loses_nothing() -> None:
    w = make_world(Settings(read_max_body_bytes=BODY_BUDGET))
    a, b = w.join(1, LONG_SENDER), w.join(2, B)
    sent = [a.send(B, f"t{i}", reply_to=LONG_ID, source_message_id=LONG_ID, wake="off") for i in range(50)]
    assert all(isinstance(s, Sent) for s in sent)
    got: list[str] = []
    while True:
        read = render(b.read_messages())
        if not read["messages"]:
            break
        assert utf8len(dumps(read["messages"])) <= BODY_BUDGET + READ_METADATA_MAX_BYTES
        got += [m["id"] for m in read["messages"]]
    assert got == [s.message_id for s in sent if isinstance(s, Sent)]


def test_a_read_of_escape_heavy_bodies_counts_the_escapes() -> None:
    w = make_world(Settings(read_max_body_bytes=8192 * 4))
    a, b = w.join(1, "a"), w.join(2, B)
    for _ in range(8):
        a.send(B, "\x01" * 2048, wake="off")  # 2 KiB of body, 12 KiB rendered (\u0001)
    read = render(b.read_messages())
    assert 0 < read["count"] < 8  # the bodies alone would all fit
    assert utf8len(dumps(read["messages"])) <= 8192 * 4 + READ_METADATA_MAX_BYTES


def test_ordinary_metadata_never_costs_a_message_its_place_in_a_full_read() -> None:
    w = make_world()
    a, b = w.join(1, "aaaaaaaa-0000-0000-0000-000000000001"), w.join(2, B)
    for i in range(60):
        a.send(B, f"m{i}", wake="off")
    read = render(b.read_messages())
    assert (read["count"], read["deferred_count"]) == (50, 10)  # the reference's count budget, unchanged


def test_open_work_with_the_longest_metadata_stays_within_its_budget() -> None:
    w = make_world(Settings(read_max_body_bytes=BODY_BUDGET))
    a, b = w.join(1, LONG_SENDER), w.join(2, B)
    for i in range(50):  # the count budget alone would show all 50
        sent = a.send(
            B, f"do {i}", action_required=True, reply_to=LONG_ID, source_message_id=LONG_ID, wake="off"
        )
        assert isinstance(sent, Sent)
    out = b.open_work()
    assert isinstance(out, OpenWork) and out.items
    wire = render(out)
    assert utf8len(dumps(wire["open"])) <= BODY_BUDGET + READ_METADATA_MAX_BYTES
    assert wire["deferred_count"] > 0 and wire["count"] + wire["deferred_count"] == 50


def test_refusals_about_a_megabyte_message_id_quote_only_its_start() -> None:
    w = make_world()
    b = w.join(2, B)
    huge = "f" * (1 << 20)
    for refusal in (b.reply(huge, "y"), b.complete_work(huge, "done"), b.block_work(huge, "stuck")):
        wire = render(refusal)
        assert wire["ok"] is False and wire["error"] == "message-not-found"
        assert len(dumps(wire)) < 1000, wire


def test_refusals_quote_an_ordinary_message_id_whole() -> None:
    w = make_world()
    b = w.join(2, B)
    wire = render(b.reply("ffffffffffffffff", "y"))
    assert "No received message ffffffffffffffff in this session's ledger" in wire["message"]
