"""Claude Code and Codex hooks: the stdlib-only hook entry point, its text, and their installer.

Kept empty of imports: the hook path pays only for what it uses.
"""
