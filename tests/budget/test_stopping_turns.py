"""DELETE /sessions/{id}/turns/{turn_id} and WebSocket cancelTurn: a queued turn never runs, a
running one stops within 2 s, stores nothing and ends "cancelled"; the WebSocket client gets one
error frame, turn_cancelled. Another caller's turn is 404."""

import threading
import time
from typing import Any

from model_server import Reply

from tests.polling import until
from tests.websocket.conftest import ALICE, BOB, WebSocketClient

ASYNC = {"Prefer": "respond-async"}
SESSION = "long_job"
STOPS_WITHIN = 2.0
# A long turn: 30 s in all, a pause of 3 s before each word (a stream that is silent for longer
# than the turn may take to stop), so only a cancel can end it in time.
LONG_REPLY = Reply.slow("one two three four five six seven eight nine ten", 30)


def worker_in_background(ws: WebSocketClient) -> threading.Thread:
    thread = threading.Thread(target=ws.run_worker, daemon=True)
    thread.start()
    return thread


def stopped_in(thread: threading.Thread, since: float) -> float:
    thread.join(timeout=10)
    assert not thread.is_alive(), "the worker is still running the turn"
    return time.monotonic() - since


def status_of(ws: WebSocketClient, location: str, caller: str = ALICE) -> Any:
    return ws.api.request("GET", location, caller=caller)[2]


def test_a_running_turn_cancelled_over_http_stops_within_2_s_and_stores_nothing(ws, model_server):
    model_server.queue(LONG_REPLY)
    accepted = ws.api.post(SESSION, "write me a long essay", headers=ASYNC, caller=ALICE)[2]
    location = accepted["location"]
    worker = worker_in_background(ws)
    until(lambda: model_server.requests, timeout=10, what="the model was asked")

    cancelled_at = time.monotonic()
    status, _, body = ws.api.request("DELETE", location, caller=ALICE)

    assert status == 202 and body["status"] == "cancelling" and body["turn_id"] == accepted["turn_id"]
    assert stopped_in(worker, cancelled_at) < STOPS_WITHIN
    ended = status_of(ws, location)
    assert ended["status"] == "cancelled" and ended["error"]["code"] == "turn_cancelled"
    assert ws.api.history(SESSION, caller=ALICE)[0] == 404  # nothing of the turn was stored
    assert len(model_server.requests) == 1


def test_a_running_turn_cancelled_over_the_websocket_stops_within_2_s_with_one_error_frame(ws, aws, model_server):
    ws.api.post(SESSION, "a first turn, stored", caller=ALICE)
    model_server.queue(LONG_REPLY)
    ws.connect("c1")
    ws.message("c1", SESSION, "write me a long essay")
    turn_id = aws.frames("c1")[0]["turn_id"]
    worker = worker_in_background(ws)
    until(lambda: any(f["type"] == "delta" for f in aws.frames("c1")), timeout=10, what="the reply streams")

    cancelled_at = time.monotonic()
    ws.send("c1", {"action": "cancelTurn", "session_id": SESSION, "turn_id": turn_id}, route="cancelTurn")

    assert stopped_in(worker, cancelled_at) < STOPS_WITHIN
    ends = [f for f in aws.frames("c1") if f["type"] in ("reply", "error")]
    assert len(ends) == 1 and ends[0]["error"]["code"] == "turn_cancelled" and ends[0]["turn_id"] == turn_id
    assert status_of(ws, f"/sessions/{SESSION}/turns/{turn_id}")["status"] == "cancelled"
    assert ws.api.texts(SESSION, caller=ALICE) == ["a first turn, stored", "Noted: a first turn, stored"]


def test_a_queued_turn_cancelled_never_calls_the_model(ws, aws, model_server):
    ws.connect("c1")
    ws.message("c1", SESSION, "never mind")
    turn_id = aws.frames("c1")[0]["turn_id"]
    location = f"/sessions/{SESSION}/turns/{turn_id}"

    status, _, body = ws.api.request("DELETE", location, caller=ALICE)
    ws.run_worker()

    assert status == 202 and body["status"] == "cancelled"
    assert model_server.requests == []
    assert status_of(ws, location)["status"] == "cancelled"
    accepted, cancelled = aws.frames("c1")
    assert accepted["type"] == "accepted" and cancelled["error"]["code"] == "turn_cancelled"


def test_another_callers_turn_is_not_found_and_left_running(ws, aws, model_server):
    location = ws.api.post(SESSION, "mine", headers=ASYNC, caller=ALICE)[2]["location"]
    ws.connect("bob", caller=BOB)
    turn_id = location.rsplit("/", 1)[1]

    status, _, body = ws.api.request("DELETE", location, caller=BOB)
    ws.send("bob", {"action": "cancelTurn", "session_id": SESSION, "turn_id": turn_id}, route="cancelTurn")
    ws.run_worker()

    assert status == 404 and body["error"]["code"] == "turn_not_found"
    [refused] = aws.frames("bob")
    assert refused["error"]["code"] == "turn_not_found" and "turn_id" not in refused
    assert status_of(ws, location)["status"] == "done"


def test_a_turn_that_ended_stays_as_it_ended(ws, model_server):
    location = ws.api.post(SESSION, "quick", headers=ASYNC, caller=ALICE)[2]["location"]
    ws.run_worker()

    status, _, body = ws.api.request("DELETE", location, caller=ALICE)

    assert status == 202 and body["status"] == "done" and body["reply"]["reply"] == "Noted: quick"
    assert ws.api.texts(SESSION, caller=ALICE) == ["quick", "Noted: quick"]


def test_a_cancelled_turn_with_a_key_runs_again_when_sent_again(ws, model_server):
    key = {**ASYNC, "Idempotency-Key": "essay-1"}
    location = ws.api.post(SESSION, "essay", headers=key, caller=ALICE)[2]["location"]
    ws.api.request("DELETE", location, caller=ALICE)

    again = ws.api.post(SESSION, "essay", headers=key, caller=ALICE)
    ws.run_worker()

    assert again[0] == 202 and again[2]["location"] == location
    assert status_of(ws, location)["status"] == "done"
    assert len(model_server.requests) == 1


def test_a_turn_cancelled_while_it_waits_for_its_busy_session_never_calls_the_model(ws, aws, model_server):
    """The worker marked the turn running, found the session held by a synchronous POST and waits
    for it; a cancel comes meanwhile. Its next try reads the record with the session and stops."""
    model_server.queue(Reply.slow("a synchronous reply that takes a while", 4))
    holder = threading.Thread(target=lambda: ws.api.post(SESSION, "hold the session", caller=ALICE), daemon=True)
    holder.start()
    until(lambda: model_server.requests, timeout=10, what="the synchronous turn holds the session")
    location = ws.api.post(SESSION, "queued behind it", headers=ASYNC, caller=ALICE)[2]["location"]
    worker = worker_in_background(ws)
    until(lambda: status_of(ws, location)["status"] == "running", timeout=10, what="the worker took the turn")

    assert ws.api.request("DELETE", location, caller=ALICE)[2]["status"] == "cancelling"
    worker.join(timeout=20)
    holder.join(timeout=20)

    assert not worker.is_alive() and len(model_server.requests) == 1  # the synchronous turn's only
    assert status_of(ws, location)["status"] == "cancelled"
    assert ws.api.texts(SESSION, caller=ALICE) == ["hold the session", "a synchronous reply that takes a while"]
