"""Live turns through the twin (the issue "live turns"): the test model streams word by word with
pauses, and a real WebSocket client watches the frames arrive."""

import asyncio
import time

import pytest
from model_server import Reply

from tests.polling import until_async
from tests.twin.conftest import FUNCTION_TIMEOUT, Socket, history, post, run, session_id

pytestmark = pytest.mark.slow


def words(count: int) -> str:
    return " ".join(f"word{n}" for n in range(count))


def test_deltas_reach_the_client_before_the_model_has_finished(twin, model):
    text = words(20)
    model.queue(Reply.say(text, word_delay=0.1))  # the model takes ~2 s
    session = session_id()

    async def scenario(client):
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session, "Count to twenty.")
            frames = await socket.until_done()
        return socket, frames, await history(client, twin, session)

    socket, frames, stored = run(scenario)
    first_delta = next(at for at, frame in socket.frames if frame["type"] == "delta")
    assert first_delta < model.word_times[-1][-1], "the first delta waited for the model's last word"
    deltas = "".join(frame["text"] for frame in frames if frame["type"] == "delta")
    assert [frame["type"] for frame in frames][0] == "accepted" and frames[-1]["type"] == "reply"
    assert deltas == frames[-1]["reply"] == stored[-1]["text"] == text


def test_a_turn_longer_than_the_function_timeout_completes_over_websocket_and_async_http_not_synchronously(
        twin, model):
    """The long turn outlasts the agent function's timeout by 3 s (the twin's is 10 s; a deployed
    one's 29 s, under the HTTP API's 30 s cut): only the worker, with its own longer timeout, can
    finish it."""
    text = words(30)
    model.queue(*[Reply.slow(text, FUNCTION_TIMEOUT + 3)] * 3)

    async def over_websocket(client):
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session_id(), "Take your time.")
            frames = await socket.until_done(timeout=FUNCTION_TIMEOUT + 30)
        assert frames[-1]["type"] == "reply" and frames[-1]["reply"] == text
        assert "".join(f["text"] for f in frames if f["type"] == "delta") == text

    async def over_async_http(client):
        session = session_id()
        async with client.post(f"{twin.url}/sessions/{session}/messages", json={"message": "Take your time."},
                               headers={"Prefer": "respond-async"}) as response:
            assert response.status == 202, await response.text()
            location = response.headers["Location"]

        async def done():
            async with client.get(f"{twin.url}{location}") as response:
                turn = await response.json()
            assert turn["status"] in ("queued", "running", "done"), turn
            return turn if turn["status"] == "done" else None

        turn = await until_async(done, timeout=FUNCTION_TIMEOUT + 30, every=0.5)
        assert turn["reply"]["reply"] == text

    async def synchronously(client):
        started = time.monotonic()
        status, _, body = await post(client, twin, session_id(), "Take your time.")
        assert status == 504 and body["error"]["code"] == "turn_timeout", body
        assert time.monotonic() - started < FUNCTION_TIMEOUT

    async def scenario(client):
        await asyncio.gather(over_websocket(client), over_async_http(client), synchronously(client))

    run(scenario)


def test_two_messages_sent_back_to_back_both_complete_in_order(twin, model):
    """The second message is sent as soon as the first is accepted, while the first turn still
    runs: it waits in the session's queue, and both complete in the order sent.

    "As soon as the first is accepted" is the protocol's rule: API Gateway invokes the route for
    each message as it arrives, concurrently, so two messages sent in the same instant have no
    order; "accepted" is posted as its turn is queued, so a message sent after it queues after it.
    """
    session = session_id()
    model.queue(Reply.say("Noted: first", word_delay=0.05))  # still streaming when "second" arrives

    async def scenario(client):
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session, "first")
            accepted = await socket.frame()
            await socket.send(session, "second")
            frames = await socket.until_done(turns=2)
        return accepted, frames, await history(client, twin, session)

    accepted, frames, stored = run(scenario)
    assert accepted["type"] == "accepted"
    replies = [f for f in frames if f["type"] == "reply"]
    assert [r["reply"] for r in replies] == ["Noted: first", "Noted: second"]
    assert [(m["role"], m["text"]) for m in stored] == [
        ("user", "first"), ("assistant", "Noted: first"), ("user", "second"), ("assistant", "Noted: second")]
    first, second = (f["turn_id"] for f in replies)
    assert first == accepted["turn_id"]
    for turn in (first, second):  # each turn's frames: accepted first, the reply last
        kinds = [f["type"] for f in frames if f.get("turn_id") == turn]
        assert kinds[0] == "accepted" and kinds[-1] == "reply" and set(kinds[1:-1]) <= {"delta"}, kinds


def test_a_connection_dropped_mid_turn_still_stores_the_turn(twin, model):
    text = words(30)
    model.queue(Reply.say(text, word_delay=0.1))
    session = session_id()

    async def scenario(client):
        known = set(twin.connections.calls)
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session, "Count to thirty.")
            while (await socket.frame())["type"] != "delta":
                pass
        connection_id, = set(twin.connections.calls) - known
        stored = await until_async(lambda: _stored(client, twin, session), timeout=30)
        calls = await until_async(lambda: _gone(twin, connection_id), timeout=10)
        return stored, calls

    stored, calls = run(scenario)
    assert [m["text"] for m in stored] == ["Count to thirty.", text]
    assert calls.gone >= 1 and calls.delivered >= 2  # "accepted" and a delta, then 410 for what followed


async def _stored(client, twin, session):
    async with client.get(f"{twin.url}/sessions/{session}/messages") as response:
        return (await response.json())["messages"] if response.status == 200 else None


async def _gone(twin, connection_id):
    calls = twin.connections.calls[connection_id]
    return calls if calls.gone else None


def test_a_message_naming_a_caller_acts_as_the_connections_caller(twin, sessions):
    session = session_id()
    mallory = "arn:aws:iam::123456789012:user/mallory"

    async def scenario(client):
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session, "Hey, my name is Arindam.", caller=mallory)
            frames = await socket.until_done()
        return frames, await history(client, twin, session)  # over HTTP: the local caller

    frames, stored = run(scenario)
    assert frames[-1]["type"] == "reply"
    assert [m["text"] for m in stored] == ["Hey, my name is Arindam.", frames[-1]["reply"]]
    assert not [p for p in sessions.rglob("*") if "mallory" in str(p)]
