"""CALLER_DAILY_TOKENS: a caller whose tokens today (UTC) reached the budget is refused with 429
budget_exceeded and Retry-After (seconds to the next UTC midnight) before the model is called, on
every path, while other callers go on; GET /usage and get_usage say what was counted."""

import json
import threading

import pytest

from agent import Deadline
from tests.budget.conftest import FakeClock
from tests.conftest import Api
from tests.websocket.conftest import ALICE, BOB, WebSocketClient

ASYNC = {"Prefer": "respond-async"}
BUDGET = 100  # a few turns of the test model (10 input tokens per message sent, a word per output token)


def container(env: dict[str, str], clock: FakeClock, **settings: str) -> Api:
    api = Api({**env, "CALLER_DAILY_TOKENS": str(BUDGET), **settings})
    api.services.worker.turns.usage.clock = clock
    return api


def spend_budget(api: Api, caller: str = ALICE) -> int:
    """Turns until the budget is reached; the tokens the replies reported."""
    spent = 0
    for number in range(20):
        status, _, body = api.post("budget", f"message {number}", caller=caller)
        if status == 429:
            break
        assert status == 200, body
        spent += body["usage"]["input_tokens"] + body["usage"]["output_tokens"]
    assert spent >= BUDGET
    return spent


def test_http_turns_stop_at_the_budget_and_another_caller_goes_on(ws_env, clock, model_server):
    api = container(ws_env, clock)
    spent = spend_budget(api)
    calls = len(model_server.requests)

    status, headers, body = api.post("budget", "one more", caller=ALICE)
    queued = api.post("other", "one more, later", headers=ASYNC, caller=ALICE)

    assert status == 429 and body["error"]["code"] == "budget_exceeded"
    assert headers["Retry-After"] == "3600" and body["error"]["retry_after"] == 3600
    assert queued[0] == 429 and queued[2]["error"]["code"] == "budget_exceeded"
    assert len(model_server.requests) == calls  # refused before the model was called
    assert api.history("other", caller=ALICE)[0] == 404  # nothing queued, nothing written
    assert api.post("budget", "hello", caller=BOB)[0] == 200
    usage = api.request("GET", "/usage", caller=ALICE)
    assert usage[0] == 200
    assert usage[2]["input_tokens"] + usage[2]["output_tokens"] == spent


def test_a_retry_of_a_stored_turn_replays_it_once_the_budget_is_spent(ws_env, clock, model_server):
    """The budget refuses new turns; a retry of one that was stored costs nothing and is answered."""
    api = container(ws_env, clock)
    spend_budget(api)
    key = {"Idempotency-Key": "last-one"}
    api.services.worker.turns.usage.daily_tokens = 10**9  # one more turn allowed, keyed
    first = api.post("budget", "the last one", caller=ALICE, headers=key)
    api.services.worker.turns.usage.daily_tokens = BUDGET  # and the budget spent again
    calls = len(model_server.requests)

    again = api.post("budget", "the last one", caller=ALICE, headers=key)

    assert first[0] == 200 and again[0] == 200 and again[2] == first[2]
    assert len(model_server.requests) == calls


def test_the_budget_starts_again_at_midnight_utc(ws_env, clock, model_server):
    api = container(ws_env, clock)
    spend_budget(api)
    assert api.post("budget", "still today", caller=ALICE)[0] == 429

    clock.now += 3600  # 00:00 UTC

    assert api.post("budget", "a new day", caller=ALICE)[0] == 200
    usage = api.request("GET", "/usage", caller=ALICE)[2]
    assert usage["day"] == "2026-03-02" and usage["turns"] == 1


def test_a_websocket_message_over_budget_gets_an_error_frame(ws_env, clock, aws, model_server):
    ws = WebSocketClient(container(ws_env, clock), aws)
    spend_budget(ws.api)
    calls = len(model_server.requests)
    ws.connect("c1")

    ws.message("c1", "budget", "one more")

    assert ws.aws.take_turns() == []  # refused before queueing
    [frame] = aws.frames("c1")
    assert frame["type"] == "error" and frame["error"]["code"] == "budget_exceeded"
    assert frame["error"]["retry_after"] == 3600 and "turn_id" not in frame
    assert len(model_server.requests) == calls


