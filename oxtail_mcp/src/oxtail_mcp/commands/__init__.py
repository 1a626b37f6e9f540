"""Commands for people at a terminal: status, diagnose, print-skill."""
