"""MCP tools in a turn, against a real MCP server over streamable HTTP: named with the server's
prefix, called by the agent through LiteLLM and the test model, listed once per container (no
request on a warm turn until the TTL), and never failing or hanging a turn when the server is down
or slow."""

import logging
import time
from typing import Any

import boto3
import pytest
from model_server import ModelServer, Reply
from moto import mock_aws
from strands import Agent
from strands.models.litellm import LiteLLMModel

from agent.deadline import Deadline
from agent.mcp_servers import McpTimeouts
from tests.fixtures.mcp_server import OrdersMcpServer
from tests.mcp.conftest import MakeServers

A100 = "Order A-100: shipped on 2026-11-02, arriving 2026-11-05"


def turn(model_server: ModelServer, tools: list[Any], message: str = "Where is A-100?") -> str:
    model = LiteLLMModel(client_args={"api_key": "sk-test-key", "api_base": model_server.base_url},
                         model_id="openai/test-model")
    return str(Agent(model=model, tools=tools, callback_handler=None)(message))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_servers_tool_is_called_in_a_turn_under_its_prefixed_name(
        orders_mcp: OrdersMcpServer, make_servers: MakeServers, model_server: ModelServer) -> None:
    servers = make_servers({"orders": {"url": orders_mcp.url}})
    tools = servers.tools_for_turn(Deadline.after(10))
    assert sorted(t.tool_name for t in tools) == ["orders_cancel_order", "orders_lookup_order"]

    model_server.queue(Reply.call_tool("orders_lookup_order", {"order_id": "A-100"}))
    assert A100 in turn(model_server, tools)
    assert orders_mcp.calls == [("lookup_order", {"order_id": "A-100"})]
    offered = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    assert offered["orders_lookup_order"]["parameters"]["required"] == ["order_id"]
    assert "delivery status" in offered["orders_lookup_order"]["description"]


def test_two_servers_with_the_same_tools_never_collide(make_servers: MakeServers, model_server: ModelServer) -> None:
    with OrdersMcpServer() as shop, OrdersMcpServer() as outlet:
        servers = make_servers({"shop": {"url": shop.url}, "outlet-2": {"url": outlet.url}})
        tools = servers.tools_for_turn(Deadline.after(10))
        assert sorted(t.tool_name for t in tools) == ["outlet-2_cancel_order", "outlet-2_lookup_order",
                                                      "shop_cancel_order", "shop_lookup_order"]
        model_server.queue(Reply.call_tool("outlet-2_cancel_order", {"order_id": "A-101"}))
        assert "Order A-101 cancelled" in turn(model_server, tools, "cancel A-101 at the outlet")
        assert (shop.calls, outlet.calls) == ([], [("cancel_order", {"order_id": "A-101"})])


def test_the_allow_list_leaves_the_other_tools_out(orders_mcp: OrdersMcpServer, make_servers: MakeServers,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    servers = make_servers({"orders": {"url": orders_mcp.url, "tools": ["lookup_order", "refund_order"]}})
    with caplog.at_level(logging.WARNING, logger="agent.mcp_servers"):
        tools = servers.tools_for_turn(Deadline.after(10))
    assert [t.tool_name for t in tools] == ["orders_lookup_order"]
    assert "MCP server 'orders' does not offer the allowed tools ['refund_order']" in caplog.text


def test_a_warm_turn_sends_nothing_to_the_server_until_the_ttl(orders_mcp: OrdersMcpServer,
                                                              make_servers: MakeServers) -> None:
    clock = FakeClock()
    servers = make_servers({"orders": {"url": orders_mcp.url}}, ttl=60, clock=clock)
    servers.tools_for_turn(Deadline.after(10))
    after_cold_turn = len(orders_mcp.requests)
    assert after_cold_turn > 0

    clock.now += 59
    started = time.perf_counter()
    assert len(servers.tools_for_turn(Deadline.after(10))) == 2
    assert time.perf_counter() - started < 0.05
    assert len(orders_mcp.requests) == after_cold_turn  # the cached list; the connection stays open

    clock.now += 2  # past the TTL: listed again, on the open connection
    assert len(servers.tools_for_turn(Deadline.after(10))) == 2
    assert len(orders_mcp.requests) > after_cold_turn


def test_a_server_that_is_down_leaves_its_tools_out_and_the_turn_answers(
        make_servers: MakeServers, model_server: ModelServer, caplog: pytest.LogCaptureFixture) -> None:
    down = OrdersMcpServer()  # a port nobody listens on
    with OrdersMcpServer() as up:
        servers = make_servers({"down": {"url": down.url}, "up": {"url": up.url}})
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="agent.mcp_servers"):
            tools = servers.tools_for_turn(Deadline.after(3))
        assert time.perf_counter() - started < 3
        assert sorted(t.tool_name for t in tools) == ["up_cancel_order", "up_lookup_order"]
        assert "MCP server 'down' is unavailable; its tools are left out" in caplog.text
        assert turn(model_server, tools, "hello") == "Noted: hello\n"


