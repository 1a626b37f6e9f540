"""Text from peers made safe to print on a person's terminal.

Peers write their own ``purpose``, session ids and tmux names (threat T1 in SECURITY.md): printed raw,
an OSC 52 sequence sets the human's clipboard, others clear the screen or retitle the window. Every
control character (C0 including tab and newline, DEL, C1) is shown as a visible ``\\xNN`` escape, so an
escape sequence becomes inert text and a cell stays on one line.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """``text`` with every C0/DEL/C1 control character replaced by its ``\\xNN`` spelling."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
