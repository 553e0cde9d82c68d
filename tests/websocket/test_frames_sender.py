"""The frames sender against the twin's emulation of @connections (tools/twin/connections.py) on
127.0.0.1, over real HTTP from botocore: with posts that take seconds, the model's stream hands its
text over and goes on at once; the turn's last frame waits for the queue, no longer than the
deadline; a client that has gone (410) stops the sender, not the turn."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent import Deadline
from agent.aws_clients import AwsClients
from handler.frames import Frames
from handler.schemas import ConnectionRef
from tests.conftest import BOTO3_SESSION
from tests.polling import until
from twin.connections import PREFIX, Connection, Connections

REPLY = {"session_id": "s1", "reply": "", "stop_reason": "end_turn",
         "usage": {"input_tokens": 1, "output_tokens": 1}, "message_count": 2}


class Endpoint:
    """@connections as the twin emulates it, and one client connected to it (id "c1") whose
    frames are kept in order."""

    def __init__(self) -> None:
        self.connections = Connections()
        self.received: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.listening = socket.socket()
        self.listening.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listening.getsockname()[1]}"

    def __enter__(self) -> "Endpoint":
        self.thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def _call(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        self.connections.add_routes(app)
        app.router.add_get("/ws", self._socket)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, self.listening).start()
        self.client = aiohttp.ClientSession()
        self.ws = await self.client.ws_connect(f"{self.url}/ws")
        self.reader = asyncio.create_task(self._read())

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        self.connections.open(Connection("c1", ws, "127.0.0.1", "test"))
        await ws.prepare(request)
        async for _ in ws:
            pass
        self.connections.close("c1")
        return ws

    async def _read(self) -> None:
        async for message in self.ws:
            self.received.append(json.loads(message.data))

    def disconnect(self) -> None:
        self._call(self.ws.close())

    async def _stop(self) -> None:
        await self.ws.close()
        await self.client.close()
        await self.runner.cleanup()

    def frames(self, deadline: Deadline) -> Frames:
        connection = ConnectionRef(id="c1", endpoint=self.url + PREFIX)
        return Frames(AwsClients(BOTO3_SESSION), connection, "s1", "t_1", deadline)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as running:
        yield running


def test_a_slow_post_never_holds_up_the_stream_and_the_last_frame_waits_for_every_frame(endpoint):
    endpoint.connections.slow["c1"] = 2.0  # each POST @connections takes 2 s
    frames = endpoint.frames(Deadline.after(60))
    words = [f"word{n} " for n in range(50)]
    handed_over = []
    for word in words:  # as the model's stream calls it
        started = time.perf_counter()
        frames.delta(word)
        handed_over.append(time.perf_counter() - started)
    assert max(handed_over) < 0.5, f"the stream waited {max(handed_over):.2f} s on a post"  # a post takes 2 s

    frames.reply({**REPLY, "reply": "".join(words)})  # returns once the reply is posted
    # Posted is not yet read: the client's reader takes it off its socket in its own time.
    until(lambda: endpoint.received and endpoint.received[-1]["type"] == "reply", timeout=10,
          what="the client read the reply")
    received = endpoint.received
    assert "".join(f["text"] for f in received if f["type"] == "delta") == "".join(words)
    assert [f["seq"] for f in received] == list(range(1, len(received) + 1))
    assert len(received) <= 4  # the text that came while a post was slow went in the next one


def test_the_last_frame_waits_no_longer_than_the_deadline(endpoint):
    endpoint.connections.slow["c1"] = 3.0
    frames = endpoint.frames(Deadline.after(1.0))
    started = time.perf_counter()
    frames.delta("Hello")
    frames.reply({**REPLY, "reply": "Hello"})
    assert time.perf_counter() - started < 2.0  # the deadline, and one short try for the reply


def test_a_client_that_has_gone_stops_the_sender_not_the_turn(endpoint):
    endpoint.disconnect()
    frames = endpoint.frames(Deadline.after(30))
    frames.delta("Hello")
    frames.delta(" there")
    frames.reply({**REPLY, "reply": "Hello there"})  # no exception: the turn goes on
    calls = endpoint.connections.calls["c1"]
    assert (calls.posts, calls.gone) == (1, 1)  # nothing was posted after the 410


def test_the_models_last_words_go_at_once_not_after_the_coalescing_wait(endpoint):
    """Text that comes while a delta is being posted is held to go in the next frame, at most one a
    COALESCE_SECONDS; once the model has written its last word, it goes as soon as the post
    before it is done, beside the turn's commit, so the reply frame does not wait for it."""
    now = [0.0]
    connection = ConnectionRef(id="c1", endpoint=endpoint.url + PREFIX)
    frames = Frames(AwsClients(BOTO3_SESSION), connection, "s1", "t_1", Deadline.after(30), clock=lambda: now[0])
    frames.delta("Hello")  # the first at once
    until(lambda: len(endpoint.received) == 1, timeout=10, what="the first delta was posted")
    frames.delta(" world")  # held: the clock (frozen) says the last post was just now
    frames.model_done()
    until(lambda: len(endpoint.received) == 2, timeout=10, what="the held text was posted without the clock moving")
    assert [f["text"] for f in endpoint.received] == ["Hello", " world"]


def test_a_turn_has_one_last_frame(endpoint):
    """The worker sends the reply as the turn is stored; its own reply after the turn returns (for
    a reply replayed from the record) then posts nothing more."""
    frames = endpoint.frames(Deadline.after(30))
    frames.delta("Hi")
    frames.reply({**REPLY, "reply": "Hi"})
    frames.reply({**REPLY, "reply": "Hi"})
    frames.error({"error": {"code": "x", "message": "y"}})
    until(lambda: endpoint.received and endpoint.received[-1]["type"] == "reply", timeout=10, what="the reply")
    assert [f["type"] for f in endpoint.received] == ["delta", "reply"]
