"""The smallest stdio MCP server the official SDK makes: the baseline our connect times are compared with."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    server.run()
