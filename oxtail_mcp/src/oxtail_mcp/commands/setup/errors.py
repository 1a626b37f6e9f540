"""The one error type of ``setup``: a sentence that fits on one line and a promise that nothing changed."""

from __future__ import annotations


class SetupError(Exception):
    """Setup cannot go on; the message is one line, and no file was left changed by this run."""
