"""A reader that closes our stdout early (``| head``) ends a command normally, without a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """Swallow BrokenPipeError, and point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
