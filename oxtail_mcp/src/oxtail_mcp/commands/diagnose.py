"""``oxtail-mcp diagnose``: is the wake mechanism working here? Counts wake outcomes in the trace."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from oxtail_mcp.commands.terminal import inert
from oxtail_mcp.identity.client import FORWARDED_NOTHING, forwarded_nothing

KEEP = 200

UNSET = (
    "oxtail diagnose: MCP_TRACE_FILE is not set, so there is no trace data to summarize.\n"
    "Set MCP_TRACE_FILE=/path/to/oxtail-trace.jsonl in the oxtail MCP server's env (e.g. in .mcp.json / "
    "~/.claude.json / ~/.codex/config.toml), reproduce some wakes, then re-run `oxtail diagnose`."
)


def _label(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def summarize(text: str) -> str:
    """The report for a trace file's contents (the last 200 ``wake_outcome`` events)."""
    records = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "wake_outcome":
            records.append(record)
    considered = len(records)
    kept = records[-KEEP:]
    if not kept:
        return (
            "oxtail diagnose: no wake_outcome events in the trace yet "
            "(no ask_peer / wake:auto / reply-default wakes recorded)."
        )
    statuses: Counter[str] = Counter()
    by_tool: dict[str, Counter[str]] = {}
    for record in kept:
        status, via = _label(record.get("wake_status")), _label(record.get("via"))
        statuses[status] += 1
        by_tool.setdefault(via, Counter())[status] += 1
    total = len(kept)
    count = f"newest {total} of {considered}" if considered > KEEP else str(total)
    lines = [f"oxtail diagnose \u2014 wake outcomes ({count}):"]
    lines += [f"  {status}: {n}" for status, n in _ranked(statuses)]
    lines.append("by tool:")
    for via in sorted(by_tool):
        lines.append(f"  {via}: " + ", ".join(f"{s} {n}" for s, n in _ranked(by_tool[via])))
    return "\n".join(lines)


def setup_notes(env: Mapping[str, str]) -> list[str]:
    """Lines about the setup for a person: hooks not (or no longer) installed, Codex hooks that do not
    run (untrusted), a stripped env."""
    from oxtail_mcp.hooks import codex
    from oxtail_mcp.hooks.installer import freshness_hint

    notes = [hint for hint in (freshness_hint(env), codex.hint(env)) if hint]
    if forwarded_nothing(env):
        notes.append(f"oxtail diagnose: {FORWARDED_NOTHING}")
    return notes


def _print(text: str, file: IO[str] | None = None) -> None:
    """Print one line per line of ``text``, each made inert (trace values come from peers)."""
    print("\n".join(inert(line) for line in text.split("\n")), file=file or sys.stdout)


def main(env: Mapping[str, str] = os.environ) -> int:
    for note in setup_notes(env):  # stderr: stdout stays the spec's summary, exactly
        _print(note, sys.stderr)
    path = env.get("MCP_TRACE_FILE", "")
    if not path:
        _print(UNSET)
        return 0
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        _print(
            f"oxtail diagnose: could not read trace file {path} "
            "(set MCP_TRACE_FILE and reproduce some wakes first)."
        )
        return 1
    _print(summarize(text))
    return 0
