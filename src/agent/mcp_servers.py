"""MCP servers over streamable HTTP: ``MCP_SERVERS``, their tools given to the agent each turn.

``MCP_SERVERS`` is JSON in the common shape::

    {"mcpServers": {"orders": {"url": "https://orders.example.com/mcp",
                               "headers": {"Authorization": {"secret": "arn:aws:secretsmanager:...", "key": "token"}},
                               "tools": ["lookup_order"]}}}

Only streamable HTTP: a stdio server (``command``) would be a child process of the function, which
Lambda neither keeps nor lets a turn wait for. A header value may be ``{"secret": arn}`` (and an
optional ``key`` in a JSON secret), read once per container through the resolver the composition
root gives. Tools are named ``<server>_<tool>`` so two servers never collide; ``tools`` allows only
the named server-side tools.

Per container, each server has one Strands ``MCPClient`` (its own thread and event loop), opened on
the first turn that needs it and kept open across turns; its tool list is cached for ``ttl``
seconds. A warm turn therefore costs nothing until a tool is called, and a call costs one HTTP
round trip. Every connect, listing and call is bounded by the turn's deadline. A server that is
down or slow never fails or hangs a turn: its tools are left out (a warning is logged, and it is
not tried again for ``retry_after`` seconds), and a call that fails returns an error result to the
model, which can say so. Strands' client is used through its public methods only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from strands.tools import PythonAgentTool
from strands.types.exceptions import MCPClientInitializationError
from strands.types.tools import AgentTool, ToolResult, ToolSpec, ToolUse

from .deadline import Clock, Deadline

if TYPE_CHECKING:
    # Imported when a server is first opened (agent.your_agent imports it at init when MCP_SERVERS
    # is set): the MCP stack (mcp, httpx, starlette, ~220 modules) costs a function without MCP nothing.
    from strands.tools.mcp import MCPClient

logger = logging.getLogger(__name__)

# What model providers accept as a tool name (Bedrock's and OpenAI's rule).
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HTTP_TRANSPORTS = {"http", "streamable-http", "streamable_http", "streamableHttp"}
SERVER_KEYS = {"url", "headers", "tools", "type", "transport", "disabled"}
DEFAULT_TOOLS_TTL = 300.0
MAX_TOOL_PAGES = 10
# The MCP session's own read timeout is set this much later than ours, so that ours (which names
# the time it waited) normally answers; when the session's still answers first, it is taken as ours.
MCP_TIMEOUT_MARGIN = 1.0
# A server that is slow to connect or list may take this share of a turn's time at most: the rest
# is the model's (and the tools' calls).
LISTING_SHARE = 0.5

SecretResolver = Callable[[str], str]


class McpConfigError(Exception):
    """``MCP_SERVERS`` cannot be used; the message is one line naming the server and the cause."""


@dataclass(frozen=True)
class SecretHeader:
    """A header value read from Secrets Manager (``key``: one field of a JSON secret)."""

    arn: str
    key: str | None = None


@dataclass(frozen=True)
class McpServerConfig:
    name: str
    prefix: str  # the name, as a tool-name prefix
    url: str
    headers: dict[str, str | SecretHeader] = field(default_factory=dict)
    allowed: tuple[str, ...] | None = None  # server-side tool names; None: all


@dataclass(frozen=True)
class McpTimeouts:
    connect: float = 5.0  # opening a connection and listing the tools, at most
    call: float = 30.0  # one tool call, at most
    retry_after: float = 30.0  # a server found down is not tried again before this


# ---- configuration -----------------------------------------------------------------------

def parse_mcp_servers(text: str) -> list[McpServerConfig]:
    """The servers ``MCP_SERVERS`` names (none when empty); ``McpConfigError`` when unusable."""
    if not text.strip():
        return []
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise McpConfigError(f"MCP_SERVERS is not valid JSON: {error}") from None
    servers = document.get("mcpServers", document) if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError('MCP_SERVERS must be a JSON object: {"mcpServers": {"<name>": {"url": "https://..."}}}')
    configs = [_server(str(name), entry) for name, entry in servers.items()
               if not (isinstance(entry, dict) and entry.get("disabled") is True)]
    prefixes: dict[str, str] = {}
    for config in configs:
        if config.prefix in prefixes:
            raise McpConfigError(f"MCP_SERVERS: servers {prefixes[config.prefix]!r} and {config.name!r} "
                                 f"give their tools the same prefix {config.prefix!r}; rename one")
        prefixes[config.prefix] = config.name
    return configs


def _server(name: str, entry: Any) -> McpServerConfig:
    where = f"MCP_SERVERS: server {name!r}"
    if not isinstance(entry, dict):
        raise McpConfigError(f"{where} must be an object with a url")
    if "command" in entry:
        raise McpConfigError(f"{where} has a command: stdio servers cannot run in Lambda (a function cannot keep "
                             "a child process between invocations); serve it over streamable HTTP and give its url")
    unknown = sorted(set(entry) - SERVER_KEYS)
    if unknown:
        raise McpConfigError(f"{where} has unknown keys {unknown}; known: {sorted(SERVER_KEYS)}")
    transport = entry.get("transport", entry.get("type", "http"))
    if transport not in HTTP_TRANSPORTS:
        raise McpConfigError(f"{where} asks for transport {transport!r}; only streamable HTTP is supported")
    url = entry.get("url")
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise McpConfigError(f"{where} needs a url: http:// or https:// (streamable HTTP)")
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not TOOL_NAME.match(prefix + "_x"):
        raise McpConfigError(f"{where}: the name must be 1 to 62 characters")
    return McpServerConfig(name, prefix, url, _headers(where, entry.get("headers")), _allowed(where, entry))


def _headers(where: str, headers: Any) -> dict[str, str | SecretHeader]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise McpConfigError(f"{where}: headers must be an object of header names to values")
    parsed: dict[str, str | SecretHeader] = {}
    for header, value in headers.items():
        if isinstance(value, str):
            parsed[header] = value
        elif (isinstance(value, dict) and isinstance(value.get("secret"), str) and set(value) <= {"secret", "key"}
              and isinstance(value.get("key", ""), str)):
            parsed[header] = SecretHeader(value["secret"], value.get("key"))
        else:
            raise McpConfigError(f'{where}: header {header!r} must be a string or {{"secret": "arn:..."}}')
    return parsed


def _allowed(where: str, entry: dict[str, Any]) -> tuple[str, ...] | None:
    if "tools" not in entry:
        return None
    tools = entry["tools"]
    if not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools):
        raise McpConfigError(f"{where}: tools must be a list of the server's tool names")
    return tuple(tools)


def secret_arns(configs: Sequence[McpServerConfig]) -> list[str]:
    """Every secret the servers' headers name (for IAM, and for a check at start-up)."""
    return sorted({v.arn for c in configs for v in c.headers.values() if isinstance(v, SecretHeader)})


