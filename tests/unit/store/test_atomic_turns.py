"""A turn is stored whole or not at all; the history keeps every message; reads see the turn's writes."""

import json

import pytest

from agent.errors import SessionNotFound
from agent.store import SessionStore
from model_server import ModelServer, Reply

from .helpers import CALLER, chat, history_texts, make_agent, stored, texts


def test_a_block_that_raises_on_a_new_session_stores_nothing(store: SessionStore, model_server: ModelServer) -> None:
    with pytest.raises(RuntimeError):
        with store.turn(CALLER, "new") as session_manager:
            make_agent(session_manager, model_server)("Hey, my name is Arindam.")
            raise RuntimeError("failed before the reply went out")
    assert stored(store) == {}  # not even session.json, and no lease left behind
    with pytest.raises(SessionNotFound):
        store.history(CALLER, "new")


def test_a_failed_turn_on_an_existing_session_leaves_it_exactly_as_it_was(
    store: SessionStore, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    before = stored(store)
    model_server.queue(Reply.call_tool("lookup_weather", {"city": "Paris"}), Reply.error(500))
    with pytest.raises(Exception):
        chat(store, "s1", "What's the weather in Paris?", model_server)
    assert stored(store) == before

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert texts(model_server.requests[-1]["messages"][-3:]) == [
        ("user", "Hey, my name is Arindam."),
        ("assistant", "Noted: Hey, my name is Arindam."),
        ("user", "Do you remember my name?"),
    ]


def test_history_returns_every_message_while_the_model_sees_the_window(
    store: SessionStore, model_server: ModelServer
) -> None:
    for i in range(5):
        chat(store, "s1", f"fact {i}", model_server, window=4)
    assert [text for role, text in history_texts(store, "s1") if role == "user"] == [f"fact {i}" for i in range(5)]
    assert [m.message_id for m in store.history(CALLER, "s1")] == list(range(10))
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] != "system"]
    assert len(sent) <= 5


def test_history_of_a_missing_session_raises_and_creates_nothing(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound):
        store.history(CALLER, "missing")
    with pytest.raises(SessionNotFound):
        store.delete(CALLER, "missing")
    assert stored(store) == {}


def test_delete_removes_the_whole_session_and_the_next_turn_starts_fresh(
    store: SessionStore, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    chat(store, "s2", "Hey, my name is Bo.", model_server)
    store.delete(CALLER, "s1")
    assert all("session_s1" not in key for key in stored(store))
    assert chat(store, "s1", "Do you remember my name?", model_server) == "I don't know your name yet."
    assert chat(store, "s2", "Do you remember my name?", model_server) == "Yes, your name is Bo."


def test_reads_inside_a_turn_see_its_buffered_writes(store: SessionStore, model_server: ModelServer) -> None:
    with store.turn(CALLER, "s1") as session_manager:
        agent = make_agent(session_manager, model_server)
        agent("hello")
        repository = session_manager.session_repository
        assert repository.read_session("s1") is not None
        assert repository.read_agent("s1", "default").agent_id == "default"
        assert repository.read_message("s1", "default", 1).message["role"] == "assistant"
        assert [m.message_id for m in repository.list_messages("s1", "default")] == [0, 1]
        assert stored(store) == {} or all(key.endswith(".lease") for key in stored(store))


def test_callers_cannot_reach_each_others_sessions_whatever_their_names(
    store: SessionStore, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server, caller="..")
    for caller in ["../..", "/", ".", "local", "arn:aws:sts::123456789012:assumed-role/ChatRole/..", "é"]:
        assert chat(store, "s1", "Do you remember my name?", model_server, caller=caller) == "I don't know your name yet."
    assert chat(store, "s1", "Do you remember my name?", model_server, caller="..") == "Yes, your name is Arindam."
    for key in stored(store):
        assert ".." not in key.split("/") and not key.startswith("/")


def test_agent_json_carries_the_window_the_next_turn_restores(store: SessionStore, model_server: ModelServer) -> None:
    for i in range(3):
        chat(store, "s1", f"fact {i}", model_server, window=4)
    (agent_json,) = [json.loads(body) for key, body in stored(store).items() if key.endswith("agent.json")]
    snapshot = agent_json["_snapshot"]
    assert snapshot["message_count"] == 6
    assert snapshot["offset"] == agent_json["conversation_manager_state"]["removed_message_count"] == 2
    assert [m["message_id"] for m in snapshot["messages"]] == [2, 3, 4, 5]
