"""The MCP stdio server: the process model, tool schemas and the thin handlers that drive the core."""