# ---- one server, per container --------------------------------------------------------------

@dataclass(frozen=True)
class _Listed:
    """A tool as the server offered it: the agent-facing name and spec, the server-side name."""

    name: str
    spec: ToolSpec
    server_name: str


class _Attempt:
    """Work on a thread of its own that the caller waits for only until the deadline. If the
    caller gives up, a client the work opened is stopped when the work ends."""

    def __init__(self, work: Callable[[], tuple[MCPClient, list[_Listed]]]) -> None:
        self._work = work
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self._result: tuple[MCPClient, list[_Listed]] | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="mcp-connect", daemon=True).start()

    def _run(self) -> None:
        try:
            result = self._work()
        except BaseException as error:  # handed to the waiting turn (or dropped if it left)
            self._error = error
            result = None
        with self._lock:
            self._result = result
            self._done.set()
            abandoned = self._abandoned
        if abandoned and result is not None:
            _stop_quietly(result[0])

    def wait(self, seconds: float) -> tuple[MCPClient, list[_Listed]]:
        finished = self._done.wait(timeout=max(0.0, seconds))
        with self._lock:
            if not finished:
                self._abandoned = True
                raise TimeoutError(f"no answer within {seconds:.1f} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class McpServer:
    """One configured server: its connection and its cached tool list, for the container's life."""

    def __init__(self, config: McpServerConfig, resolve_secret: SecretResolver | None, ttl: float,
                 timeouts: McpTimeouts, clock: Clock) -> None:
        self.config = config
        self._resolve_secret = resolve_secret
        self._ttl, self._timeouts, self._clock = ttl, timeouts, clock
        self._headers: dict[str, str] | None = None  # resolved once per container
        self._client: MCPClient | None = None
        self._tools: list[_Listed] | None = None
        self._listed_at = -math.inf
        self._retry_at = -math.inf
        self._lock = threading.Lock()

    def tools(self, deadline: Deadline, within: float = math.inf) -> list[_Listed]:
        """The server's tools: cached for ``ttl``; listed again (reconnecting if need be) after,
        waiting ``within`` seconds at most."""
        with self._lock:
            now = self._clock()
            if self._tools is not None and now - self._listed_at < self._ttl:
                return self._tools
            if now < self._retry_at:
                return []
            try:
                self._client, self._tools = _Attempt(partial(self._list, self._client)).wait(
                    min(deadline.cap(self._timeouts.connect), within))
                self._listed_at = now
                return self._tools
            except Exception as error:
                self._drop_client()
                self._retry_at = self._clock() + self._timeouts.retry_after
                logger.warning("MCP server %r is unavailable; its tools are left out (tried again in %g s): %s",
                               self.config.name, self._timeouts.retry_after, _one_line(error))
                return []

    async def call(self, listed: _Listed, deadline: Deadline, tool_use: ToolUse, **_: Any) -> ToolResult:
        """One tool call, within the deadline; any failure is an error result for the model."""
        tool_use_id = tool_use["toolUseId"]
        seconds = deadline.cap(self._timeouts.call)
        try:
            if seconds <= 0:
                raise TimeoutError("no time left in this turn")
            started = time.monotonic()
            result = await asyncio.wait_for(self._call(listed, tool_use, seconds, deadline), timeout=seconds)
            if result.get("status") == "error" and time.monotonic() - started >= seconds:
                raise TimeoutError  # the MCP session's own timeout answered first: the same failure
            return result
        except Exception as error:
            reason = f"did not answer within {seconds:.1f} s" if isinstance(error, TimeoutError) else _one_line(error)
            logger.warning("MCP tool %r of server %r failed: %s", listed.name, self.config.name, reason)
            return {"toolUseId": tool_use_id, "status": "error",
                    "content": [{"text": f"The tool {listed.name} failed: {reason}"}]}

    async def _call(self, listed: _Listed, tool_use: ToolUse, seconds: float, deadline: Deadline) -> ToolResult:
        client = self._client or await self._reconnect(deadline)
        try:
            return await self._call_on(client, listed, tool_use, seconds)
        except MCPClientInitializationError:
            # The connection was lost (a server restart, an idle timeout): open another, once.
            return await self._call_on(await self._reconnect(deadline), listed, tool_use, seconds)

    @staticmethod
    async def _call_on(client: MCPClient, listed: _Listed, tool_use: ToolUse, seconds: float) -> ToolResult:
        return await client.call_tool_async(tool_use["toolUseId"], listed.server_name, tool_use["input"],
                                            read_timeout_seconds=timedelta(seconds=seconds + MCP_TIMEOUT_MARGIN))

    async def _reconnect(self, deadline: Deadline) -> MCPClient:
        self._drop_client()
        attempt = _Attempt(partial(self._list, None))
        client, _ = await asyncio.to_thread(attempt.wait, deadline.cap(self._timeouts.connect))
        self._client = client
        return client

    def _list(self, client: MCPClient | None) -> tuple[MCPClient, list[_Listed]]:
        """(Runs on an attempt's thread.) The client, opened if need be, and the listed tools."""
        opened = None
        if client is None:
            client = opened = self._open()
        try:
            return client, self._listing(client)
        except MCPClientInitializationError:
            if opened is not None:
                raise
            _stop_quietly(client)  # found dead: one fresh connection
            client = opened = self._open()
            return client, self._listing(client)
        except BaseException:
            if opened is not None:
                _stop_quietly(opened)
            raise

    def _open(self) -> MCPClient:
        from strands.tools.mcp import MCPClient

        config = self.config
        client = MCPClient(url=config.url, headers=self._resolved_headers(), prefix=config.prefix,
                           startup_timeout=max(1, math.ceil(self._timeouts.connect)),
                           tool_filters={"allowed": list(config.allowed)} if config.allowed is not None else None)
        return client.start()

    def _listing(self, client: MCPClient) -> list[_Listed]:
        listed: list[_Listed] = []
        token: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            page = client.list_tools_sync(token)
            for tool in page:
                if TOOL_NAME.match(tool.tool_name):
                    listed.append(_Listed(tool.tool_name, tool.tool_spec, tool.mcp_tool.name))
                else:
                    logger.warning("MCP server %r: tool %r is left out: a tool name must be at most 64 letters, "
                                   "digits, _ or -", self.config.name, tool.tool_name)
            token = page.pagination_token
            if token is None:
                break
        missing = set(self.config.allowed or ()) - {t.server_name for t in listed}
        if missing:
            logger.warning("MCP server %r does not offer the allowed tools %s", self.config.name, sorted(missing))
        return listed

    def _resolved_headers(self) -> dict[str, str]:
        if self._headers is None:
            headers = {}
            for name, value in self.config.headers.items():
                headers[name] = value if isinstance(value, str) else self._secret(value)
            self._headers = headers
        return self._headers

    def _secret(self, header: SecretHeader) -> str:
        if self._resolve_secret is None:
            raise McpConfigError(f"MCP server {self.config.name!r}: a header names a secret, but no resolver is set")
        value = self._resolve_secret(header.arn)
        if header.key is None:
            return value
        picked = json.loads(value).get(header.key)
        if not isinstance(picked, str):
            raise McpConfigError(f"MCP server {self.config.name!r}: secret has no string field {header.key!r}")
        return picked

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._tools = None
        if client is not None:  # stopping joins the client's thread: never on the turn's time
            threading.Thread(target=_stop_quietly, args=(client,), name="mcp-stop", daemon=True).start()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _stop_quietly(client)


# ---- all servers --------------------------------------------------------------------------

class McpServers:
    """The configured servers, per container. ``tools_for_turn(deadline)`` gives the agent's tools."""

    def __init__(self, configs: Sequence[McpServerConfig], resolve_secret: SecretResolver | None = None,
                 ttl: float = DEFAULT_TOOLS_TTL, timeouts: McpTimeouts | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.servers = [McpServer(c, resolve_secret, ttl, timeouts or McpTimeouts(), clock) for c in configs]

    def tools_for_turn(self, deadline: Deadline, listing_share: float = 1.0) -> list[AgentTool]:
        """Every available server's tools, each call bound to ``deadline``. Servers are listed one
        after another (normally from the cache), all within ``listing_share`` of the time left."""
        listing = deadline.at_most(deadline.remaining() * listing_share)
        tools: list[AgentTool] = []
        for server in self.servers:
            for listed in server.tools(deadline, listing.remaining()):
                call = partial(server.call, listed, deadline)
                tools.append(PythonAgentTool(listed.name, listed.spec, call))  # type: ignore[arg-type]  # async ToolFunc
        return tools

    def close(self) -> None:
        """Close every connection (at the container's exit)."""
        for server in self.servers:
            server.close()


def _stop_quietly(client: MCPClient) -> None:
    try:
        client.stop(None, None, None)
    except Exception as error:  # a connection that died leaves its cause here; nothing to do with it
        logger.debug("MCP client stopped with: %s", _one_line(error))


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"
