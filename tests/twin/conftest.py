"""One twin for the module's tests (starting one runs the function's init: seconds), on port 0,
with sessions in a temporary folder and the test model; real HTTP and WebSocket clients (aiohttp).

Tests share the twin and the model, so each uses sessions of its own (``session_id()``), and the
model's scripted replies are cleared after each test.
"""

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from model_timing import TimedModel

from tests.fixtures.mcp_server import OrdersMcpServer
from twin.config import Config
from twin.server import Twin, TwinThread
from twin.terminal import Terminal

# Shorter than the template's 29 s, so that a turn outlasting the function (test_live_turns) takes
# seconds rather than 45; every other turn through the twin takes 3 s at most.
FUNCTION_TIMEOUT = 10.0


class Lines(Terminal):
    """The twin's terminal, kept for assertions rather than printed: the twin writes from its own
    thread, between tests too, where pytest captures nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture(scope="package")
def model() -> Iterator[TimedModel]:
    server = TimedModel()  # named first: ModelServer's __enter__ is typed as returning a ModelServer
    with server:
        yield server


@pytest.fixture(scope="package")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("twin") / "sessions"


def function_env(model: TimedModel, sessions: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MODEL_ID": "openai/test-model", "MODEL_API_BASE": model.base_url,
            "MODEL_API_KEY": "sk-test-key", "SESSION_DIR": str(sessions), "LOG_LEVEL": "WARNING", **extra}


@pytest.fixture(scope="package")
def orders_mcp_server() -> Iterator[OrdersMcpServer]:
    """The MCP server the twin's function is configured with (MCP_SERVERS)."""
    with OrdersMcpServer() as server:
        yield server


# The user's agent, as docs/agent.md configures it: the example tool modules and an MCP server.
def your_agent_env(mcp: OrdersMcpServer) -> dict[str, str]:
    return {"AGENT_TOOLS": "agent_tools.orders,agent_tools.tasks",
            "MCP_SERVERS": json.dumps({"mcpServers": {"orders": {"url": mcp.url, "tools": ["lookup_order"]}}})}


@pytest.fixture(scope="package")
def running(model: TimedModel, sessions: Path, orders_mcp_server: OrdersMcpServer) -> Iterator[TwinThread]:
    config = Config(port=0, workers=4, turn_workers=2, function_timeout=FUNCTION_TIMEOUT, turn_timeout=300.0)
    runner = TwinThread(config, function_env(model, sessions, **your_agent_env(orders_mcp_server)), Lines())
    with runner:
        yield runner


@pytest.fixture
def twin(running: TwinThread, model: TimedModel) -> Iterator[Twin]:
    yield running.twin
    model.clear()


def session_id() -> str:
    return f"s_{uuid.uuid4().hex[:12]}"


def start_session(twin: Twin, message: str) -> str:
    """A session with one turn, made over the HTTP API (as another client or browser would)."""
    session = session_id()
    request = urllib.request.Request(f"{twin.url}/sessions/{session}/messages", method="POST",
                                     data=json.dumps({"message": message}).encode(),
                                     headers={"content-type": "application/json"})
    assert urllib.request.urlopen(request).status == 200
    return session


def stored(twin: Twin, session: str) -> list[tuple[str, str]] | None:
    """The session's stored messages, (role, text), as GET /messages gives them; None when nothing is stored."""
    try:
        with urllib.request.urlopen(f"{twin.url}/sessions/{session}/messages") as response:
            return [(m["role"], m["text"]) for m in json.load(response)["messages"]]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def run(scenario: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    """Run an async scenario with a client session (tests stay plain functions)."""
    async def main() -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as client:
            return await scenario(client)

    return asyncio.run(main())


async def post(client: aiohttp.ClientSession, twin: Twin, session: str, message: str,
               headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with client.post(f"{twin.url}/sessions/{session}/messages", json={"message": message},
                           headers=headers or {}) as response:
        return response.status, response.headers, await response.json(content_type=None)


async def history(client: aiohttp.ClientSession, twin: Twin, session: str) -> list[dict[str, Any]]:
    async with client.get(f"{twin.url}/sessions/{session}/messages") as response:
        assert response.status == 200, await response.text()
        return (await response.json())["messages"]


class Socket:
    """A WebSocket client of the twin that keeps every frame with the time it arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[tuple[float, dict[str, Any]]] = []

    async def send(self, session: str, message: str, **extra: Any) -> None:
        frame = {"action": "sendMessage", "session_id": session, "message": message, **extra}
        await self.ws.send_str(json.dumps(frame))

    async def frame(self, timeout: float = 60) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frame = json.loads(message.data)
        self.frames.append((time.perf_counter(), frame))
        return frame

    async def until_done(self, turns: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        """Frames until ``turns`` turns have ended (a reply or an error each)."""
        ended = 0
        while ended < turns:
            if (await self.frame(timeout))["type"] in ("reply", "error"):
                ended += 1
        return [frame for _, frame in self.frames]
