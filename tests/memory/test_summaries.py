"""HISTORY_POLICY=summarize: messages that outgrow the window are folded into a summary, made
once per overflow, stored with the session and restored without another model call."""

import asyncio
import gc
import json

import pytest
from model_server import Reply

from tests.conftest import BUCKET, Api

SESSION = "long_chat"


def summary_requests(model_server) -> list[dict]:
    return [r for r in model_server.requests
            if "conversation summarizer" in str(r["messages"][0].get("content", "")).lower()]


def expected_summaries(turns: int, window: int) -> int:
    """How many times the history outgrows the window: each turn adds 2 messages; a summary keeps
    window//2|1 of them plus itself."""
    size, summaries = 0, 0
    keep = (window // 2) | 1
    for _ in range(turns):
        size += 2
        if size > window:
            summarized = min(int(size * 0.8), size - keep)
            size = size - summarized + 1
            summaries += 1
    return summaries


def pending_tasks() -> list[asyncio.Task]:
    return [t for t in gc.get_objects() if isinstance(t, asyncio.Task) and not t.done()]


def test_a_name_given_in_turn_1_is_recalled_at_turn_30_with_a_window_of_6(env, model_server):
    api = Api({**env, "HISTORY_WINDOW": "6"})
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    for n in range(2, 30):
        status, _, reply = api.post(SESSION, f"Here is filler message number {n}.")
        assert status == 200 and reply["message_count"] == 2 * n

    status, _, reply = api.post(SESSION, "Do you remember my name?")

    assert status == 200 and "Arindam" in reply["reply"]
    summaries = summary_requests(model_server)
    assert len(summaries) == expected_summaries(30, 6) == 14  # one model call per overflow, none again
    assert len(model_server.requests) == 30 + len(summaries)
    last = model_server.requests[-1]["messages"]
    assert len([m for m in last if m["role"] != "system"]) <= 6 + 1  # the window (with its summary)
    assert len(api.history(SESSION, "limit=1000")[2]["messages"]) == 60  # every message is still there


def test_the_summary_is_restored_by_a_new_container_without_a_model_call(env, model_server):
    settings = {**env, "HISTORY_WINDOW": "4"}
    api = Api(settings)
    for n in range(3):
        api.post(SESSION, f"Fact number {n}: my name is Arindam." if n == 0 else f"filler {n}")
    assert len(summary_requests(model_server)) == 1
    asked = len(model_server.requests)

    fresh = Api(settings)  # a new container: only the stored session links the turns
    assert "Arindam" in fresh.post(SESSION, "Do you remember my name?")[2]["reply"]

    # The turn's own model call came first and already had the summary: restored, not made again
    # (the summary after it is the next overflow's).
    turn_request = model_server.requests[asked]
    assert turn_request not in summary_requests(model_server)
    assert "## Conversation Summary" in json.dumps(turn_request["messages"][1])
    assert "Arindam" in json.dumps(turn_request)
    assert len(summary_requests(model_server)) == expected_summaries(4, 4) == 2


def test_a_failed_summary_falls_back_to_the_window_for_that_turn(env, model_server):
    api = Api({**env, "HISTORY_WINDOW": "4"})
    api.post(SESSION, "Hey, my name is Arindam.")
    api.post(SESSION, "filler one")
    model_server.queue(Reply.say("A fine reply."), Reply.error(500))  # the reply, then the failed summary
    status, _, reply = api.post(SESSION, "filler two")

    assert status == 200 and reply["reply"] == "A fine reply."
    assert api.texts(SESSION)[-1] == "A fine reply."  # the turn was stored
    api.post(SESSION, "What now?")
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] != "system"]
    assert len(sent) <= 4 + 1  # the window held the history while there was no summary
    assert len(api.history(SESSION)[2]["messages"]) == 8


@pytest.mark.parametrize("first, then", [("window", "summarize"), ("summarize", "window")])
def test_changing_the_policy_keeps_existing_sessions_working(env, model_server, first, then):
    for n, policy in enumerate([first, first, then, then]):
        status, _, reply = Api({**env, "HISTORY_POLICY": policy, "HISTORY_WINDOW": "4"}).post(SESSION, f"turn {n}")
        assert status == 200 and reply["message_count"] == 2 * (n + 1)


def test_a_warm_container_making_summaries_keeps_one_connection_and_leaves_nothing_running(env, model_server):
    """Strands makes each summary on an event loop of its own. LiteLLM would otherwise keep a client
    and an open connection to the provider per summary for an hour, and leave a background task
    waiting on the container's loop: a container serving for hours would pile them up."""
    gc.collect()
    before = {id(t) for t in pending_tasks()}  # other tests' leftovers are not this test's to count
    api = Api({**env, "HISTORY_WINDOW": "4"})
    for n in range(30):
        assert api.post(SESSION, f"turn {n}")[0] == 200
    assert len(summary_requests(model_server)) >= 10

    gc.collect()
    assert model_server.open_connections <= 1  # the turns' own, kept alive for the next turn
    # Only this container's tasks count (asyncio.all_tasks misses some that gc still finds alive).
    container_loop = api.services.conversations.event_loop  # the loop turns run on
    on_container_loop = [t for t in pending_tasks() if t.get_loop() is container_loop]
    assert len(on_container_loop) <= 1  # at most LiteLLM's one live worker, not one left per summary
    elsewhere = [t for t in pending_tasks() if id(t) not in before and t.get_loop() is not container_loop]
    assert elsewhere == []  # and nothing waits on the summaries' own loops, which are gone


def test_a_summarized_session_costs_the_same_reads_per_turn(env, s3, model_server):
    calls: list[str] = []
    api = Api({**env, "HISTORY_WINDOW": "4", "SESSION_BUCKET": BUCKET})
    for n in range(4):
        api.post(SESSION, f"turn {n}")
    client = api.services.clients.client("s3")
    client.meta.events.register("before-send.s3", lambda event_name, **_: calls.append(event_name.rsplit(".", 1)[-1]))
    api.post(SESSION, "one more")
    # agent.json alone (its snapshot holds the summary and the window; session.json is not read)
    assert calls.count("GetObject") == 1 and "ListObjectsV2" not in calls


def test_after_a_failed_summary_the_model_still_gets_a_well_formed_conversation(env, model_server):
    """Tool rounds and an odd window: what the window keeps must still open with the user's own
    message (never an assistant message or a tool's result), or every later turn would fail."""
    api = Api({**env, "HISTORY_WINDOW": "5"})
    model_server.queue(Reply.call_tool("current_time", {}))  # 4 messages: ask, tool call, result, answer
    assert api.post(SESSION, "What time is it?")[0] == 200
    model_server.queue(Reply.say("A fine reply."), Reply.error(500))  # 6 > 5: the summary fails
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200

    status, _, reply = api.post(SESSION, "Do you remember my name?")

    assert status == 200 and "Arindam" in reply["reply"]
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] != "system"]
    assert sent[0]["role"] == "user" and "tool_call_id" not in sent[0]
    assert len(api.history(SESSION)[2]["messages"]) == 8
