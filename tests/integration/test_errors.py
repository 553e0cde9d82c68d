"""Bad input gets a 4xx JSON error and changes nothing; failures of the model or the store never
corrupt a session nor leak a stack trace or a secret."""

import json
import uuid

import boto3
import pytest

from tests.conftest import Api, BUCKET, bucket_keys, load_handler, stored_files
from model_server import Reply

SESSION = "user_arindam_convo_123"

BAD_POSTS = [
    # (description, session id, raw body, status, code)
    ("body not JSON", SESSION, "this is not json", 400, "invalid_json"),
    ("empty body", SESSION, "", 400, "invalid_json"),
    ("body a list", SESSION, '["hello"]', 400, "invalid_request"),
    ("body a string", SESSION, '"hello"', 400, "invalid_request"),
    ("message missing", SESSION, '{"text": "hello"}', 400, "invalid_request"),
    ("message empty", SESSION, '{"message": ""}', 400, "invalid_request"),
    ("message blank", SESSION, '{"message": "   \\n "}', 400, "invalid_request"),
    ("message a number", SESSION, '{"message": 42}', 400, "invalid_request"),
    ("message null", SESSION, '{"message": null}', 400, "invalid_request"),
    ("message too long", SESSION, json.dumps({"message": "x" * 16001}), 400, "invalid_request"),
    ("session id with a dot", "a.b", '{"message": "hi"}', 400, "invalid_request"),
    ("session id dot-dot", "..", '{"message": "hi"}', 400, "invalid_request"),
    ("session id encoded slash", "a%2Fb", '{"message": "hi"}', 400, "invalid_request"),
    ("session id with a space", "a%20b", '{"message": "hi"}', 400, "invalid_request"),
    ("session id with a control character", "a%0Ab", '{"message": "hi"}', 400, "invalid_request"),
    ("session id not ASCII", "caf%C3%A9", '{"message": "hi"}', 400, "invalid_request"),
    ("session id starting with -", "-abc", '{"message": "hi"}', 400, "invalid_request"),
    ("session id too long", "a" * 129, '{"message": "hi"}', 400, "invalid_request"),
    ("message not valid Unicode", SESSION, '{"message": "hi \\ud800"}', 400, "invalid_request"),
]


def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("case", BAD_POSTS, ids=[c[0] for c in BAD_POSTS])
def test_bad_input_is_refused_and_writes_nothing_on_files(case, api, model_env, session_dir):
    _, session_id, raw, expected_status, code = case
    status, headers, body = api.request("POST", f"/sessions/{session_id}/messages", raw_body=raw)
    assert_error(status, body, expected_status, code)
    assert headers["Content-Type"] == "application/json"
    assert stored_files(session_dir) == []
    assert model_env.requests == []


@pytest.mark.parametrize("case", BAD_POSTS[::3], ids=[c[0] for c in BAD_POSTS[::3]])
def test_bad_input_is_refused_and_writes_nothing_on_s3(case, s3_api, model_env, s3_bucket):
    _, session_id, raw, expected_status, code = case
    status, _, body = s3_api.request("POST", f"/sessions/{session_id}/messages", raw_body=raw)
    assert_error(status, body, expected_status, code)
    assert bucket_keys(s3_bucket) == []


def test_message_at_the_limit_is_accepted(api):
    assert api.post(SESSION, "x" * 16000)[0] == 200


def test_bad_session_id_on_history_and_delete(api):
    for method, path in [("GET", "/sessions/a.b/messages"), ("DELETE", "/sessions/a.b")]:
        status, _, body = api.request(method, path)
        assert_error(status, body, 400, "invalid_request")


def test_unknown_route_is_404_and_wrong_method_is_405(api, session_dir):
    status, _, body = api.request("GET", "/nope")
    assert_error(status, body, 404, "not_found")
    status, headers, body = api.request("PUT", f"/sessions/{SESSION}/messages", {"message": "hi"})
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "GET, POST"
    status, headers, body = api.request("POST", f"/sessions/{SESSION}", {"message": "hi"})
    assert_error(status, body, 405, "method_not_allowed")
    assert stored_files(session_dir) == []


def test_unknown_session_is_404(api):
    assert_error(*api.history("never_seen")[::2], 404, "session_not_found")
    assert_error(*api.delete("never_seen")[::2], 404, "session_not_found")


@pytest.mark.parametrize("store", ["files", "s3"])
def test_model_failure_is_502_and_the_next_turn_works(store, request, model_env):
    api = request.getfixturevalue("api" if store == "files" else "s3_api")
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    model_env.queue(Reply.error(500))
    status, _, body = api.post(SESSION, "This turn fails.")
    assert_error(status, body, 502, "model_error")
    assert "scripted failure" not in body["error"]["message"]  # the provider's text stays in the log

    status, _, reply = api.post(SESSION, "Do you remember my name?")
    assert status == 200 and "Arindam" in reply["reply"]
    assert model_env.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]
    assert [m["text"] for m in api.history(SESSION)[2]["messages"] if m["role"] == "user"] == [
        "Hey, my name is Arindam.", "Do you remember my name?"]


def test_model_failure_on_a_new_session_leaves_nothing(api, model_env, session_dir):
    model_env.queue(Reply.error(503))
    assert api.post("brand_new", "hello")[0] == 502
    assert api.history("brand_new")[0] == 404


def test_rate_limited_provider_is_429_with_retry_after(api, model_env):
    model_env.queue(Reply.error(429, {"Retry-After": "7"}))
    status, headers, body = api.post(SESSION, "hello")
    assert_error(status, body, 429, "model_throttled")
    assert headers["Retry-After"] == "7" and body["error"]["retry_after"] == 7
    assert api.history(SESSION)[0] == 404


