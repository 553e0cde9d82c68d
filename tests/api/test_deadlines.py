"""Every turn answers with its JSON before the function's timeout, whatever is slow, stores nothing
when it is cut short, and releases its session at once."""

import time

import pytest

from model_server import Reply
from tests.conftest import Api
from tests.api.test_bad_input import assert_error

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
    """No fixed per-call cap below the function's timeout: a 30 s answer completes in a 40 s function."""
    model_server.queue(Reply.stall_before_first_byte(30))
    (status, _, reply), elapsed = timed(api.post, SESSION, "Take your time.", timeout=40)
    assert status == 200 and elapsed > 30
    assert api.texts(SESSION)[0] == "Take your time."


def test_a_direct_invocation_with_no_time_left_is_answered_at_once(api, model_server):
    (result), elapsed = timed(api.invoke, {"session_id": SESSION, "message": "hello"}, timeout=1.0)
    assert result["error"]["code"] == "turn_timeout" and elapsed < 1.0
    assert model_server.requests == []
