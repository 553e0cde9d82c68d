"""What a client sees under concurrency and retries, through the local API server backed by S3."""

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest

from tests.conftest import load_handler
from dev_server import build_server

SESSION = "busy_session"


@pytest.fixture
def local_api(model_env, session_dir, s3_bucket):
    server = build_server(0, load_handler, workers=4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    server.pool.shutdown()


def post(base: str, message: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
    request = urllib.request.Request(
        f"{base}/sessions/{SESSION}/messages", data=json.dumps({"message": message}).encode(), method="POST",
        headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def get_history(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/sessions/{SESSION}/messages", timeout=30) as response:
        return json.loads(response.read())["messages"]


def test_parallel_turns_on_one_session_store_exactly_the_accepted_ones(local_api, model_env):
    model_env.delay = 0.6  # every turn overlaps the others
    start = threading.Barrier(8)
    results: dict[int, tuple[int, dict[str, str], dict]] = {}

    def one(n: int) -> None:
        start.wait()
        results[n] = post(local_api, f"message {n}")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = Counter(status for status, _, _ in results.values())
    assert set(statuses) == {200, 409}, statuses  # some turns won the session, the others were told so
    for status, headers, body in results.values():
        if status == 409:
            assert body["error"]["code"] == "session_busy" and int(headers["Retry-After"]) >= 1
    accepted = sorted(f"message {n}" for n, (status, _, _) in results.items() if status == 200)

    history = get_history(local_api)
    assert [m["role"] for m in history] == ["user", "assistant"] * len(accepted)
    assert [m["index"] for m in history] == list(range(len(history)))
    assert sorted(m["text"] for m in history if m["role"] == "user") == accepted
    for question, answer in zip(history[::2], history[1::2]):
        assert answer["text"] == f"Noted: {question['text']}"


def test_retry_with_the_same_idempotency_key_replays_the_first_reply(local_api, model_env):
    key = {"Idempotency-Key": "turn-0001"}
    status, _, first = post(local_api, "Hey, my name is Arindam.", key)
    assert status == 200
    calls = len(model_env.requests)

    status, _, again = post(local_api, "Hey, my name is Arindam.", key)
    assert status == 200 and again == first
    assert len(model_env.requests) == calls  # the model was not asked again
    assert len(get_history(local_api)) == 2  # and nothing was appended

    status, _, other = post(local_api, "Hey, my name is Arindam.", {"Idempotency-Key": "turn-0002"})
    assert status == 200 and other["message_count"] == 4
    assert len(model_env.requests) == calls + 1


def test_an_idempotency_key_reused_for_another_message_is_refused(local_api, model_env):
    key = {"Idempotency-Key": "turn-0003"}
    assert post(local_api, "first message", key)[0] == 200
    status, _, body = post(local_api, "a different message", key)
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert len(get_history(local_api)) == 2


def test_a_failed_turn_is_not_replayed_by_its_key(local_api, model_env):
    from model_server import Reply

    model_env.queue(Reply.error(500))
    key = {"Idempotency-Key": "turn-0004"}
    assert post(local_api, "hello", key)[0] == 502
    status, _, body = post(local_api, "hello", key)
    assert status == 200 and body["message_count"] == 2
