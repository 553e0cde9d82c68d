"""A real MCP server (the mcp package's MCPServer, streamable HTTP, 127.0.0.1) per test, and the
agent's MCP servers built for it, closed after the test."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.mcp_servers import McpServers, parse_mcp_servers
from tests.fixtures.mcp_server import OrdersMcpServer

MakeServers = Callable[..., McpServers]


@pytest.fixture
def orders_mcp() -> Iterator[OrdersMcpServer]:
    with OrdersMcpServer() as server:
        yield server


@pytest.fixture
def make_servers() -> Iterator[MakeServers]:
    """``make_servers({"orders": {"url": ...}}, ttl=..., clock=...)``: MCP_SERVERS as the container reads it."""
    made: list[McpServers] = []

    def make(servers: dict[str, Any], **options: Any) -> McpServers:
        built = McpServers(parse_mcp_servers(json.dumps({"mcpServers": servers})), **options)
        made.append(built)
        return built

    yield make
    for servers in made:
        servers.close()
