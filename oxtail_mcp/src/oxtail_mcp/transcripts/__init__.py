"""Agent transcripts written by Claude Code and Codex, and the ``read_session`` tool over them."""
