"""``MCP_TRACE_FILE``: one JSON line per event, shared by every oxtail process that has it set.

Tracing is best effort: a failure to create the directory or to append is
swallowed, because a trace must never change what a tool does.

The trace holds session ids, message ids and pane targets, so it is private
like the state dir (issue 15 item 13): created 0600, a looser existing file is
tightened, and it is opened with ``O_NOFOLLOW | O_NONBLOCK`` and written only
if it is a regular file (a planted link or FIFO gets nothing, and never hangs us).
"""

from __future__ import annotations

import contextlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oxtail_core.wire import dumps

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class FileTracer:
    """Appends ``{"ts", "server_pid", "event", ...fields}`` lines to a file."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self.path = path
        self.pid = pid if pid is not None else os.getpid()
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: str, **fields: Any) -> None:
        now = datetime.now(UTC)
        record = {
            "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "server_pid": self.pid,
            "event": event,
            **fields,
        }
        with contextlib.suppress(OSError, ValueError, TypeError):
            line = (dumps(record) + "\n").encode("utf-8", errors="replace")
            fd = os.open(self.path, _FLAGS, 0o600)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    return
                if stat.S_IMODE(st.st_mode) & 0o077:
                    os.fchmod(fd, 0o600)
                os.write(fd, line)
            finally:
                os.close(fd)
