"""Constant storage cost per turn on S3: the same requests whatever the length of the history."""

import pytest

from agent.store import SessionStore
from model_server import ModelServer

from .helpers import CALLER, S3Requests, chat, history_texts, seed

# lease PUT, GET session.json, GET agent.json, PUT 2 messages, PUT agent.json, lease DELETE
PLAIN_TURN = {"PutObject": 4, "GetObject": 2, "DeleteObject": 1}


@pytest.mark.parametrize("history", [10, 100, 400])
def test_a_turn_costs_the_same_requests_at_any_history_length(
    s3_store: SessionStore, model_server: ModelServer, history: int
) -> None:
    seed(s3_store, "s1", history, model_server)
    requests = S3Requests(s3_store.objects.client)
    reply = chat(s3_store, "s1", "one more", model_server)
    assert requests.take() == PLAIN_TURN
    assert reply == "Noted: one more"
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] != "system"]
    assert len(sent) == min(history, 40) + 1  # the window the conversation manager kept, plus the new message


def test_a_turn_with_a_tool_call_writes_only_its_four_messages(
    s3_store: SessionStore, model_server: ModelServer
) -> None:
    from model_server import Reply

    seed(s3_store, "s1", 100, model_server)
    model_server.queue(Reply.call_tool("lookup_weather", {"city": "Paris"}))
    requests = S3Requests(s3_store.objects.client)
    assert chat(s3_store, "s1", "Weather in Paris?", model_server) == "The tool returned: It is sunny in Paris."
    assert requests.take() == {"PutObject": 6, "GetObject": 2, "DeleteObject": 1}
    assert len(history_texts(s3_store, "s1")) == 104


def test_a_new_session_costs_the_same_reads_and_one_more_write(s3_store: SessionStore, model_server: ModelServer) -> None:
    requests = S3Requests(s3_store.objects.client)
    chat(s3_store, "s1", "hello", model_server)
    # lease PUT, GET session.json + agent.json (both missing), PUT session.json, 2 messages, agent.json, lease DELETE
    assert requests.take() == {"PutObject": 5, "GetObject": 2, "DeleteObject": 1}


def test_a_session_written_by_the_stock_manager_is_read_the_stock_way_once(
    s3_store: SessionStore, model_server: ModelServer
) -> None:
    from strands.session.s3_session_manager import S3SessionManager

    from .helpers import BUCKET, make_agent
    from agent.store.keys import caller_segment

    stock = S3SessionManager("s1", bucket=BUCKET, prefix=f"sessions/{caller_segment(CALLER)}")
    make_agent(stock, model_server)("Hey, my name is Arindam.")
    requests = S3Requests(s3_store.objects.client)
    assert chat(s3_store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert requests.take()["ListObjectsV2"] == 1  # no snapshot yet: listed, as Strands does
    chat(s3_store, "s1", "and now?", model_server)
    assert requests.take() == PLAIN_TURN
