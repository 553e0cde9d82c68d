"""MCP_SERVERS through the real handler: a real MCP server's tool called in a turn, the server not
contacted at init nor again on a warm turn, a server that is down costing a turn nothing but its
tools (answered within the deadline), and secrets the function may not read refused at start-up."""

import json
import logging
import time
from collections.abc import Iterator

import pytest
from model_server import ModelServer

from agent.settings import SettingsError
from tests.conftest import Api
from tests.fixtures.mcp_server import OrdersMcpServer

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders-token-AbCdEf"


class Warnings(logging.Handler):
    """What one logger warns (the function's logger does not propagate to pytest's capture)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        logging.getLogger(name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[Warnings]:
    handler = Warnings("agent.mcp_servers")
    yield handler
    logging.getLogger("agent.mcp_servers").removeHandler(handler)


def with_servers(env: dict[str, str], **servers: dict) -> dict[str, str]:
    return {**env, "MCP_SERVERS": json.dumps({"mcpServers": servers})}


def test_a_servers_tool_is_called_in_a_turn(env: dict[str, str], orders_mcp: OrdersMcpServer,
                                            model_server: ModelServer) -> None:
    api = Api(with_servers(env, orders={"url": orders_mcp.url}))
    assert orders_mcp.requests == []  # nothing at init: a socket would not survive a SnapStart restore

    status, _, body = api.post("s1", "use orders_lookup_order for A-100")
    assert status == 200, body
    assert body["reply"] == "The tool returned: Order A-100: shipped on 2026-11-02, arriving 2026-11-05"
    assert orders_mcp.calls == [("lookup_order", {"order_id": "A-100"})]
    offered = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert offered == ["current_time", "orders_lookup_order", "orders_cancel_order"]


def test_a_warm_turn_sends_the_server_only_its_tool_calls(env: dict[str, str], orders_mcp: OrdersMcpServer) -> None:
    api = Api(with_servers(env, orders={"url": orders_mcp.url}))
    api.post("s1", "hello")  # the cold turn connects and lists the tools
    listed = len(orders_mcp.requests)

    started = time.perf_counter()
    assert api.post("s1", "hello again")[0] == 200
    warm = time.perf_counter() - started
    assert len(orders_mcp.requests) == listed  # no connect, no listing: the container's cached list
    api.post("s1", "use orders_lookup_order for A-101")
    assert orders_mcp.calls == [("lookup_order", {"order_id": "A-101"})]
    assert warm < 2.0


def test_a_server_that_is_down_leaves_the_turn_answered_within_the_deadline(
        env: dict[str, str], model_server: ModelServer, warnings: "Warnings") -> None:
    down = OrdersMcpServer()  # a port nobody listens on
    api = Api(with_servers(env, orders={"url": down.url}))
    started = time.perf_counter()
    status, _, body = api.request("POST", "/sessions/s1/messages", {"message": "use orders_lookup_order for A-100"},
                                  timeout=6.0)
    assert time.perf_counter() - started < 6.0
    assert (status, body["reply"]) == (200, "Noted: use orders_lookup_order for A-100")
    assert [t["function"]["name"] for t in model_server.requests[0]["tools"]] == ["current_time"]
    assert any("MCP server 'orders' is unavailable; its tools are left out" in w for w in warnings.lines)
    assert api.texts("s1") == ["use orders_lookup_order for A-100", "Noted: use orders_lookup_order for A-100"]


def test_a_slow_server_never_holds_a_turn_past_its_deadline(env: dict[str, str], orders_mcp: OrdersMcpServer) -> None:
    orders_mcp.hold()  # accepts connections, answers nothing
    api = Api(with_servers(env, orders={"url": orders_mcp.url}))
    started = time.perf_counter()
    status, _, body = api.request("POST", "/sessions/s1/messages", {"message": "hello"}, timeout=4.0)
    assert time.perf_counter() - started < 4.0
    assert (status, body["reply"]) == (200, "Noted: hello")


def test_a_header_secret_the_function_may_not_read_stops_start_up(env: dict[str, str]) -> None:
    servers = with_servers(env, orders={"url": "https://orders.example.com/mcp",
                                        "headers": {"Authorization": {"secret": ARN}}})
    with pytest.raises(SettingsError) as caught:
        Api({**servers, "MCP_SECRET_ARNS": ""})
    assert str(caught.value) == (f"MCP_SERVERS names secrets the function may not read: {ARN}; "
                                 "add them to the McpSecretArns parameter.")
    Api({**servers, "MCP_SECRET_ARNS": f"{ARN},arn:aws:secretsmanager:us-east-1:123456789012:secret:other"})


def test_a_stdio_server_stops_start_up_in_one_line(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="has a command: stdio servers cannot run in Lambda"):
        Api(with_servers(env, files={"command": "npx"}))