def test_a_direct_invocation_over_budget_is_refused_and_get_usage_says_why(ws_env, clock, model_server):
    api = container(ws_env, clock)
    spent = spend_budget(api, caller="batch-job")

    refused = api.invoke({"session_id": "budget", "message": "one more", "caller": "batch-job"})
    usage = api.invoke({"action": "get_usage", "caller": "batch-job"})
    other = api.invoke({"action": "get_usage", "caller": "someone-else"})

    assert refused["error"]["code"] == "budget_exceeded" and refused["error"]["retry_after"] == 3600
    assert usage["input_tokens"] + usage["output_tokens"] == spent and usage["daily_token_budget"] == BUDGET
    assert other == {"day": "2026-03-01", "input_tokens": 0, "output_tokens": 0, "turns": 0,
                     "daily_token_budget": BUDGET}


def test_a_queued_turn_over_budget_when_its_worker_takes_it_never_calls_the_model(ws_env, clock, aws, model_server):
    """Turns queued while under budget are checked again when they run: a caller cannot queue
    past the budget."""
    ws = WebSocketClient(container(ws_env, clock), aws)
    ws.connect("c1")
    for number in range(12):
        ws.message("c1", f"s{number}", f"queued {number}")
    ws.run_worker()

    ended = [f for f in aws.frames("c1") if f["type"] in ("reply", "error")]
    refused = [f for f in ended if f["type"] == "error"]
    assert refused and all(f["error"]["code"] == "budget_exceeded" for f in refused)
    usage = ws.api.request("GET", "/usage", caller=ALICE)[2]
    assert usage["turns"] == len(ended) - len(refused) == len(model_server.requests)
    assert usage["input_tokens"] + usage["output_tokens"] - BUDGET < 40  # over by the last turn at most


def test_get_usage_counts_the_turns_made_and_unlimited_is_null(ws_env, clock, model_server):
    api = Api(ws_env)
    api.services.worker.turns.usage.clock = clock
    replies = [api.post("usage", f"message {n}", caller=ALICE)[2] for n in range(3)]

    status, _, usage = api.request("GET", "/usage", caller=ALICE)

    assert status == 200
    assert usage == {"day": "2026-03-01", "turns": 3, "daily_token_budget": None,
                     "input_tokens": sum(r["usage"]["input_tokens"] for r in replies),
                     "output_tokens": sum(r["usage"]["output_tokens"] for r in replies)}
    assert api.request("GET", "/usage", caller=BOB)[2]["turns"] == 0


@pytest.mark.parametrize("store", ["files", "s3"])
def test_concurrent_turns_of_one_caller_count_every_token(store, ws_env, clock, model_server):
    """Forty turns of one caller stored at once (each as its worker or container would count it,
    with the store's own objects: local files, or S3 in moto): none of their tokens is lost."""
    env = dict(ws_env)
    if store == "s3":
        from tests.conftest import BOTO3_SESSION, BUCKET

        BOTO3_SESSION.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        env["SESSION_BUCKET"] = BUCKET
    api = Api(env)
    usage = api.services.worker.turns.usage
    usage.clock = clock
    start = threading.Barrier(8)

    def turns(number: int) -> None:
        start.wait()
        for turn in range(5):
            usage.count(ALICE, f"parallel-{number}", 100 + number, turn + 1, Deadline.after(10))

    threads = [threading.Thread(target=turns, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    counted = api.request("GET", "/usage", caller=ALICE)[2]
    assert counted["turns"] == 40
    assert counted["input_tokens"] == sum(5 * (100 + n) for n in range(8))
    assert counted["output_tokens"] == 8 * (1 + 2 + 3 + 4 + 5)


def test_max_output_tokens_reaches_the_model(ws_env, model_server):
    api = Api({**ws_env, "MAX_OUTPUT_TOKENS": "64", "MODEL_PARAMS": json.dumps({"max_tokens": 4096})})

    assert api.post("limits", "hello", caller=ALICE)[0] == 200

    assert model_server.requests[-1]["max_tokens"] == 64