def test_a_slow_server_is_left_out_within_the_deadline(orders_mcp: OrdersMcpServer, make_servers: MakeServers,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    orders_mcp.hold()
    servers = make_servers({"orders": {"url": orders_mcp.url}})
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="agent.mcp_servers"):
        assert servers.tools_for_turn(Deadline.after(0.5)) == []
    assert time.perf_counter() - started < 0.8
    assert "MCP server 'orders' is unavailable" in caplog.text and "no answer within 0.5 s" in caplog.text


def test_a_slow_call_returns_an_error_to_the_model_within_the_deadline(
        orders_mcp: OrdersMcpServer, make_servers: MakeServers, model_server: ModelServer) -> None:
    servers = make_servers({"orders": {"url": orders_mcp.url}}, timeouts=McpTimeouts(call=0.5))
    tools = servers.tools_for_turn(Deadline.after(10))
    orders_mcp.hold()
    model_server.queue(Reply.call_tool("orders_lookup_order", {"order_id": "A-100"}))
    started = time.perf_counter()
    reply = turn(model_server, tools)
    assert time.perf_counter() - started < 5  # well under the 30 s a call may take otherwise
    assert "The tool orders_lookup_order failed: did not answer within 0.5 s" in reply
    assert orders_mcp.calls == []


def test_a_call_is_bounded_by_the_turns_deadline(orders_mcp: OrdersMcpServer, make_servers: MakeServers,
                                                 model_server: ModelServer) -> None:
    servers = make_servers({"orders": {"url": orders_mcp.url}})  # calls may take 30 s; the turn has less
    tools = servers.tools_for_turn(Deadline.after(0.8))
    orders_mcp.hold()
    model_server.queue(Reply.call_tool("orders_lookup_order", {"order_id": "A-100"}))
    started = time.perf_counter()
    assert "The tool orders_lookup_order failed: did not answer within" in turn(model_server, tools)
    assert time.perf_counter() - started < 5  # the turn's 0.8 s, not the call's 30 s


def test_a_server_that_went_down_and_came_back_is_reconnected(orders_mcp: OrdersMcpServer,
                                                             make_servers: MakeServers,
                                                             model_server: ModelServer) -> None:
    servers = make_servers({"orders": {"url": orders_mcp.url}})
    servers.tools_for_turn(Deadline.after(10))
    orders_mcp.stop()
    model_server.queue(Reply.call_tool("orders_lookup_order", {"order_id": "A-100"}))
    reply = turn(model_server, servers.tools_for_turn(Deadline.after(5)))
    assert "Tool execution failed: Connection to the MCP server was closed" in reply  # Strands' error result

    orders_mcp.start()  # a new server process: the old connection is gone
    model_server.queue(Reply.call_tool("orders_lookup_order", {"order_id": "A-102"}))
    assert "Order A-102: delivered on 2026-10-28" in turn(model_server, servers.tools_for_turn(Deadline.after(5)))


def test_a_server_found_down_is_not_tried_again_before_retry_after(make_servers: MakeServers) -> None:
    clock = FakeClock()
    server = OrdersMcpServer()
    servers = make_servers({"orders": {"url": server.url}}, clock=clock, timeouts=McpTimeouts(retry_after=30))
    assert servers.tools_for_turn(Deadline.after(3)) == []
    with server:
        clock.now += 29
        assert servers.tools_for_turn(Deadline.after(3)) == []
        assert server.requests == []  # no connection attempt on this turn
        clock.now += 2
        assert len(servers.tools_for_turn(Deadline.after(3))) == 2


def test_a_secret_header_is_read_once_and_sent_to_the_server(orders_mcp: OrdersMcpServer,
                                                            make_servers: MakeServers) -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="orders-mcp", SecretString='{"token": "Bearer s3cr3t"}')["ARN"]
        reads: list[str] = []

        def read_secret(secret_arn: str) -> str:
            reads.append(secret_arn)
            return str(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])

        servers = make_servers({"orders": {"url": orders_mcp.url, "headers": {
            "Authorization": {"secret": arn, "key": "token"}, "X-Team": "shop"}}}, resolve_secret=read_secret)
        assert len(servers.tools_for_turn(Deadline.after(10))) == 2
        orders_mcp.stop()
        orders_mcp.start()
        orders_mcp.requests.clear()
        servers.servers[0].close()  # the next listing opens a new connection
        servers.servers[0]._tools = None  # noqa: SLF001  (as after the TTL)
        assert len(servers.tools_for_turn(Deadline.after(10))) == 2
    assert reads == [arn]
    assert {r.get("authorization") for r in orders_mcp.requests} == {"Bearer s3cr3t"}
    assert {r.get("x-team") for r in orders_mcp.requests} == {"shop"}
