"""The JSON dialect oxtail speaks on the wire and on disk.

The reference writes JSON the way JavaScript's ``JSON.stringify`` does, and
prompts, hooks and byte budgets depend on that exact text: compact separators,
raw (unescaped) non-ASCII, lowercase ``\\u00xx`` control escapes, and lone
surrogates escaped as ``\\udxxx`` instead of failing to encode. Parsing is
strict: ``NaN`` and ``Infinity`` are not JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class WireError(ValueError):
    """A text that is not valid oxtail JSON."""


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(value: Any) -> str:
    """Encode ``value`` exactly as the reference's ``JSON.stringify`` would.

    Integral floats are written as integers (``60000.0`` -> ``60000``) because
    JavaScript has a single number type and the reference never prints ``.0``.
    """
    text = _ENCODER.encode(_normalize_numbers(value))
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(_escape_surrogate, text)
    return text


def _normalize_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize_numbers(v) for v in value]
    return value


def _reject_constant(name: str) -> Any:
    raise WireError(f"non-standard JSON constant {name!r}")


def loads(text: str | bytes) -> Any:
    """Parse strict JSON; invalid UTF-8 bytes decode to U+FFFD, as the reference does."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise WireError(str(exc)) from exc


def utf8(text: str) -> bytes:
    """UTF-8 bytes of ``text`` with lone surrogates replaced by U+FFFD (as JavaScript encodes them)."""
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text.encode("utf-8")


def utf8len(text: str) -> int:
    """Bytes of ``text`` in UTF-8; a lone surrogate counts as 3 bytes (it becomes U+FFFD)."""
    return len(utf8(text))
