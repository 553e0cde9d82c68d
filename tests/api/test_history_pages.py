"""GET /sessions/{id}/messages in pages: bounded by count and by bytes (Lambda answers 6 MB at
most), oldest first, with a cursor that works only for the session and caller it came from."""

import json

import pytest

from tests.api.test_bad_input import answer_of, assert_error
from tests.conftest import Api, LambdaContext, http_api_event

SESSION = "long_session"
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def all_pages(api: Api, session_id: str, limit: int, **kwargs) -> list[dict]:
    pages, cursor = [], None
    while True:
        status, _, page = api.history(session_id, f"limit={limit}" + (f"&cursor={cursor}" if cursor else ""), **kwargs)
        assert status == 200, page
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_pages_by_count_cover_the_history_once_oldest_first(any_api):
    for n in range(10):
        assert any_api.post(SESSION, f"message {n}")[0] == 200

    pages = all_pages(any_api, SESSION, limit=6)

    assert [len(p["messages"]) for p in pages] == [6, 6, 6, 2]
    indexes = [m["index"] for p in pages for m in p["messages"]]
    assert indexes == list(range(20))
    assert [m["text"] for p in pages for m in p["messages"]][::2] == [f"message {n}" for n in range(10)]
    assert all(p["session_id"] == SESSION for p in pages)


def test_a_page_of_huge_messages_stays_under_lambdas_response_limit(env):
    """The issue's case: 17 turns of 16,000-emoji messages made a 6.5 MB response."""
    api = Api({**env, "HISTORY_POLICY": "window", "HISTORY_WINDOW": "2"})
    for _ in range(17):
        assert api.post(SESSION, "🚀" * 16000)[0] == 200

    event = http_api_event("GET", f"/sessions/{SESSION}/messages?limit=1000", {}, b"", "127.0.0.1")
    response = api.lambda_handler(event, LambdaContext())
    first = json.loads(response["body"])

    assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT
    assert first["next_cursor"] is not None and 0 < len(first["messages"]) < 34
    pages = all_pages(api, SESSION, limit=1000)
    assert sum(len(p["messages"]) for p in pages) == 34
    assert all(m["text"].count("🚀") == 16000 for p in pages for m in p["messages"][::2])


def test_a_page_of_quotes_stays_under_the_limit_once_lambda_encodes_it_again(env):
    """The page is JSON inside Lambda's JSON response: each '"' of a message becomes 4 bytes."""
    api = Api({**env, "HISTORY_POLICY": "window", "HISTORY_WINDOW": "2", "MAX_MESSAGE_CHARS": "100000"})
    for _ in range(16):
        assert api.post(SESSION, '"' * 100_000)[0] == 200

    event = http_api_event("GET", f"/sessions/{SESSION}/messages?limit=1000", {}, b"", "127.0.0.1")
    response = api.lambda_handler(event, LambdaContext())

    assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT
    assert json.loads(response["body"])["next_cursor"] is not None
    assert sum(len(p["messages"]) for p in all_pages(api, SESSION, limit=1000)) == 32


def test_a_cursor_from_another_session_or_caller_or_a_forged_one_is_400(api):
    for n in range(3):
        api.post(SESSION, f"message {n}")
        api.post("other", f"message {n}")
    cursor = api.history(SESSION, "limit=2")[2]["next_cursor"]

    assert_error(*answer_of(api.history("other", f"cursor={cursor}")), 400, "invalid_request")
    bob = "arn:aws:iam::123456789012:user/bob"
    api.post(SESSION, "bob's own", caller=bob)
    assert_error(*answer_of(api.history(SESSION, f"cursor={cursor}", caller=bob)), 400, "invalid_request")
    for forged in ["not-a-cursor", "eyJpIjogLTF9", "e30"]:
        assert_error(*answer_of(api.history(SESSION, f"cursor={forged}")), 400, "invalid_request")
    assert api.history(SESSION, f"cursor={cursor}")[0] == 200


def test_direct_invocations_page_the_history_the_same_way(api):
    for n in range(3):
        api.invoke({"session_id": SESSION, "message": f"message {n}"})
    first = api.invoke({"action": "get_history", "session_id": SESSION, "limit": 4})
    rest = api.invoke({"action": "get_history", "session_id": SESSION, "limit": 4, "cursor": first["next_cursor"]})
    assert [m["index"] for m in first["messages"] + rest["messages"]] == list(range(6))
    assert rest["next_cursor"] is None
    bad = api.invoke({"action": "get_history", "session_id": "x", "cursor": first["next_cursor"]})
    assert bad["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("limit", [1, 5, 100])
def test_the_last_page_has_no_cursor(api, limit):
    api.post(SESSION, "hello")
    pages = all_pages(api, SESSION, limit=limit)
    assert pages[-1]["next_cursor"] is None and sum(len(p["messages"]) for p in pages) == 2