def test_model_not_configured_is_503_naming_the_variables(session_dir):
    api = Api(load_handler())
    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    assert "MODEL_ID" in body["error"]["message"] and "MODEL_API_BASE" in body["error"]["message"]
    assert stored_files(session_dir) == []
    # Reading and deleting need no model.
    assert api.history(SESSION)[0] == 404


def test_unreachable_store_is_503_without_details(model_env, session_dir, moto_server, monkeypatch):
    monkeypatch.setenv("SESSION_BUCKET", "bucket-that-does-not-exist")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server.endpoint_url)
    api = Api(load_handler())
    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "store_unavailable")
    assert "bucket-that-does-not-exist" not in json.dumps(body) and "NoSuchBucket" not in json.dumps(body)


@pytest.fixture
def log_lines():
    """What the Powertools logger writes (JSON lines), whichever stream pytest gave it."""
    import importlib
    import io
    import logging

    importlib.import_module("handler.observability")  # the logger exists before the test loads the handler
    stream = io.StringIO()
    handlers = [h for h in logging.getLogger("stateful-agent").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = stream
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    for handler, old in zip(handlers, previous):
        handler.stream = old


@pytest.fixture
def model_key_secret(model_env, session_dir, moto_server, monkeypatch):
    """Makes the model's key a Secrets Manager secret: ``put(value)`` creates or rotates it."""
    client = boto3.client("secretsmanager", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    monkeypatch.delenv("MODEL_API_KEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server.endpoint_url)
    arns: list[str] = []

    def put(value: str) -> None:
        if arns:
            client.put_secret_value(SecretId=arns[0], SecretString=value)
        else:
            arns.append(client.create_secret(Name=f"model-key-{uuid.uuid4().hex}", SecretString=value)["ARN"])
            monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", arns[0])

    return put


def test_api_key_from_secrets_manager_reaches_the_model_and_never_the_log(
        model_env, model_key_secret, monkeypatch, log_lines):
    secret = "sk-from-secrets-manager-0123456789"
    model_key_secret(secret)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    api = Api(load_handler())
    model_env.queue(Reply.error(500))
    assert api.post(SESSION, "first fails")[0] == 502
    assert api.post(SESSION, "hello")[0] == 200
    assert model_env.request_headers[-1]["authorization"] == f"Bearer {secret}"
    lines = log_lines()
    assert any(line["level"] == "ERROR" for line in lines)  # the failure was logged...
    assert secret not in json.dumps(lines)  # ...without the key


def test_logs_are_json_with_session_and_request_id(api, log_lines):
    api.post(SESSION, "hello")
    turn = [line for line in log_lines() if line.get("message") == "turn stored"]
    assert turn and turn[0]["session_id"] == SESSION and turn[0]["correlation_id"]
    assert turn[0]["function_request_id"] and turn[0]["level"] == "INFO"


def test_a_reply_cut_at_max_tokens_is_a_reply_and_is_stored(api, model_env):
    model_env.queue(Reply.cut_at_max_tokens("The answer is long and was cut"))
    status, _, reply = api.post(SESSION, "Tell me everything.")
    assert status == 200 and reply["stop_reason"] == "max_tokens"
    assert reply["reply"] == "The answer is long and was cut"
    texts = [m["text"] for m in api.history(SESSION)[2]["messages"]]
    assert texts == ["Tell me everything.", "The answer is long and was cut"]
    assert api.post(SESSION, "Go on.")[0] == 200


def test_a_rotated_secret_is_read_again_after_a_snapstart_restore(model_env, model_key_secret):
    model_key_secret("sk-before")
    api = Api(load_handler())  # init reads the key: this is what the snapshot would hold
    model_key_secret("sk-after")

    from handler import snapstart

    snapstart.restore()  # what the runtime runs in each environment resumed from the snapshot
    assert api.post(SESSION, "hello")[0] == 200
    assert model_env.request_headers[-1]["authorization"] == "Bearer sk-after"


def test_a_key_the_provider_rejects_is_read_again_on_the_next_turn(model_env, model_key_secret):
    model_key_secret("sk-old")
    api = Api(load_handler())
    model_key_secret("sk-new")
    model_env.queue(Reply.error(401))
    assert api.post(SESSION, "hello")[0] == 502
    assert api.post(SESSION, "hello")[0] == 200
    assert model_env.request_headers[-1]["authorization"] == "Bearer sk-new"


def test_an_unreadable_secret_is_503_and_recovers(model_env, session_dir, moto_server, monkeypatch):
    monkeypatch.delenv("MODEL_API_KEY")
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN",
                       "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there-AbCdEf")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server.endpoint_url)
    api = Api(load_handler())
    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    assert "not-there" not in json.dumps(body)


def test_a_turn_that_would_outlive_the_function_timeout_is_cancelled_and_stores_nothing(api, model_env):
    from tests.conftest import LambdaContext, http_api_event

    model_env.queue(Reply.say("a slow answer", delay=2.0))
    event = http_api_event("POST", f"/sessions/{SESSION}/messages", {"content-type": "application/json"},
                           json.dumps({"message": "hello"}).encode(), "127.0.0.1")
    # 4 s left on the function's clock, less the 3 s margin: the turn may take 1 s.
    response = api.lambda_handler(event, LambdaContext(timeout_seconds=4.0))
    assert_error(response["statusCode"], json.loads(response["body"]), 504, "turn_timeout")
    assert api.history(SESSION)[0] == 404
    assert api.post(SESSION, "hello again")[0] == 200  # the session's lease was released
