"""oxtail-mcp: the MCP stdio server, its CLI and the Claude Code hooks.

Two versions, on purpose:

- ``__version__`` is ours, the same for ``oxtail-core``, ``oxtail-fs`` and ``oxtail-mcp`` (their
  ``pyproject.toml`` files say the same); ``oxtail-mcp --version`` prints it.
- ``COMPATIBLE_VERSION`` is the reference release whose wire behaviour we match; the MCP
  ``serverInfo`` says ``oxtail`` + this version, because clients and peers key on it.
"""

__version__ = "0.2.0"
COMPATIBLE_VERSION = "0.32.1"
