"""oxtail-mcp: the MCP stdio server, its CLI and the Claude Code hooks."""
