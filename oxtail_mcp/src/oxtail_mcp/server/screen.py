"""Every request gets an answer: a screen in the stdin reader (issue 15 item 9).

The SDK's stdio transport drops a line it cannot validate, so a request with a
lone surrogate (a cut emoji), a string ``params``, ``jsonrpc:"1.0"`` or
trailing garbage hangs its caller until the host gives up. The screen looks
at each line first: a line the SDK accepts passes unchanged; a broken request
whose id can be recovered is answered with the JSON-RPC error it deserves; a
line with no id to answer (garbage, a notification, a malformed response) is
dropped and traced, as JSON-RPC says.

=====================================  =================================================
line                                   verdict
=====================================  =================================================
valid JSON-RPC (the SDK's own check)   pass
one complete object + trailing bytes   -32700 Parse error, to its id
a request with a lone surrogate        -32602 Invalid params (in params) / -32600 elsewhere
a request of any other bad shape       -32600 Invalid request (jsonrpc, method, params)
a JSON array (a batch)                 -32600 to each request in it that has an id
no recoverable id, or not a request    drop (traced)
=====================================  =================================================
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import mcp_types as types

_SURROGATE = re.compile("[\ud800-\udfff]")
_DECODER = json.JSONDecoder()


@attrs.frozen
class Reject:
    """Answer request ``id`` with a JSON-RPC error."""

    id: int | str
    code: int
    message: str


@attrs.frozen
class Drop:
    """Nothing to answer; ``reason`` goes to the trace."""

    reason: str


Verdict = str | list[Reject] | Drop
"""The line itself (pass), the errors to send, or a drop."""


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _answerable_id(message: Any) -> int | str | None:
    """The id of a *request* we can echo back exactly, or None (notification, response, odd id)."""
    if not isinstance(message, dict) or "method" not in message:
        return None
    rid = message.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (int, str)):
        return None
    if isinstance(rid, str) and _SURROGATE.search(rid):
        return None  # an id we could not write back as UTF-8
    return rid


def _why_invalid(message: dict[str, Any]) -> tuple[int, str]:
    if _has_surrogate(message.get("params")):
        return (
            types.INVALID_PARAMS,
            "Invalid params: a string holds a lone UTF-16 surrogate (a cut emoji?); send valid Unicode",
        )
    if _has_surrogate(message):
        return types.INVALID_REQUEST, "Invalid request: a string holds a lone UTF-16 surrogate"
    if message.get("jsonrpc") != "2.0":
        return types.INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"'
    if not isinstance(message.get("method"), str):
        return types.INVALID_REQUEST, 'Invalid request: "method" must be a string'
    if "params" in message and not isinstance(message["params"], dict):
        return types.INVALID_REQUEST, 'Invalid request: "params" must be an object'
    return types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 request the server accepts"


def screen(line: str) -> Verdict:
    """What to do with one line of the client's stream (see the module table)."""
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except Exception:  # noqa: BLE001 - any failure of the SDK's check is a line to look at
        pass
    else:
        return line
    text = line.strip()
    try:
        message, end = _DECODER.raw_decode(text)
    except ValueError:
        return Drop("not JSON")
    if isinstance(message, list):
        ids = [rid for rid in map(_answerable_id, message) if rid is not None]
        if not ids:
            return Drop("a batch without requests")
        return [
            Reject(rid, types.INVALID_REQUEST, "Invalid request: batches are not supported") for rid in ids
        ]
    rid = _answerable_id(message)
    if rid is None:
        return Drop("no request id to answer")
    if end < len(text):
        return [Reject(rid, types.PARSE_ERROR, "Parse error: trailing data after the JSON object")]
    code, why = _why_invalid(message)
    return [Reject(rid, code, why)]
