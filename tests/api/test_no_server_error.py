"""No input gets a 500: bytes that are not UTF-8, lone surrogates in a path or a WebSocket frame,
and a store that refuses connections at $connect each get a clean JSON answer naming the cause."""

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from tests.api.test_bad_input import assert_error
from tests.conftest import Api, LambdaContext, http_api_event, stored_files
from tests.websocket.conftest import DOMAIN, Aws, WebSocketClient
from twin.events import websocket_event

SESSION = "user_arindam_convo_123"


def raw_post(api: Api, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    """As API Gateway sends a body that is not UTF-8 text: base64, with isBase64Encoded."""
    event = http_api_event("POST", path, {"content-type": "application/json"}, body, "127.0.0.1")
    response = api.invoke(event)
    return response["statusCode"], response["headers"], json.loads(response["body"])


@pytest.mark.parametrize("body", [b"\xff", b'{"message": "caf\xe9"}', b'{"message": "hi"}\xc3'],
                         ids=["one-byte", "latin-1-message", "cut-sequence"])
def test_a_body_that_is_not_utf8_is_400_and_stores_nothing(api: Api, session_dir, model_server, body: bytes):
    status, headers, answer = raw_post(api, f"/sessions/{SESSION}/messages", body)
    assert_error(status, answer, 400, "invalid_request")
    assert "UTF-8" in answer["error"]["message"]
    assert headers["Content-Type"] == "application/json"
    assert stored_files(session_dir) == [] and model_server.requests == []


def test_a_base64_body_that_is_not_base64_is_400(api: Api):
    event = http_api_event("POST", f"/sessions/{SESSION}/messages", {"content-type": "application/json"}, b"",
                           "127.0.0.1")
    event.update(body="not base64!", isBase64Encoded=True)
    response = api.invoke(event)
    assert_error(response["statusCode"], json.loads(response["body"]), 400, "invalid_request")


def test_a_base64_body_of_utf8_text_is_read(api: Api):
    event = http_api_event("POST", f"/sessions/{SESSION}/messages", {"content-type": "application/json"}, b"",
                           "127.0.0.1")
    event.update(body=base64.b64encode('{"message": "Hey, my name is Zoë."}'.encode()).decode(), isBase64Encoded=True)
    response = api.invoke(event)
    assert response["statusCode"] == 200, response


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/sessions/\ud800/messages"), ("GET", "/sessions/\ud800/messages"), ("DELETE", "/sessions/\ud800"),
    ("GET", "/sessions/a\nb/messages"), ("GET", f"/sessions/{SESSION}/turns/\udfff"), ("DELETE", "/memory/\ud800"),
], ids=["post", "history", "delete", "newline", "turn-id", "fact-id"])
def test_a_path_parameter_that_is_not_valid_text_is_400_naming_it(api: Api, session_dir, method: str, path: str):
    event = http_api_event(method, "/", {"content-type": "application/json"}, b'{"message": "hi"}', "127.0.0.1")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    response = api.invoke(event)
    body = json.loads(response["body"])
    assert_error(response["statusCode"], body, 400, "invalid_request")
    assert "must" in body["error"]["message"]  # the field's rule, not "method not allowed"
    json.dumps(body).encode("utf-8")  # what Lambda returns must be encodable
    assert stored_files(session_dir) == []


def test_a_query_or_header_with_a_lone_surrogate_is_400(api: Api):
    api.post(SESSION, "hello")
    for query in ("cursor=\ud800", "limit=\ud800"):
        status, _, body = api.history(SESSION, query)
        assert_error(status, body, 400, "invalid_request")
    status, _, body = api.post(SESSION, "hi", headers={"Idempotency-Key": "\ud800"})
    assert_error(status, body, 400, "invalid_request")


# ---- WebSocket ----------------------------------------------------------------------------------

@pytest.fixture
def ws(env: dict[str, str]) -> Iterator[WebSocketClient]:
    with mock_aws():
        aws = Aws()
        yield WebSocketClient(Api({**env, "TURN_QUEUE_URL": aws.queue_url}), aws)


@pytest.mark.parametrize("frame", [
    {"action": "sendMessage", "session_id": "\ud800", "message": "hi"},
    {"action": "sendMessage", "session_id": "ok_session", "message": "hi \udfff"},
    {"action": "\ud800", "session_id": "\ud800", "message": "hi"},
    {"action": "sendMessage", "session_id": "ok_session", "message": "hi", "idempotency_key": "\ud800"},
], ids=["session-id", "message", "action", "idempotency-key"])
def test_a_websocket_frame_with_a_lone_surrogate_gets_an_invalid_request_frame(ws: WebSocketClient, frame: dict):
    assert ws.connect("c-surrogate")["statusCode"] == 200
    assert ws.send("c-surrogate", json.dumps(frame)) == {"statusCode": 200}
    (error,) = ws.aws.frames("c-surrogate")
    assert error["type"] == "error" and error["error"]["code"] == "invalid_request", error
    assert error["session_id"] in (None, "ok_session")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connect_while_s3_refuses_connections_is_a_clean_503(env: dict[str, str], monkeypatch, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_free_port()}")  # nobody listens there
    api = Api({**env, "SESSION_BUCKET": "sessions-bucket"})
    identity = {"userArn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012"}
    for route in ("$connect", "$disconnect"):
        answer = api.lambda_handler(websocket_event(route, "c1", domain=DOMAIN, identity=identity),
                                    LambdaContext(timeout_seconds=10))
        if route == "$connect":
            assert answer["statusCode"] == 503, answer
            assert json.loads(answer["body"])["error"]["code"] == "store_unavailable"
            assert "sessions-bucket" not in answer["body"]
        else:
            assert answer["statusCode"] == 200  # the connection is gone either way; its binding expires
