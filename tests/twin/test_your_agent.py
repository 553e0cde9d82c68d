"""The user's agent on the twin, as `make dev` runs it (the twin's function has AGENT_TOOLS and
MCP_SERVERS set, see conftest): a tool module's tool and an MCP server's tool called in turns, a
task list that survives its container being killed, GET /sessions/{id}/state, and structured
output over HTTP and in the WebSocket reply frame."""

import os
import signal
from typing import Any

import pytest

from tests.fixtures.mcp_server import OrdersMcpServer
from tests.polling import until_async
from tests.twin.conftest import Socket, post, run, session_id

pytestmark = pytest.mark.slow

DECISION = {"type": "object", "properties": {"decision": {"enum": ["approve", "reject"]}, "reason": {"type": "string"}},
            "required": ["decision", "reason"]}


def test_a_tool_module_and_an_mcp_server_are_used_in_turns(twin: Any, orders_mcp_server: OrdersMcpServer) -> None:
    session = session_id()

    async def scenario(client: Any) -> list[Any]:
        return [await post(client, twin, session, "use get_order_status for order A-101"),
                await post(client, twin, session, "use orders_lookup_order for A-102")]

    (status, _, body), (mcp_status, _, mcp_body) = run(scenario)
    assert (status, body["reply"]) == (200, "The tool returned: Order A-101: being packed, ships tomorrow.")
    assert (mcp_status, mcp_body["reply"]) == (200, "The tool returned: Order A-102: delivered on 2026-10-28")
    assert ("lookup_order", {"order_id": "A-102"}) in orders_mcp_server.calls


def test_a_task_list_survives_its_container_and_is_read_as_state(twin: Any) -> None:
    session, pool = session_id(), twin.pools["AgentFunction"]

    async def scenario(client: Any) -> tuple[Any, Any]:
        await post(client, twin, session, "add a task step: book the flight")
        await post(client, twin, session, "add a task step: reserve the hotel")
        before = pool.pids()
        for pid in before:  # every container that may have served those turns: a restart
            os.kill(pid, signal.SIGKILL)
        await until_async(lambda: _all_replaced(pool, before), timeout=30, every=0.05)
        done = await post(client, twin, session, "complete task step 2")
        async with client.get(f"{twin.url}/sessions/{session}/state") as response:
            return done, (response.status, await response.json())

    (status, _, body), state = run(scenario)
    assert status == 200 and "1. [ ] book the flight\n2. [x] reserve the hotel" in body["reply"]
    assert state == (200, {"session_id": session, "state": {"task_steps": [
        {"step": 1, "text": "book the flight", "done": False},
        {"step": 2, "text": "reserve the hotel", "done": True}]}})


def test_structured_output_over_http_and_in_the_reply_frame(twin: Any) -> None:
    session = session_id()

    async def scenario(client: Any) -> tuple[Any, list[dict[str, Any]]]:
        async with client.post(f"{twin.url}/sessions/{session}/messages",
                               json={"message": "approve the refund", "output_schema": DECISION}) as response:
            http = response.status, await response.json()
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session, "reject it after all", output_schema=DECISION)
            return http, await socket.until_done()

    (status, body), frames = run(scenario)
    assert (status, body["output"]) == (200, {"decision": "approve", "reason": "approve the refund"})
    assert frames[-1]["type"] == "reply"
    assert frames[-1]["output"] == {"decision": "reject", "reason": "reject it after all"}


async def _all_replaced(pool: Any, before: list[int]) -> bool:
    pids = pool.pids()
    return len(pids) == len(before) and not set(pids) & set(before)
