"""What a client sees over HTTP, through the twin: concurrency and retries on one session, the
twin's pages, and requests too malformed to become an event."""

import asyncio
import socket
from collections import Counter

import pytest
from model_server import Reply

from tests.twin.conftest import history, post, run, session_id

pytestmark = pytest.mark.slow


def test_parallel_turns_on_one_session_store_exactly_the_accepted_ones(twin, model):
    model.delay = 0.6  # every turn overlaps the others
    session = session_id()

    async def scenario(client):
        results = await asyncio.gather(*(post(client, twin, session, f"message {n}") for n in range(8)))
        return results, await history(client, twin, session)

    results, stored = run(scenario)
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) == {200, 409}, statuses  # some turns won the session, the others were told so
    for status, headers, body in results:
        if status == 409:
            assert body["error"]["code"] == "session_busy" and int(headers["Retry-After"]) >= 1
    accepted = sorted(f"message {n}" for n, (status, _, _) in enumerate(results) if status == 200)
    assert [m["role"] for m in stored] == ["user", "assistant"] * len(accepted)
    assert [m["index"] for m in stored] == list(range(len(stored)))
    assert sorted(m["text"] for m in stored if m["role"] == "user") == accepted
    for question, answer in zip(stored[::2], stored[1::2], strict=True):
        assert answer["text"] == f"Noted: {question['text']}"


def test_retry_with_the_same_idempotency_key_replays_the_first_reply(twin, model):
    session = session_id()

    async def scenario(client):
        key = {"Idempotency-Key": "turn-0001"}
        status, _, first = await post(client, twin, session, "Hey, my name is Arindam.", key)
        assert status == 200
        calls = len(model.requests)
        status, _, again = await post(client, twin, session, "Hey, my name is Arindam.", key)
        assert status == 200 and again == first
        assert len(model.requests) == calls  # the model was not asked again
        assert len(await history(client, twin, session)) == 2  # and nothing was appended
        other_key = {"Idempotency-Key": "turn-0002"}
        status, _, other = await post(client, twin, session, "Hey, my name is Arindam.", other_key)
        assert status == 200 and other["message_count"] == 4
        assert len(model.requests) == calls + 1

    run(scenario)


def test_an_idempotency_key_reused_for_another_message_is_refused(twin):
    session = session_id()

    async def scenario(client):
        key = {"Idempotency-Key": "turn-0003"}
        assert (await post(client, twin, session, "first message", key))[0] == 200
        status, _, body = await post(client, twin, session, "a different message", key)
        assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
        assert len(await history(client, twin, session)) == 2

    run(scenario)


def test_a_failed_turn_is_not_replayed_by_its_key(twin, model):
    session = session_id()
    model.queue(Reply.error(500))

    async def scenario(client):
        key = {"Idempotency-Key": "turn-0004"}
        assert (await post(client, twin, session, "hello", key))[0] == 502
        status, _, body = await post(client, twin, session, "hello", key)
        assert status == 200 and body["message_count"] == 2

    run(scenario)


def test_cookies_and_headers_come_and_go_as_api_gateway_passes_them(twin):
    async def scenario(client):
        async with client.get(f"{twin.url}/sessions/{session_id()}/messages", headers={"Cookie": "a=1"}) as response:
            assert response.status == 404  # the handler answered: the event was well formed
            assert response.headers["apigw-requestid"]
            assert (await response.json())["error"]["code"] == "session_not_found"
        async with client.post(f"{twin.url}/no/such/route") as response:
            assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
        async with client.post(f"{twin.url}/") as response:  # only GET / is the chat page
            assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"

    run(scenario)


def test_the_chat_page_the_docs_and_the_openapi_document(twin):
    async def scenario(client):
        async with client.get(f"{twin.url}/") as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
        async with client.get(f"{twin.url}/docs") as response:
            page = await response.text()
            assert response.status == 200 and "/docs/swagger-ui-bundle.min.js" in page and '"openapi"' in page
        for asset in ("swagger-ui-bundle.min.js", "swagger-ui.min.css"):
            async with client.get(f"{twin.url}/docs/{asset}") as response:
                assert response.status == 200 and len(await response.read()) > 100_000
        async with client.get(f"{twin.url}/openapi.json") as response:
            assert response.status == 200 and "/sessions/{session_id}/messages" in (await response.json())["paths"]
        async with client.get(f"{twin.url}/ws") as response:  # not an upgrade: no $connect is invoked
            assert response.status == 426

    run(scenario)


def raw_request(port: int, data: bytes) -> bytes:
    """What the server answers to ``data`` on a fresh connection (it must answer, not hang)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /sessions/a/messages HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST /sessions/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /sessions/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /sessions/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
], ids=["request-line", "http-version", "negative-length", "non-numeric-length", "two-lengths"])
def test_a_malformed_request_is_answered_400(twin, request_bytes):
    answer = raw_request(twin.port, request_bytes)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", answer[:200]
