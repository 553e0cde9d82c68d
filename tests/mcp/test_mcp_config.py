"""MCP_SERVERS as a deployer writes it: what is accepted, and the one line that stops start-up."""

import pytest

from agent.mcp_servers import McpConfigError, McpServerConfig, SecretHeader, parse_mcp_servers, secret_arns

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-token-AbCdEf"


def test_the_common_shape_is_read() -> None:
    servers = parse_mcp_servers("""{"mcpServers": {
        "orders": {"url": "https://orders.example.com/mcp", "tools": ["lookup_order"],
                   "headers": {"Authorization": {"secret": "ARN", "key": "token"}, "X-Team": "shop"}},
        "aws.docs": {"type": "http", "url": "http://127.0.0.1:9000/mcp"},
        "old": {"url": "https://old.example.com/mcp", "disabled": true}}}""".replace("ARN", ARN))
    assert servers == [
        McpServerConfig("orders", "orders", "https://orders.example.com/mcp",
                        {"Authorization": SecretHeader(ARN, "token"), "X-Team": "shop"}, ("lookup_order",)),
        McpServerConfig("aws.docs", "aws_docs", "http://127.0.0.1:9000/mcp"),
    ]
    assert secret_arns(servers) == [ARN]


@pytest.mark.parametrize("text", ["", "   "])
def test_nothing_configured_is_no_servers(text: str) -> None:
    assert parse_mcp_servers(text) == []


@pytest.mark.parametrize(("text", "message"), [
    ('{"mcpServers": {"files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem"]}}}',
     "MCP_SERVERS: server 'files' has a command: stdio servers cannot run in Lambda (a function cannot keep a "
     "child process between invocations); serve it over streamable HTTP and give its url"),
    ('{"mcpServers": {"orders": {"url": "https://x/mcp"}', None),
    ('["https://x/mcp"]', 'MCP_SERVERS must be a JSON object: {"mcpServers": {"<name>": {"url": "https://..."}}}'),
    ('{"mcpServers": {"orders": "https://x/mcp"}}', "MCP_SERVERS: server 'orders' must be an object with a url"),
    ('{"mcpServers": {"orders": {"url": "ftp://x/mcp"}}}',
     "MCP_SERVERS: server 'orders' needs a url: http:// or https:// (streamable HTTP)"),
    ('{"mcpServers": {"orders": {"url": "https://x/sse", "transport": "sse"}}}',
     "MCP_SERVERS: server 'orders' asks for transport 'sse'; only streamable HTTP is supported"),
    ('{"mcpServers": {"orders": {"url": "https://x/mcp", "tool": ["lookup_order"]}}}',
     "MCP_SERVERS: server 'orders' has unknown keys ['tool']; known: "
     "['disabled', 'headers', 'tools', 'transport', 'type', 'url']"),
    ('{"mcpServers": {"orders": {"url": "https://x/mcp", "tools": "lookup_order"}}}',
     "MCP_SERVERS: server 'orders': tools must be a list of the server's tool names"),
    ('{"mcpServers": {"orders": {"url": "https://x/mcp", "headers": {"Authorization": {"arn": "a"}}}}}',
     'MCP_SERVERS: server \'orders\': header \'Authorization\' must be a string or {"secret": "arn:..."}'),
    ('{"mcpServers": {"a.b": {"url": "https://x/mcp"}, "a_b": {"url": "https://y/mcp"}}}',
     "MCP_SERVERS: servers 'a.b' and 'a_b' give their tools the same prefix 'a_b'; rename one"),
])
def test_an_unusable_configuration_is_refused_in_one_line(text: str, message: str | None) -> None:
    with pytest.raises(McpConfigError) as caught:
        parse_mcp_servers(text)
    assert "\n" not in str(caught.value)
    if message is None:
        assert str(caught.value).startswith("MCP_SERVERS is not valid JSON: ")
    else:
        assert str(caught.value) == message
