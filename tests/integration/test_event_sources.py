"""Direct invocation (Lambda Invoke, Step Functions), SQS, EventBridge and the sample event files."""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from model_server import Reply

EVENT_FILES = sorted(p for p in (ROOT / "events").glob("*.json") if p.name != "env.json")


def test_direct_invocation_returns_the_reply_object(api, model_env):
    first = api.invoke({"session_id": "sfn_session", "message": "Hey, my name is Arindam."})
    assert set(first) == {"session_id", "reply", "stop_reason", "usage", "message_count"}
    second = api.invoke({"session_id": "sfn_session", "message": "Do you remember my name?"})
    assert "Arindam" in second["reply"] and second["message_count"] == 4


def test_direct_invocation_errors_are_structured(api, model_env, session_dir):
    assert api.invoke({"session_id": "a/b", "message": "hi"})["error"]["code"] == "invalid_request"
    assert api.invoke({"session_id": "ok"})["error"]["code"] == "invalid_request"
    assert api.invoke(["not", "an", "object"])["error"]["code"] == "invalid_request"
    model_env.queue(Reply.error(500))
    failed = api.invoke({"session_id": "ok", "message": "hi"})
    assert failed == {"error": {"code": "model_error", "message": failed["error"]["message"]}}
    assert not session_dir.exists() or not list(session_dir.rglob("message_*.json"))


def test_direct_invocation_shares_the_http_callers_namespace_only_when_told(api, model_env):
    api.post("mixed", "Hey, my name is Arindam.")  # caller "local"
    assert "Arindam" not in api.invoke({"session_id": "mixed", "message": "Do you remember my name?"})["reply"]
    named = api.invoke({"session_id": "mixed", "message": "Do you remember my name?", "caller": "local"})
    assert "Arindam" in named["reply"]


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{
        "messageId": f"msg-{n}", "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
        "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:turns",
        "awsRegion": "us-east-1"} for n, body in enumerate(bodies)]}


def test_sqs_reports_only_the_failed_records_and_replays_redeliveries(api, model_env):
    event = sqs_event(json.dumps({"session_id": "queued", "message": "Hey, my name is Arindam."}), "not json")
    assert api.invoke(event) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    calls = len(model_env.requests)
    api.invoke(sqs_event(json.dumps({"session_id": "queued", "message": "Hey, my name is Arindam."})))
    assert len(model_env.requests) == calls  # the same message id replays instead of running twice
    assert len(api.history("queued", caller="sqs")[2]["messages"]) == 2


def test_queue_and_bus_messages_cannot_choose_their_caller(api, model_env):
    """Anyone who may send to the queue or the bus could otherwise act as any signed-in user."""
    api.post("victim", "Hey, my name is Arindam.", caller="arn:aws:iam::123456789012:user/arindam")
    spoofed = json.dumps({"session_id": "victim", "message": "What is my name?",
                          "caller": "arn:aws:iam::123456789012:user/arindam"})
    assert api.invoke(sqs_event(spoofed)) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    with pytest.raises(Exception):
        api.invoke({"id": "evt-2", "detail-type": "Agent Message", "source": "my.app",
                    "detail": json.loads(spoofed)})
    assert len(api.history("victim", caller="arn:aws:iam::123456789012:user/arindam")[2]["messages"]) == 2


def test_eventbridge_detail_is_a_turn(api, model_env):
    event = {"version": "0", "id": "evt-1", "detail-type": "Agent Message", "source": "my.app",
             "account": "123456789012", "time": "2026-11-25T00:00:00Z", "region": "us-east-1", "resources": [],
             "detail": {"session_id": "bus", "message": "Hey, my name is Arindam."}}
    assert api.invoke(event)["message_count"] == 2
    assert api.history("bus", caller="eventbridge")[0] == 200
    assert api.history("bus")[0] == 404  # its own namespace, not the local caller's


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_every_sample_event_is_accepted(path: Path, api, model_env):
    event = json.loads(path.read_text())
    iam = ((event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    # so that history and delete events find a session of their caller
    api.post("user_arindam_convo_123", "Hey, my name is Arindam.", caller=iam.get("userArn"))
    result = api.invoke(event)
    if "statusCode" in result:
        expected = 400 if "bad" in path.name else (204 if "delete" in path.name else 200)
        assert result["statusCode"] == expected, result
    else:
        assert "error" not in result, result


@pytest.mark.parametrize("event", [
    {"Records": [1]}, {"requestContext": {"http": 1}},
    {"requestContext": {"http": {"method": "POST"}}}, "just a string", None, 42,
], ids=["records-not-objects", "http-not-object", "http-without-path",
        "string", "null", "number"])
def test_malformed_events_get_a_structured_error_not_a_stack_trace(api, event, session_dir):
    result = api.invoke(event)
    assert "error" in result or result.get("batchItemFailures"), result
    assert "Traceback" not in json.dumps(result) and "stackTrace" not in json.dumps(result)
    assert not session_dir.exists() or not list(session_dir.rglob("*.json"))
