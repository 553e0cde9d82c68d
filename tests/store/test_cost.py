"""Constant storage cost per turn on S3: the same requests whatever the length of the history."""

from typing import Any

import pytest
from model_server import ModelServer, Reply
from strands.session.s3_session_manager import S3SessionManager

from agent.store import SessionStore
from agent.store.keys import caller_segment

from .helpers import BUCKET, CALLER, NEVER, chat, history_texts, make_agent, seed

# lease PUT, GET session.json + agent.json, PUT 2 messages, PUT agent.json, lease DELETE
# The lease (put, delete), two messages, agent.json, the session's new list entry (a PUT) and
# the removal of its previous one (DeleteObjects), after the two reads.
# lease PUT + agent.json GET (one round trip); 2 message PUTs + agent.json PUT (one); entry PUT,
# old entry DELETE + lease DELETE (one): 8 requests in 3 round trips, session.json no longer read
PLAIN_TURN = {"PutObject": 5, "GetObject": 1, "DeleteObject": 1, "DeleteObjects": 1}


@pytest.mark.parametrize("history", [10, 100, 400])
def test_a_turn_costs_the_same_requests_at_any_history_length(
    s3_store: SessionStore, requests: Any, model_server: ModelServer, history: int
) -> None:
    seed(s3_store, "s1", history, model_server)
    requests.take()
    assert chat(s3_store, "s1", "one more", model_server) == "Noted: one more"
    assert requests.take() == PLAIN_TURN
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] != "system"]
    assert len(sent) == min(history, 40) + 1  # the window the conversation manager kept, plus the new message
    assert sent[0]["content"][0]["text"] == f"message {max(0, history - 40)}"


def test_a_turn_with_a_tool_call_writes_only_its_four_messages(
    s3_store: SessionStore, requests: Any, model_server: ModelServer
) -> None:
    seed(s3_store, "s1", 100, model_server)
    model_server.queue(Reply.call_tool("lookup_weather", {"city": "Paris"}))
    requests.take()
    assert chat(s3_store, "s1", "Weather in Paris?", model_server) == "The tool returned: It is sunny in Paris."
    assert requests.take() == {"PutObject": 7, "GetObject": 1, "DeleteObject": 1, "DeleteObjects": 1}
    assert len(history_texts(s3_store, "s1")) == 104


def test_a_new_session_costs_the_same_reads_and_one_more_write(
    s3_store: SessionStore, requests: Any, model_server: ModelServer
) -> None:
    chat(s3_store, "s1", "hello", model_server)
    # lease PUT + GET agent.json (missing); PUT session.json, 2 messages, agent.json; lease DELETE
    assert requests.take() == {"PutObject": 7, "GetObject": 1, "DeleteObject": 1}  # + its list entry and day marker


def test_a_turn_that_reads_the_caller_document_costs_one_more_get(
    s3_store: SessionStore, requests: Any, model_server: ModelServer
) -> None:
    seed(s3_store, "s1", 10, model_server)
    s3_store.change_caller_document(CALLER, "memory", lambda _: {"facts": ["likes tea"]}, NEVER)
    requests.take()
    with s3_store.turn(CALLER, "s1", NEVER, caller_document="memory") as turn:
        assert turn.caller_document is not None
        make_agent(turn.session_manager, model_server)(f"Remember: {turn.caller_document['facts'][0]}")
    assert requests.take() == {"PutObject": 5, "GetObject": 2, "DeleteObject": 1, "DeleteObjects": 1}
    assert model_server.user_texts()[-1] == "Remember: likes tea"


def test_a_session_written_by_the_stock_manager_is_read_the_stock_way_once(
    s3_store: SessionStore, requests: Any, model_server: ModelServer
) -> None:
    stock = S3SessionManager("s1", bucket=BUCKET, prefix=f"sessions/{caller_segment(CALLER)}")
    make_agent(stock, model_server)("Hey, my name is Arindam.")
    requests.take()
    assert chat(s3_store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert requests.take()["ListObjectsV2"] == 1  # no snapshot yet: listed, as Strands does
    chat(s3_store, "s1", "and now?", model_server)
    assert requests.take() == PLAIN_TURN


def test_history_reads_the_snapshot_for_free_and_fetches_the_rest_at_once(
    s3_store: SessionStore, requests: Any, model_server: ModelServer
) -> None:
    seed(s3_store, "s1", 100, model_server, window=10)  # the snapshot holds messages 90..99
    requests.take()
    recent = s3_store.history(CALLER, "s1", 90, 10, NEVER)
    assert requests.take() == {"GetObject": 2}  # session.json + agent.json only
    older = s3_store.history(CALLER, "s1", 80, 15, NEVER)
    assert requests.take() == {"GetObject": 2 + 10}  # 80..89 fetched; 90..94 from the snapshot
    assert [m.message_id for m in recent.messages] == list(range(90, 100))
    assert [m.message_id for m in older.messages] == list(range(80, 95))
    assert older.messages[0].to_message()["content"][0]["text"] == "message 80"
