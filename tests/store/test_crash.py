"""Crash safety: whatever a dead or failed turn left behind, the next turn works normally."""

import json
import threading

import pytest
from model_server import ModelServer, Reply
from strands import tool
from strands.session.file_session_manager import FileSessionManager
from strands.session.s3_session_manager import S3SessionManager
from strands.types.content import ContentBlock, Message
from strands.types.session import SessionMessage

from agent.errors import SessionBusy
from agent.store import SessionStore
from agent.store.documents import encode
from agent.store.keys import SessionKeys, caller_segment

from .helpers import CALLER, NEVER, Backend, Clock, chat, history_texts, make_agent, texts


def test_a_turn_killed_inside_its_tool_call_stores_nothing_and_the_next_turn_is_normal(
    short_lease_store: SessionStore, backend: Backend, clock: Clock, model_server: ModelServer
) -> None:
    store = short_lease_store
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    before = backend.stored()
    frozen, reached = threading.Event(), threading.Event()

    @tool
    def slow_lookup(city: str) -> str:
        """Look something up, slowly."""
        reached.set()
        frozen.wait(30)  # the Lambda timeout: this invocation never runs again
        return "too late"

    def doomed_turn() -> None:
        block = store.turn(CALLER, "s1", NEVER)  # kept referenced: a collected generator would clean up
        turn = block.__enter__()  # never exited: the process dies mid-turn
        agent = make_agent(turn.session_manager, model_server)
        agent.tool_registry.register_tool(slow_lookup)
        agent("Look up Paris")

    model_server.queue(Reply.call_tool("slow_lookup", {"city": "Paris"}))
    doomed = threading.Thread(target=doomed_turn, daemon=True)
    doomed.start()
    try:
        assert reached.wait(10)
        with pytest.raises(SessionBusy):
            chat(store, "s1", "too early", model_server)
        assert {k: v for k, v in backend.stored().items() if not k.endswith(".lease")} == before
        clock.advance(1.1)  # the dead turn's lease runs out

        assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
        assert texts(model_server.requests[-1]["messages"]) == [
            ("user", "Hey, my name is Arindam."),
            ("assistant", "Noted: Hey, my name is Arindam."),
            ("user", "Do you remember my name?"),
        ]
        assert len(history_texts(store, "s1")) == 4
    finally:
        frozen.set()
        doomed.join(10)


def test_leftovers_of_a_commit_killed_half_way_are_ignored_and_removed(
    short_lease_store: SessionStore, backend: Backend, clock: Clock, model_server: ModelServer
) -> None:
    store = short_lease_store
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    keys = SessionKeys.of(CALLER, "s1")
    store.leases.take(store.objects, keys.lease)  # the dying turn held the lease...
    lost: list[Message] = [  # ...and had written four of its messages, but not agent.json, when it died
        {"role": "user", "content": [{"text": "lost question"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup_weather", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "status": "success", "content": []}}]},
        {"role": "assistant", "content": [{"text": "lost answer"}]},
    ]
    for index, message in enumerate(lost, start=2):
        backend.write(keys.message("default", index), encode(SessionMessage.from_message(message, index).to_dict()))
    clock.advance(1.1)

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    sent = texts(model_server.requests[-1]["messages"])
    assert ("user", "lost question") not in sent and len(sent) == 3
    assert history_texts(store, "s1") == [
        ("user", "Hey, my name is Arindam."),
        ("assistant", "Noted: Hey, my name is Arindam."),
        ("user", "Do you remember my name?"),
        ("assistant", "Yes, your name is Arindam."),
    ]
    assert not [key for key in backend.stored() if key.endswith(("message_4.json", "message_5.json"))]


def test_leftovers_met_without_a_takeover_are_overwritten(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    """A commit that failed half-way (released its lease normally) left message 2 behind."""
    chat(store, "s1", "first", model_server)
    keys = SessionKeys.of(CALLER, "s1")
    leftover = SessionMessage.from_message({"role": "user", "content": [{"text": "never committed"}]}, 2)
    backend.write(keys.message("default", 2), encode(leftover.to_dict()))
    assert [t for _, t in history_texts(store, "s1")] == ["first", "Noted: first"]
    assert chat(store, "s1", "second", model_server) == "Noted: second"
    assert [t for _, t in history_texts(store, "s1")] == ["first", "Noted: first", "second", "Noted: second"]


def test_an_orphaned_tool_call_stored_by_a_killed_stock_turn_is_repaired_on_restore(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    location = backend.stock_location(caller_segment(CALLER))
    stock = S3SessionManager("s1", **location) if backend.kind == "s3" else FileSessionManager("s1", **location)
    agent = make_agent(stock, model_server)
    stock.append_message({"role": "user", "content": [{"text": "Hey, my name is Arindam. Weather?"}]}, agent)
    tool_use: ContentBlock = {"toolUse": {"toolUseId": "call_1", "name": "lookup_weather", "input": {"city": "Paris"}}}
    stock.append_message({"role": "assistant", "content": [tool_use]}, agent)
    stock.sync_agent(agent)  # killed here: the tool call is stored, its result never was

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    sent = model_server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2]["tool_call_id"] == "call_1"
    assert chat(store, "s1", "Thanks!", model_server) == "Noted: Thanks!"
    roles = [role for role, _ in history_texts(store, "s1")]
    assert roles[-4:] == ["user", "assistant", "user", "assistant"]


def test_a_commit_in_one_round_trip_killed_before_its_files_landed_restores_and_is_repaired(
    short_lease_store: SessionStore, backend: Backend, clock: Clock, model_server: ModelServer
) -> None:
    """The new messages and session.json are written in the commit point's round trip: a turn
    that died there may leave agent.json (the commit) without them, and its lease behind."""
    store = short_lease_store
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    keys = SessionKeys.of(CALLER, "s1")
    store.leases.take(store.objects, keys.lease)  # the dying turn still held the lease
    unwritten = [keys.session, keys.message("default", 0), keys.message("default", 1)]
    store.objects.delete(unwritten)

    history = [("user", "Hey, my name is Arindam."), ("assistant", "Noted: Hey, my name is Arindam.")]
    assert history_texts(store, "s1") == history  # complete from agent.json, and the session exists
    clock.advance(1.1)  # the dead turn's lease runs out: the next turn takes it over and repairs

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert texts(model_server.requests[-1]["messages"]) == [*history, ("user", "Do you remember my name?")]
    stored = backend.stored()
    assert all(key in stored for key in unwritten)
    restored = [SessionMessage.from_dict(json.loads(stored[key])).to_message()["content"][0]["text"]
                for key in unwritten[1:]]
    assert restored == [text for _, text in history]
