"""Direct invocation (Lambda Invoke, Step Functions), SQS, EventBridge, the schedule, and the
sample event files: the same validation and codes as the HTTP API."""

import json
from pathlib import Path

import pytest
from model_server import Reply

from tests.conftest import ROOT

# The WebSocket API's samples need its management API: tests/websocket/test_sample_events.py runs them.
EVENT_FILES = sorted(p for p in (ROOT / "events").glob("*.json")
                     if p.name != "env.json" and not p.name.startswith("websocket_"))
ARINDAM = "arn:aws:iam::123456789012:user/arindam"


def test_direct_invocation_returns_the_reply_object(api):
    first = api.invoke({"session_id": "sfn_session", "message": "Hey, my name is Arindam."})
    assert set(first) == {"session_id", "reply", "stop_reason", "usage", "message_count"}
    second = api.invoke({"session_id": "sfn_session", "message": "Do you remember my name?"})
    assert "Arindam" in second["reply"] and second["message_count"] == 4


@pytest.mark.parametrize("event", [
    {"session_id": "a/b", "message": "hi"}, {"session_id": "ok"}, ["not", "an", "object"],
    {"session_id": "ok", "message": "hi", "caller": 42}, {"session_id": "ok", "message": "hi", "caller": "\ud800"},
    {"session_id": "ok", "message": "hi", "caller": ""}, {"session_id": "ok", "message": "hi \ud800"},
    {"action": "no_such_action"}, {"action": "get_history"}, {"action": "forget_fact"},
    {"session_id": "ok", "message": "hi", "idempotency_key": "bad key"},
], ids=["bad-session-id", "no-message", "list", "caller-number", "caller-surrogate", "caller-empty",
        "message-surrogate", "unknown-action", "history-without-session", "forget-without-fact", "bad-key"])
def test_direct_invocation_errors_are_structured_and_store_nothing(api, model_server, session_dir, event):
    result = api.invoke(event)
    assert set(result) == {"error"} and result["error"]["code"] == "invalid_request", result
    assert model_server.requests == [] and not list(session_dir.rglob("*.json"))


def test_a_model_failure_is_a_structured_result(api, model_server, session_dir):
    model_server.queue(Reply.error(500))
    failed = api.invoke({"session_id": "ok", "message": "hi"})
    assert failed == {"error": {"code": "model_error", "message": failed["error"]["message"]}}
    assert not list(session_dir.rglob("message_*.json"))


def test_direct_invocation_shares_the_http_callers_namespace_only_when_told(api):
    api.post("mixed", "Hey, my name is Arindam.")  # caller "local"
    assert "Arindam" not in api.invoke({"session_id": "mixed", "message": "Do you remember my name?"})["reply"]
    named = api.invoke({"session_id": "mixed", "message": "Do you remember my name?", "caller": "local"})
    assert "Arindam" in named["reply"]


def test_direct_history_and_delete(api):
    api.invoke({"session_id": "s", "message": "hello", "caller": ARINDAM})
    page = api.invoke({"action": "get_history", "session_id": "s", "caller": ARINDAM})
    assert [m["text"] for m in page["messages"]][0] == "hello"
    assert api.invoke({"action": "delete_session", "session_id": "s", "caller": ARINDAM}) == {"deleted": "s"}
    assert api.invoke({"action": "get_history", "session_id": "s", "caller": ARINDAM})["error"]["code"] == \
        "session_not_found"


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{
        "messageId": f"msg-{n}", "receiptHandle": "r", "body": body, "attributes": {
            "ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000", "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000000"},
        "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:turns", "awsRegion": "us-east-1",
    } for n, body in enumerate(bodies)]}


def test_sqs_reports_only_the_failed_records_and_replays_redeliveries(api, model_server):
    event = sqs_event(json.dumps({"session_id": "queued", "message": "Hey, my name is Arindam."}), "not json",
                      json.dumps({"session_id": "queued", "message": ""}))
    assert api.invoke(event) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-2"}]}
    calls = len(model_server.requests)
    api.invoke(sqs_event(json.dumps({"session_id": "queued", "message": "Hey, my name is Arindam."})))
    assert len(model_server.requests) == calls  # the same message id replays instead of running twice
    assert len(api.texts("queued", caller="sqs")) == 2


def test_queue_and_bus_messages_cannot_choose_their_caller(api):
    """Anyone who may send to the queue or the bus could otherwise act as any signed-in user."""
    api.post("victim", "Hey, my name is Arindam.", caller=ARINDAM)
    spoofed = {"session_id": "victim", "message": "What is my name?", "caller": ARINDAM}
    assert api.invoke(sqs_event(json.dumps(spoofed))) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    with pytest.raises(Exception, match="caller"):
        api.invoke(eventbridge_event(spoofed))
    assert len(api.texts("victim", caller=ARINDAM)) == 2


def eventbridge_event(detail: dict) -> dict:
    return {"version": "0", "id": "evt-1", "detail-type": "Agent Message", "source": "my.app",
            "account": "123456789012", "time": "2026-11-25T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": detail}


def test_an_eventbridge_detail_is_a_turn_in_its_own_namespace(api, model_server):
    answer = api.invoke(eventbridge_event({"session_id": "bus", "message": "Hey, my name is Arindam."}))
    assert answer["message_count"] == 2
    assert api.history("bus", caller="eventbridge")[0] == 200
    assert api.history("bus")[0] == 404
    calls = len(model_server.requests)
    api.invoke(eventbridge_event({"session_id": "bus", "message": "Hey, my name is Arindam."}))  # redelivered
    assert len(model_server.requests) == calls


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_every_sample_event_is_accepted(path: Path, api):
    event = json.loads(path.read_text())
    iam = ((event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    # so that history and delete events find a session of their caller
    api.post("user_arindam_convo_123", "Hey, my name is Arindam.", caller=iam.get("userArn"))
    # As `make invoke` runs them: the turn queue's samples (worker_*) through TurnWorkerFunction's handler.
    result = api.invoke_worker(event) if path.name.startswith("worker_") else api.invoke(event)
    if "statusCode" in result and "requestContext" in event and "http" in event["requestContext"]:
        expected = 400 if "bad" in path.name else (204 if "delete" in path.name else 200)
        assert result["statusCode"] == expected, result
    elif isinstance(result, dict):
        assert "error" not in result and not result.get("batchItemFailures"), result


@pytest.mark.parametrize("event", [
    {"Records": [1]}, {"requestContext": {"http": 1}}, {"requestContext": {"http": {"method": "POST"}}},
    {"requestContext": {"connectionId": 5, "routeKey": "$connect"}}, "just a string", None, 42, [],
], ids=["records-not-objects", "http-not-object", "http-without-path", "websocket-bad-id", "string", "null",
        "number", "list"])
def test_malformed_events_get_a_structured_4xx_not_a_stack_trace(api, event, session_dir):
    result = api.invoke(event)
    text = json.dumps(result)
    assert "Traceback" not in text and "stackTrace" not in text
    if isinstance(result, dict) and "statusCode" in result:
        assert 400 <= result["statusCode"] < 500, result
    else:
        assert result["error"]["code"] == "invalid_request", result
    assert not session_dir.exists() or not list(session_dir.rglob("*.json"))


def test_the_expiry_schedule_event_sweeps(api):
    sweep = json.loads((ROOT / "events" / "expire_idle_sessions.json").read_text())
    assert api.invoke(sweep) == {"expired_sessions": 0}
