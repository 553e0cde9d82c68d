"""The user's agent, built once per container from the settings: the tools of their modules
(AGENT_TOOLS) and their MCP servers (MCP_SERVERS). See docs/agent.md.

Tool modules are imported here, at init, so SnapStart's snapshot holds them. MCP servers are not
contacted at init: a socket opened before the snapshot would not survive a restore; the first turn
that needs a server connects, and the connection then serves the container's later turns.
"""

import atexit
from collections.abc import Sequence
from typing import Any

from strands.types.tools import AgentTool

from .aws_clients import AwsClients
from .deadline import Deadline
from .mcp_servers import McpConfigError, McpServerConfig, McpServers, McpTimeouts, parse_mcp_servers, secret_arns
from .settings import Settings, SettingsError
from .tool_modules import ToolModuleError, load_tool_modules
from .tools import DEFAULT_TOOLS

# Reading one secret, at most (a header's secret is read when its server is first connected).
SECRET_SECONDS = McpTimeouts().connect


def agent_tools(settings: Settings, built_in: Sequence[AgentTool] = DEFAULT_TOOLS) -> list[AgentTool]:
    """The built-in tools and every tool of the AGENT_TOOLS modules; SettingsError naming a module
    that cannot be used (start-up stops with that one line)."""
    try:
        return [*built_in, *load_tool_modules(settings.agent_tools, given=built_in)]
    except ToolModuleError as error:
        raise SettingsError(str(error)) from None


def mcp_servers(settings: Settings, clients: AwsClients) -> McpServers | None:
    """The configured MCP servers (None when there are none), closed when the process exits."""
    configs = mcp_configs(settings)
    if not configs:
        return None
    import strands.tools.mcp  # noqa: F401  (at init, so SnapStart's snapshot holds the MCP stack)

    def read_secret(arn: str) -> str:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        client = clients.client("secretsmanager", Deadline.after(SECRET_SECONDS))
        value: Any = SecretsProvider(boto3_client=client).get(arn, max_age=0)
        return value.decode() if isinstance(value, bytes) else str(value)

    servers = McpServers(configs, resolve_secret=read_secret, ttl=settings.mcp_tools_ttl)
    atexit.register(servers.close)
    return servers


def mcp_configs(settings: Settings) -> list[McpServerConfig]:
    """MCP_SERVERS, checked (SettingsError in one line). Deployed, every secret a header names must
    be one the function may read (the template's McpSecretArns), or start-up stops here rather
    than each turn failing to connect."""
    try:
        configs = parse_mcp_servers(settings.mcp_servers)
    except McpConfigError as error:
        raise SettingsError(str(error)) from None
    if settings.mcp_secret_arns is not None:
        missing = [arn for arn in secret_arns(configs) if arn not in settings.mcp_secret_arns]
        if missing:
            raise SettingsError(f"MCP_SERVERS names secrets the function may not read: {', '.join(missing)}; "
                                "add them to the McpSecretArns parameter.")
    return configs
