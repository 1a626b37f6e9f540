"""``oxtail-mcp diagnose``: wake outcomes summarized from MCP_TRACE_FILE (cli-and-ops.md §3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxtail_mcp.commands import diagnose

CLI = str(Path(sys.executable).with_name("oxtail-mcp"))


def outcome(via: str | None, status: str | None, **extra: Any) -> str:
    record: dict[str, Any] = {"ts": "2026-11-25T12:16:46.661Z", "server_pid": 9215, "event": "wake_outcome"}
    if via is not None:
        record["via"] = via
    if status is not None:
        record["wake_status"] = status
    return json.dumps(record | extra)


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "MCP_TRACE_FILE"}
    return subprocess.run([CLI, "diagnose"], env=base | env, capture_output=True, text=True, check=False)


def test_the_specs_example_output_exactly(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    lines = [
        outcome("ask_peer", "fired"),
        outcome("ask_peer", "fired"),
        outcome("ask_peer", "skipped_busy"),
        outcome("send_message", "fired"),
        outcome(None, None),
    ]
    trace.write_text("\n".join(lines) + "\n")
    done = run({"MCP_TRACE_FILE": str(trace)})
    assert done.returncode == 0
    assert done.stdout == (
        "oxtail diagnose — wake outcomes (5):\n"
        "  fired: 3\n"
        "  skipped_busy: 1\n"
        "  unknown: 1\n"
        "by tool:\n"
        "  ask_peer: fired 2, skipped_busy 1\n"
        "  send_message: fired 1\n"
        "  unknown: unknown 1\n"
    )


def test_other_events_blank_and_broken_lines_are_ignored() -> None:
    text = "\n".join(
        [
            json.dumps({"event": "ask_peer_start", "via": "ask_peer"}),
            outcome("ask_peer", "fired"),
            "   ",
            "{not json",
            outcome("ask_peer", "skipped_busy"),
            outcome("reply_default", "skipped_no_fresh_idle"),
            outcome("ask_peer", "fired"),
            '{"event":"wake_outcome","via":"ask',
        ]
    )
    assert diagnose.summarize(text) == (
        "oxtail diagnose — wake outcomes (4):\n"
        "  fired: 2\n"
        "  skipped_busy: 1\n"
        "  skipped_no_fresh_idle: 1\n"
        "by tool:\n"
        "  ask_peer: fired 2, skipped_busy 1\n"
        "  reply_default: skipped_no_fresh_idle 1"
    )


def test_only_the_newest_200_are_counted() -> None:
    text = "\n".join([outcome("ask_peer", "skipped_busy")] * 5 + [outcome("send_message", "fired")] * 200)
    assert diagnose.summarize(text) == (
        "oxtail diagnose — wake outcomes (newest 200 of 205):\n"
        "  fired: 200\n"
        "by tool:\n"
        "  send_message: fired 200"
    )


@pytest.mark.parametrize("value", [None, ""])
def test_unset_variable_prints_the_how_to_and_exits_0(value: str | None) -> None:
    done = run({} if value is None else {"MCP_TRACE_FILE": value})
    assert done.returncode == 0
    assert done.stdout == diagnose.UNSET + "\n"
    assert done.stdout.startswith("oxtail diagnose: MCP_TRACE_FILE is not set")


def test_an_unreadable_file_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    done = run({"MCP_TRACE_FILE": str(missing)})
    assert done.returncode == 1
    assert done.stdout == (
        f"oxtail diagnose: could not read trace file {missing} "
        "(set MCP_TRACE_FILE and reproduce some wakes first).\n"
    )


def test_an_empty_trace_says_there_is_nothing_yet(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text("")
    done = run({"MCP_TRACE_FILE": str(trace)})
    assert (done.returncode, done.stdout) == (
        0,
        "oxtail diagnose: no wake_outcome events in the trace yet "
        "(no ask_peer / wake:auto / reply-default wakes recorded).\n",
    )
