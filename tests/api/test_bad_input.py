"""Bad input gets a clear 4xx JSON error and changes nothing: nothing stored, no model call."""

import json
from typing import Any

import pytest

from tests.conftest import LambdaContext, bucket_keys, http_api_event, stored_files

SESSION = "user_arindam_convo_123"

BAD_POSTS = [
    # (description, session id, raw body, status, code)
    ("body not JSON", SESSION, "this is not json", 400, "invalid_json"),
    ("empty body", SESSION, "", 400, "invalid_json"),
    ("body nested too deeply", SESSION, "[" * 100_000 + "]" * 100_000, 400, "invalid_json"),
    ("message nested too deeply", SESSION, '{"message": ' + "[" * 50_000 + "]" * 50_000 + "}", 400, "invalid_json"),
    ("body a list", SESSION, '["hello"]', 400, "invalid_request"),
    ("body a string", SESSION, '"hello"', 400, "invalid_request"),
    ("message missing", SESSION, '{"text": "hello"}', 400, "invalid_request"),
    ("message empty", SESSION, '{"message": ""}', 400, "invalid_request"),
    ("message blank", SESSION, '{"message": "   \\n "}', 400, "invalid_request"),
    ("message a number", SESSION, '{"message": 42}', 400, "invalid_request"),
    ("message null", SESSION, '{"message": null}', 400, "invalid_request"),
    ("message an object", SESSION, '{"message": {"text": "hi"}}', 400, "invalid_request"),
    ("message too long", SESSION, json.dumps({"message": "x" * 16001}), 400, "invalid_request"),
    ("message not valid Unicode", SESSION, '{"message": "hi \\ud800"}', 400, "invalid_request"),
    ("session id with a dot", "a.b", '{"message": "hi"}', 400, "invalid_request"),
    ("session id dot-dot", "..", '{"message": "hi"}', 400, "invalid_request"),
    ("session id encoded slash", "a%2Fb", '{"message": "hi"}', 400, "invalid_request"),
    ("session id with a space", "a%20b", '{"message": "hi"}', 400, "invalid_request"),
    ("session id with a control character", "a%0Ab", '{"message": "hi"}', 400, "invalid_request"),
    ("session id not ASCII", "caf%C3%A9", '{"message": "hi"}', 400, "invalid_request"),
    ("session id starting with -", "-abc", '{"message": "hi"}', 400, "invalid_request"),
    ("session id too long", "a" * 129, '{"message": "hi"}', 400, "invalid_request"),
]


def answer_of(answer: tuple[int, Any, dict]) -> tuple[int, dict]:
    """(status, body) of an Api call's (status, headers, body)."""
    return answer[0], answer[2]


def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("case", BAD_POSTS, ids=[c[0] for c in BAD_POSTS])
def test_bad_input_is_refused_and_writes_nothing_on_files(case, api, model_server, session_dir):
    _, session_id, raw, expected_status, code = case
    status, headers, body = api.request("POST", f"/sessions/{session_id}/messages", raw_body=raw)
    assert_error(status, body, expected_status, code)
    assert headers["Content-Type"] == "application/json"
    assert stored_files(session_dir) == []
    assert model_server.requests == []


@pytest.mark.parametrize("case", BAD_POSTS[::3], ids=[c[0] for c in BAD_POSTS[::3]])
def test_bad_input_is_refused_and_writes_nothing_on_s3(case, s3_api, model_server, s3):
    _, session_id, raw, expected_status, code = case
    status, _, body = s3_api.request("POST", f"/sessions/{session_id}/messages", raw_body=raw)
    assert_error(status, body, expected_status, code)
    assert bucket_keys(s3) == []


def test_the_message_of_an_invalid_field_names_the_rule(api):
    status, _, body = api.request("POST", "/sessions/a.b/messages", {"message": "hi"})
    assert status == 400 and "session_id must be 1-128 characters" in body["error"]["message"]
    status, _, body = api.post(SESSION, "x" * 16001)
    assert status == 400 and "16001" in body["error"]["message"] and "16000" in body["error"]["message"]


def test_message_at_the_limit_is_accepted(api):
    assert api.post(SESSION, "x" * 16000)[0] == 200


@pytest.mark.parametrize("header", ["", "has space", "x" * 129, "ünïcode"])
def test_a_malformed_idempotency_key_is_refused(api, header, session_dir):
    status, _, body = api.post(SESSION, "hello", headers={"Idempotency-Key": header or " "})
    assert_error(status, body, 400, "invalid_request")
    assert stored_files(session_dir) == []


def test_bad_session_id_on_history_and_delete(api):
    for method, path in [("GET", "/sessions/a.b/messages"), ("DELETE", "/sessions/a.b"),
                         ("GET", "/sessions/a.b/turns/t_" + "0" * 32)]:
        status, _, body = api.request(method, path)
        assert_error(status, body, 400, "invalid_request")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=many", "cursor=" + "x" * 1025])
def test_bad_history_query_is_refused(api, query):
    api.post(SESSION, "hello")
    status, _, body = api.history(SESSION, query)
    assert_error(status, body, 400, "invalid_request")


def test_unknown_route_is_404_and_wrong_method_is_405_with_the_routes_allow_list(api, session_dir):
    status, _, body = api.request("GET", "/nope")
    assert_error(status, body, 404, "not_found")
    status, headers, body = api.request("PUT", f"/sessions/{SESSION}/messages", {"message": "hi"})
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "GET, POST"
    status, headers, body = api.request("POST", f"/sessions/{SESSION}", {"message": "hi"})
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "DELETE, GET, PATCH"
    status, headers, _ = api.request("PUT", "/memory")
    assert status == 405 and headers["Allow"] == "DELETE, GET"
    assert stored_files(session_dir) == []


def test_unknown_session_is_404(api):
    for status, _, body in (api.history("never_seen"), api.delete("never_seen")):
        assert_error(status, body, 404, "session_not_found")


@pytest.mark.parametrize("authorizer", [
    {"iam": {"userArn": 42}},
    {"iam": {"userArn": ["arn:aws:iam::123456789012:user/a"]}},
    {"iam": {"userArn": "arn:aws:iam::123456789012:user/\ud800"}},
    {"iam": {"cognitoIdentity": {"identityId": {"id": "x"}}}},
    {"jwt": {"claims": {"sub": 7}}},
    {"jwt": {"claims": {"sub": "x" * 600}}},
], ids=["arn-number", "arn-list", "arn-lone-surrogate", "cognito-object", "sub-number", "sub-too-long"])
def test_identity_fields_of_the_wrong_type_or_invalid_text_are_400(api, authorizer, session_dir):
    event = http_api_event("POST", f"/sessions/{SESSION}/messages", {"content-type": "application/json"},
                           b'{"message": "hi"}', "127.0.0.1")
    event["requestContext"]["authorizer"] = authorizer
    response = api.lambda_handler(event, LambdaContext())
    assert_error(response["statusCode"], json.loads(response["body"]), 400, "invalid_request")
    assert stored_files(session_dir) == []


def test_a_deployed_function_refuses_a_request_without_identity(env, session_dir):
    from tests.conftest import Api

    api = Api({**env, "AWS_LAMBDA_FUNCTION_NAME": "AgentFunction"})
    assert_error(*api.post(SESSION, "hello")[::2], 401, "unauthenticated")
    assert stored_files(session_dir) == []
