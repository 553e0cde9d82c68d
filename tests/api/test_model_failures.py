"""Failures of the model never corrupt a session, never store a bad reply, never leak the
provider's words or a secret; the next turn works."""

import json
import socket
from urllib.parse import urlsplit

import pytest
from model_server import Reply

from tests.api.test_bad_input import assert_error
from tests.conftest import Api, stored_files

SESSION = "user_arindam_convo_123"
NOT_A_REPLY = {
    "empty body": Reply.empty_body,
    "not JSON": Reply.not_json,
    "stream cut before its end": lambda: Reply.half_stream("The answer is forty", words=3),
    "no content and no tool call": Reply.no_content,
}


def test_a_provider_error_is_502_and_the_next_turn_works(any_api, model_server):
    assert any_api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    model_server.queue(Reply.error(500))
    status, _, body = any_api.post(SESSION, "This turn fails.")
    assert_error(status, body, 502, "model_error")
    assert "scripted failure" not in body["error"]["message"]  # the provider's text stays in the log

    status, _, reply = any_api.post(SESSION, "Do you remember my name?")
    assert status == 200 and "Arindam" in reply["reply"]
    assert model_server.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]
    assert [t for t in any_api.texts(SESSION)][::2] == ["Hey, my name is Arindam.", "Do you remember my name?"]


@pytest.mark.parametrize("answer", NOT_A_REPLY, ids=list(NOT_A_REPLY))
def test_an_answer_that_is_not_a_complete_reply_is_502_and_stores_nothing(any_api, model_server, answer):
    assert any_api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    before = any_api.history(SESSION)[2]

    model_server.queue(NOT_A_REPLY[answer]())
    status, _, body = any_api.post(SESSION, "What is the answer?")

    assert_error(status, body, 502, "model_error")
    assert any_api.history(SESSION)[2] == before
    status, _, reply = any_api.post(SESSION, "Do you remember my name?")
    assert status == 200 and "Arindam" in reply["reply"]
    assert model_server.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]


def test_a_bad_answer_on_a_new_session_leaves_nothing(api, model_server, session_dir):
    model_server.queue(Reply.half_stream("Half", words=1))
    assert api.post("brand_new", "hello")[0] == 502
    assert api.history("brand_new")[0] == 404
    assert stored_files(session_dir) == []


def test_a_rate_limited_provider_is_429_with_retry_after(api, model_server):
    model_server.queue(Reply.error(429, {"Retry-After": "7"}))
    status, headers, body = api.post(SESSION, "hello")
    assert_error(status, body, 429, "model_throttled")
    assert headers["Retry-After"] == "7" and body["error"]["retry_after"] == 7
    assert api.history(SESSION)[0] == 404


def test_a_reply_cut_at_max_tokens_is_a_reply_and_is_stored(api, model_server):
    model_server.queue(Reply.cut_at_max_tokens("The answer is long and was cut"))
    status, _, reply = api.post(SESSION, "Tell me everything.")
    assert status == 200 and reply["stop_reason"] == "max_tokens"
    assert reply["reply"] == "The answer is long and was cut"
    assert api.texts(SESSION) == ["Tell me everything.", "The answer is long and was cut"]
    assert api.post(SESSION, "Go on.")[0] == 200


def test_a_tool_round_streams_and_replies_both_texts(api, model_server):
    model_server.queue(Reply.call_tool("current_time", {}))
    status, _, reply = api.post(SESSION, "What time is it?")
    assert status == 200 and reply["reply"].startswith("The tool returned: ")
    assert [m["role"] for m in api.history(SESSION)[2]["messages"]] == ["user", "assistant", "tool", "assistant"]


def test_no_model_configured_is_503_naming_the_variables(session_dir):
    api = Api({"SESSION_DIR": str(session_dir)})
    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    assert "MODEL_ID" in body["error"]["message"] and "MODEL_API_BASE" in body["error"]["message"]
    assert stored_files(session_dir) == []
    assert api.history(SESSION)[0] == 404  # reading and deleting need no model


@pytest.mark.parametrize("model_id", ["opneai/gpt-4o-mini", "notaprovider"])
def test_a_model_id_no_provider_routes_is_503_naming_the_value(env, model_id, session_dir, model_server):
    api = Api({**env, "MODEL_ID": model_id})
    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    assert repr(model_id) in body["error"]["message"]
    assert model_server.requests == [] and stored_files(session_dir) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_model_endpoint_that_refuses_connections_is_502_model_unreachable_naming_it_locally(env, session_dir):
    base = f"http://127.0.0.1:{free_port()}/v1"
    status, _, body = Api({**env, "MODEL_API_BASE": base}).post(SESSION, "hello")
    assert_error(status, body, 502, "model_unreachable")
    assert body["error"]["message"].startswith(f"Nothing listens at 127.0.0.1:{urlsplit(base).port} — ")
    assert stored_files(session_dir) == []


def test_a_host_that_does_not_resolve_is_named_locally(env, session_dir):
    api = Api({**env, "MODEL_API_BASE": "http://model-server.invalid:8000/v1"})  # .invalid never resolves
    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 502, "model_unreachable")
    assert body["error"]["message"].startswith("The model's host 'model-server.invalid' does not resolve")
    assert stored_files(session_dir) == []


def test_a_base_url_without_a_scheme_says_add_http(env, session_dir, model_server):
    base = model_server.base_url.removeprefix("http://")
    status, _, body = Api({**env, "MODEL_API_BASE": base}).post(SESSION, "hello")
    assert_error(status, body, 502, "model_unreachable")
    assert body["error"]["message"].startswith(f"MODEL_API_BASE {base!r} has no scheme — add http:// (http://{base})")
    assert model_server.requests == [] and stored_files(session_dir) == []


@pytest.mark.parametrize("base, said", [
    ("127.0.0.1:9/v1", "MODEL_API_BASE is not a usable URL — it must start with http:// or https://"),
    ("http://model-server.invalid:8000/v1", "The model's host does not resolve"),
])
def test_the_deployed_api_says_why_without_naming_the_endpoint(env, base, said):
    api = Api({**env, "MODEL_API_BASE": base, "AWS_LAMBDA_FUNCTION_NAME": "AgentFunction"})
    status, _, body = api.post(SESSION, "hello", caller="arn:aws:iam::123456789012:user/alice")
    assert_error(status, body, 502, "model_unreachable")
    assert body["error"]["message"].startswith(said)
    assert "127.0.0.1" not in json.dumps(body) and "model-server" not in json.dumps(body)


def test_the_deployed_api_does_not_name_the_unreachable_endpoint(env):
    base = f"http://127.0.0.1:{free_port()}/v1"
    api = Api({**env, "MODEL_API_BASE": base, "AWS_LAMBDA_FUNCTION_NAME": "AgentFunction"})
    status, _, body = api.post(SESSION, "hello", caller="arn:aws:iam::123456789012:user/alice")
    assert_error(status, body, 502, "model_unreachable")
    assert "127.0.0.1" not in json.dumps(body)
