"""POST /messages with `Prefer: respond-async`: 202 at once, the turn runs in a worker, and
GET /sessions/{id}/turns/{turn_id} follows it to its reply. A synchronous POST keeps its 409."""

import json
import threading
import time

import pytest
from model_server import Reply

from tests.conftest import Api
from tests.polling import until

SESSION = "user_arindam_convo_123"
ASYNC = {"Prefer": "respond-async"}


def test_an_async_post_is_accepted_then_done_with_its_reply(ws, aws, model_server):
    api = ws.api
    status, headers, accepted = api.post(SESSION, "Hey, my name is Arindam.", headers=ASYNC)
    assert status == 202
    assert set(accepted) == {"session_id", "turn_id", "status", "location"} and accepted["status"] == "queued"
    assert headers["Location"] == accepted["location"] == f"/sessions/{SESSION}/turns/{accepted['turn_id']}"
    assert api.request("GET", accepted["location"])[2]["status"] == "queued"
    assert model_server.requests == []

    ws.run_worker()

    status, _, turn = api.request("GET", accepted["location"])
    assert status == 200 and turn["status"] == "done" and "error" not in turn
    assert turn["reply"]["reply"] == "Noted: Hey, my name is Arindam." and turn["reply"]["message_count"] == 2
    assert api.texts(SESSION) == ["Hey, my name is Arindam.", "Noted: Hey, my name is Arindam."]


def test_a_failed_async_turn_says_why_and_stores_nothing(ws, aws, model_server):
    model_server.queue(Reply.error(500))
    location = ws.api.post(SESSION, "hello", headers=ASYNC)[2]["location"]
    ws.run_worker()
    turn = ws.api.request("GET", location)[2]
    assert turn["status"] == "failed" and turn["error"]["code"] == "model_error" and "reply" not in turn
    assert ws.api.history(SESSION)[0] == 404


def test_an_async_retry_with_the_same_key_finds_the_same_turn(ws, aws):
    key = {**ASYNC, "Idempotency-Key": "order-42"}
    first = ws.api.post(SESSION, "hello", headers=key)[2]
    again = ws.api.post(SESSION, "hello", headers=key)[2]
    assert again["turn_id"] == first["turn_id"]
    assert len(aws.take_turns()) == 1


def test_an_unknown_turn_is_404(ws):
    status, _, body = ws.api.request("GET", f"/sessions/{SESSION}/turns/t_{'0' * 32}")
    assert status == 404 and body["error"]["code"] == "turn_not_found"


def test_without_a_turn_queue_an_async_post_is_503_and_stores_nothing(api, session_dir):
    status, _, body = api.post(SESSION, "hello", headers=ASYNC)
    assert status == 503 and body["error"]["code"] == "queue_unavailable"
    assert not list(session_dir.rglob("*.json"))


@pytest.mark.slow  # waits on real time
def test_a_sync_post_is_refused_while_a_queued_turn_runs_and_the_worker_waits_for_a_sync_one(ws, aws, model_server):
    model_server.queue(Reply.say("slow sync answer", delay=2.5))
    # Another container, invoked directly: Powertools' HTTP resolver keeps the current event per
    # process, and Lambda never runs two requests in one process.
    other_container = Api(ws.api.env)
    sync = threading.Thread(target=lambda: other_container.invoke({"session_id": SESSION, "message": "sync turn",
                                                                   "caller": "local"}))
    sync.start()
    until(lambda: model_server.requests, timeout=10, what="the sync turn reached the model")  # so it holds the session
    status, _, body = ws.api.post(SESSION, "another sync turn")
    assert status == 409 and body["error"]["code"] == "session_busy"

    location = ws.api.post(SESSION, "queued turn", headers=ASYNC)[2]["location"]
    started = time.monotonic()
    ws.run_worker()  # waits for the session instead of failing
    sync.join()
    assert ws.api.request("GET", location)[2]["status"] == "done" and time.monotonic() - started > 1
    assert ws.api.texts(SESSION)[::2] == ["sync turn", "queued turn"]


def test_turn_records_go_with_the_session(ws, aws):
    location = ws.api.post(SESSION, "hello", headers=ASYNC)[2]["location"]
    ws.run_worker()
    assert ws.api.delete(SESSION)[0] == 204
    assert ws.api.request("GET", location)[0] == 404


@pytest.mark.slow  # waits on real time
def test_the_worker_honours_its_longer_timeout(ws_env, aws, model_server):
    """A turn longer than the HTTP function's 29 s completes in a worker whose timeout is longer:
    simulated here with a 3.5 s function and an 8 s worker, the model taking 2 s."""
    from tests.websocket.conftest import WebSocketClient

    ws = WebSocketClient(Api(ws_env), aws)
    model_server.queue(Reply.stall_before_first_byte(2))
    status, _, body = ws.api.post(SESSION, "slow", timeout=3.5)
    assert status == 504
    model_server.queue(Reply.stall_before_first_byte(2))
    location = ws.api.post(SESSION, "slow", headers=ASYNC, timeout=3.5)[2]["location"]
    ws.run_worker(timeout=8)
    assert ws.api.request("GET", location)[2]["status"] == "done"


def test_an_async_retry_with_the_same_key_and_another_message_is_422_and_queues_nothing(ws, aws):
    key = {**ASYNC, "Idempotency-Key": "order-42"}
    assert ws.api.post(SESSION, "hello", headers=key)[0] == 202
    status, _, body = ws.api.post(SESSION, "something else", headers=key)
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert [json.loads(t["body"])["message"] for t in aws.take_turns()] == ["hello"]



def test_a_message_too_large_for_the_queue_is_400_and_stores_nothing(ws_env, aws, session_dir):
    """MAX_MESSAGE_CHARS may allow more than SQS's 256 KiB takes (100,000 four-byte characters)."""
    from tests.websocket.conftest import WebSocketClient

    ws = WebSocketClient(Api({**ws_env, "MAX_MESSAGE_CHARS": "100000"}), aws)
    status, _, body = ws.api.post(SESSION, "😀" * 70_000, headers=ASYNC)
    assert status == 400 and body["error"]["code"] == "invalid_request" and "262144" in body["error"]["message"]
    ws.connect("c1")
    ws.message("c1", SESSION, "😀" * 70_000)
    refused, = ws.aws.frames("c1")
    assert refused["type"] == "error" and refused["error"]["code"] == "invalid_request" and "turn_id" not in refused
    assert aws.take_turns() == [] and not list(session_dir.glob("*/session_*"))
