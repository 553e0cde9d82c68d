"""Every kind of bad message through every source: the same `invalid_request` sentence, and
nothing stored or queued. (One model, schemas.TurnIn, builds every source's turn.)"""

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from agent import InvalidRequest
from tests.conftest import Api, stored_files
from tests.websocket.conftest import Aws, WebSocketClient, aws  # noqa: F401  (aws: a fixture of this module too)

LIMIT = 50
SESSION = "bad_messages"
MISSING = object()  # the field left out
BAD_MESSAGES: dict[str, Any] = {
    "missing": MISSING,
    "not-a-string": 42,
    "null": None,
    "empty": "",
    "blank": " \n\t ",
    "over-the-limit": "x" * (LIMIT + 1),
    "lone-surrogate": "hi \ud800",
}
QUEUED_ONLY = {"too-large-for-sqs": "\U0001f600" * 70_000}  # 280 kB as UTF-8 within 100,000 characters


def fields(message: Any) -> dict[str, Any]:
    return {"session_id": SESSION} if message is MISSING else {"session_id": SESSION, "message": message}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# Each source: send the message, return the (code, message) of the answer, as that source gives it.
def http_sync(api: Api, ws: WebSocketClient, message: Any) -> tuple[str, str]:
    status, _, body = api.request("POST", f"/sessions/{SESSION}/messages", {k: v for k, v in fields(message).items()
                                                                          if k == "message"})
    assert status == 400, body
    return body["error"]["code"], body["error"]["message"]


def http_async(api: Api, ws: WebSocketClient, message: Any) -> tuple[str, str]:
    status, _, body = api.request("POST", f"/sessions/{SESSION}/messages",
                                  {k: v for k, v in fields(message).items() if k == "message"},
                                  headers={"Prefer": "respond-async"})
    assert status == 400, body
    return body["error"]["code"], body["error"]["message"]


def websocket(api: Api, ws: WebSocketClient, message: Any) -> tuple[str, str]:
    assert ws.connect("c1") == {"statusCode": 200}
    assert ws.send("c1", {"action": "sendMessage", **fields(message)}) == {"statusCode": 200}
    frame, = ws.aws.frames("c1")
    assert frame["type"] == "error" and "turn_id" not in frame, frame
    return frame["error"]["code"], frame["error"]["message"]


def direct(api: Api, ws: WebSocketClient, message: Any) -> tuple[str, str]:
    result = api.invoke(fields(message))
    return result["error"]["code"], result["error"]["message"]


def sqs(api: Api, ws: WebSocketClient, message: Any) -> tuple[str, str]:
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": json.dumps(fields(message)),
                          "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                          "md5OfBody": "0" * 32, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:my-turns"}]}
    logged = Lines()
    logger = logging.getLogger("handler.sources")  # Powertools' copy of our logger propagates nothing
    logger.addHandler(logged)
    try:
        assert api.invoke(event) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    finally:
        logger.removeHandler(logged)
    refused, = logged.lines
    what, _, answer = refused.partition(" refused: ")
    assert what == "SQS message m-1", refused
    code, _, text = answer.partition(" ")
    return code, text


def eventbridge(api: Api, ws: WebSocketClient, message: Any) -> tuple[str, str]:
    event = {"version": "0", "id": "e-1", "detail-type": "turn", "source": "my.app", "account": "123456789012",
             "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": fields(message)}
    with pytest.raises(InvalidRequest) as refused:
        api.invoke(event)
    return refused.value.code, refused.value.message


SOURCES: dict[str, Callable[..., tuple[str, str]]] = {
    "http-sync": http_sync, "http-async": http_async, "websocket": websocket, "direct": direct, "sqs": sqs,
    "eventbridge": eventbridge,
}
QUEUED_SOURCES = ("http-async", "websocket")
CASES = [(source, kind, message) for kind, message in BAD_MESSAGES.items() for source in SOURCES] + \
        [(source, kind, message) for kind, message in QUEUED_ONLY.items() for source in QUEUED_SOURCES]


@pytest.mark.parametrize(("source", "kind", "message"), CASES, ids=[f"{s}-{k}" for s, k, _ in CASES])
def test_every_bad_message_gets_the_same_answer_from_every_source_and_changes_nothing(
        source: str, kind: str, message: Any, env: dict[str, str], aws: Aws,  # noqa: F811  (aws: the fixture)
        session_dir: Any, model_server: Any) -> None:
    limit = 100_000 if kind in QUEUED_ONLY else LIMIT
    api = Api({**env, "TURN_QUEUE_URL": aws.queue_url, "MAX_MESSAGE_CHARS": str(limit)})
    code, text = SOURCES[source](api, WebSocketClient(api, aws), message)
    assert code == "invalid_request"
    if kind in QUEUED_ONLY:
        assert "turn queue" in text, text
    else:
        assert (code, text) == EXPECTED[kind]
    assert aws.take_turns() == []  # nothing queued
    assert [f for f in stored_files(session_dir) if not f.startswith(".connections/")] == []  # nothing stored
    assert model_server.requests == []


# Each kind's sentence, named: one line saying what is wrong.
EXPECTED = {
    "missing": ("invalid_request", '"message" is missing: send the text for the agent as "message".'),
    "not-a-string": ("invalid_request", '"message" must be a string.'),
    "null": ("invalid_request", '"message" must be a string.'),
    "empty": ("invalid_request", '"message" must be a non-empty string.'),
    "blank": ("invalid_request", '"message" must be a non-empty string.'),
    "over-the-limit": ("invalid_request", f'"message" is {LIMIT + 1} characters long; the limit is {LIMIT}.'),
    "lone-surrogate": ("invalid_request", '"message" must be valid Unicode text.'),
}
