"""A stand-in for Codex CLI 0.171.0's hook runner, run as its own process.

``python fake_codex.py <codex_home> <Event> [--stop-loop]`` with the event's payload on stdin.
It does what the real Codex does with ``$CODEX_HOME/hooks.json`` (read from its binary's embedded
schemas and observed in runs, see docs/hooks.md):

* the file is strict JSON whose root holds only ``description`` and ``hooks``, else it is ignored
  whole (here: exit 3 with the reason);
* every group of the event runs; ``matcher`` filters tool events by tool name and SessionStart by
  ``source``; every handler runs at once, through ``sh -c``, with the payload on stdin, in the
  payload's cwd, killed after its ``timeout`` (default 600 s);
* exit 0 + empty stdout: nothing; stdout starting with ``{``: parsed against the event's closed
  output schema (an unknown key is a failure); plain stdout of SessionStart / UserPromptSubmit
  becomes model context; exit 2 + stderr blocks; anything else is a failure that blocks nothing;
* ``--stop-loop``: Stop is re-run with ``stop_hook_active: true`` after each block (Codex puts no
  cap on it; this stops at :data:`MAX_STOPS` and reports it).

Prints one JSON object: ``context`` (what reached the model as additional context), ``blocks``
(continuation prompts, in order), ``failures``, and for a stop loop ``stops`` (how many Stop runs).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

MAX_STOPS = 5
TOOL_EVENTS = {"PreToolUse", "PostToolUse", "PermissionRequest"}
UNIVERSAL = {"continue", "stopReason", "suppressOutput", "systemMessage"}
ALLOWED = {
    "PreToolUse": UNIVERSAL | {"decision", "reason", "hookSpecificOutput"},
    "UserPromptSubmit": UNIVERSAL | {"decision", "reason", "hookSpecificOutput"},
    "SessionStart": UNIVERSAL | {"hookSpecificOutput"},
    "Stop": UNIVERSAL | {"decision", "reason"},
}
SPECIFIC = {
    "PreToolUse": {
        "hookEventName",
        "additionalContext",
        "permissionDecision",
        "permissionDecisionReason",
        "updatedInput",
    },
    "UserPromptSubmit": {"hookEventName", "additionalContext"},
    "SessionStart": {"hookEventName", "additionalContext"},
}


def handlers(codex_home: Path, event: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    doc = json.loads((codex_home / "hooks.json").read_text())
    if not isinstance(doc, dict) or set(doc) - {"description", "hooks"}:
        raise SystemExit(3)
    subject = payload.get("tool_name") if event in TOOL_EVENTS else payload.get("source")
    out = []
    for group in doc.get("hooks", {}).get(event, []):
        matcher = group.get("matcher")
        if matcher and event in TOOL_EVENTS | {"SessionStart"} and not re.search(matcher, subject or ""):
            continue
        out.extend(h for h in group["hooks"] if h.get("type") == "command")
    return out


def judge(event: str, rc: int, stdout: str, stderr: str, result: dict[str, Any]) -> None:
    """Apply Codex's output contract to one handler's run, adding to ``result``."""
    if rc == 2:
        if stderr.strip():
            result["blocks"].append(stderr.strip())
        else:
            result["failures"].append("exit 2 without stderr")
        return
    if rc != 0:
        result["failures"].append(f"exit {rc}")
        return
    text = stdout.strip()
    if not text:
        return
    if text[0] not in "{[":
        if event in ("SessionStart", "UserPromptSubmit"):
            result["context"].append(text)
        return
    try:
        value = json.loads(text)
    except ValueError:
        result["failures"].append("invalid JSON")
        return
    if not isinstance(value, dict) or set(value) - ALLOWED.get(event, UNIVERSAL):
        result["failures"].append(f"unknown keys {sorted(set(value) - ALLOWED.get(event, UNIVERSAL))}")
        return
    specific = value.get("hookSpecificOutput")
    if specific is not None:
        if set(specific) - SPECIFIC.get(event, set()) or specific.get("hookEventName") != event:
            result["failures"].append(f"bad hookSpecificOutput {specific}")
            return
        if specific.get("additionalContext"):
            result["context"].append(specific["additionalContext"])
    if value.get("decision") == "block":
        if value.get("reason"):
            result["blocks"].append(value["reason"])
        else:
            result["failures"].append("block without reason")


def run_event(codex_home: Path, event: str, payload: dict[str, Any], result: dict[str, Any]) -> int:
    """Run every handler of ``event`` at once; returns how many blocks they added."""
    before = len(result["blocks"])
    procs = []
    for handler in handlers(codex_home, event, payload):
        proc = subprocess.Popen(
            ["/bin/sh", "-c", handler["command"]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=payload.get("cwd") or None,
            text=True,
        )
        procs.append((proc, handler.get("timeout", 600)))
    data = json.dumps({**payload, "hook_event_name": event})
    for proc, timeout in procs:
        try:
            stdout, stderr = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            result["failures"].append("timeout")
            continue
        judge(event, proc.returncode, stdout, stderr, result)
    return len(result["blocks"]) - before


def main() -> None:
    codex_home, event = Path(sys.argv[1]), sys.argv[2]
    payload = json.loads(sys.stdin.read())
    result: dict[str, Any] = {"context": [], "blocks": [], "failures": []}
    if event == "Stop" and "--stop-loop" in sys.argv:
        stops = 0
        active = False
        while stops < MAX_STOPS:
            stops += 1
            if not run_event(codex_home, event, {**payload, "stop_hook_active": active}, result):
                break
            active = True  # the turn went on with the reason as its prompt; this is its next stop
        result["stops"] = stops
    else:
        run_event(codex_home, event, payload, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
