"""Every turn answers with its JSON before the function's timeout, whatever is slow, stores nothing
when it is cut short, and releases its session at once."""

import json
import time
from pathlib import Path

import pytest
from model_server import Reply

from tests.api.test_bad_input import assert_error
from tests.conftest import Api
from twin.events import http_api_event

SESSION = "user_arindam_convo_123"


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


@pytest.mark.slow  # waits on real time
@pytest.mark.parametrize("stall", [
    pytest.param(lambda: Reply.stall_before_first_byte(20), id="before-the-first-byte"),
    pytest.param(lambda: Reply.stall_mid_stream("one two three four five", after_words=2, seconds=20), id="mid-stream"),
])
def test_a_stalled_model_is_cut_off_before_the_function_times_out(api, model_server, stall):
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    before = api.history(SESSION)[2]
    model_server.queue(stall())

    (status, _, body), elapsed = timed(api.post, SESSION, "Tell me a story.", timeout=6)

    assert_error(status, body, 504, "turn_timeout")
    assert 3 < elapsed < 6, elapsed  # cut at the deadline (timeout less margins), answered before 6 s
    assert api.history(SESSION)[2] == before  # nothing of the cancelled turn was stored
    (status, _, _), again = timed(api.post, SESSION, "Do you remember my name?")
    assert status == 200 and again < 3  # the session was released at once, not after its lease


@pytest.mark.slow  # waits on real time
def test_the_configured_model_timeout_applies_when_it_is_shorter_than_the_time_left(env, model_server):
    api = Api({**env, "MODEL_TIMEOUT": "2"})
    model_server.queue(Reply.stall_before_first_byte(8))
    (status, _, body), elapsed = timed(api.post, SESSION, "hello", timeout=20)
    assert status == 502 and body["error"]["code"] == "model_error"
    assert elapsed < 5, elapsed
    assert api.history(SESSION)[0] == 404


@pytest.mark.slow
def test_a_long_function_timeout_really_allows_a_slow_model(api, model_server):
    """No fixed per-call cap below the function's timeout: a 30 s answer completes in a 40 s function
    (invoked directly: behind the HTTP API, API Gateway's 30 s would come first)."""
    model_server.queue(Reply.stall_before_first_byte(30))
    reply, elapsed = timed(api.invoke, {"session_id": SESSION, "message": "Take your time."}, timeout=40)
    assert "error" not in reply and reply["message_count"] == 2 and elapsed > 30
    history = api.invoke({"action": "get_history", "session_id": SESSION})
    assert history["messages"][0]["text"] == "Take your time."


def test_a_direct_invocation_with_no_time_left_is_answered_at_once(api, model_server):
    (result), elapsed = timed(api.invoke, {"session_id": SESSION, "message": "hello"}, timeout=1.0)
    assert result["error"]["code"] == "turn_timeout" and elapsed < 1.0
    assert model_server.requests == []


@pytest.mark.slow  # waits on real time
def test_an_http_turn_is_answered_before_api_gateway_gives_up_even_after_a_slow_start(api, model_server):
    """API Gateway's 30 s start when it receives the request, Lambda's 29 s later (after a cold
    start): a request received 27 s ago has 3 s left, whatever the function's timeout says."""
    model_server.queue(Reply.stall_before_first_byte(20))
    event = http_api_event("POST", f"/sessions/{SESSION}/messages", {"content-type": "application/json"},
                           json.dumps({"message": "hello"}).encode(), "127.0.0.1")
    event["requestContext"]["timeEpoch"] = int((time.time() - 27) * 1000)

    response, elapsed = timed(api.invoke, event, timeout=29)

    assert response["statusCode"] == 504 and json.loads(response["body"])["error"]["code"] == "turn_timeout"
    assert elapsed < 3, elapsed  # before API Gateway's 30 s, not at the function's 29
    assert api.history(SESSION)[0] == 404


def test_a_sample_events_time_of_receipt_does_not_cut_the_turn(api, model_server):
    """`sam local invoke` sends the sample events, received long ago: Lambda's clock alone applies."""
    event = json.loads((Path(__file__).parents[2] / "events" / "post_message.json").read_text())
    response = api.invoke(event, timeout=29)
    assert response["statusCode"] == 200 and json.loads(response["body"])["message_count"] == 2
