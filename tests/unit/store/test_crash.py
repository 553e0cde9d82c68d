"""Crash safety: whatever a dead or failed turn left behind, the next turn works normally."""

import threading
import time
from typing import Any

import pytest
from strands import tool
from strands.types.session import SessionMessage

from agent.errors import SessionBusy
from agent.store import SessionStore
from agent.store.keys import SessionKeys
from agent.store.repository import encode
from model_server import ModelServer, Reply

from .helpers import CALLER, chat, history_texts, make_agent, stored, texts


def test_a_turn_killed_inside_its_tool_call_stores_nothing_and_the_next_turn_is_normal(
    short_lease_store: SessionStore, model_server: ModelServer
) -> None:
    store = short_lease_store
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    before = stored(store)
    frozen, reached = threading.Event(), threading.Event()

    @tool
    def slow_lookup(city: str) -> str:
        """Look something up, slowly."""
        reached.set()
        frozen.wait(30)  # the Lambda timeout: this invocation never runs again
        return "too late"

    def doomed_turn() -> None:
        turn = store.turn(CALLER, "s1")
        session_manager = turn.__enter__()  # never exited: the process dies mid-turn
        agent = make_agent(session_manager, model_server)
        agent.tool_registry.register_tool(slow_lookup)
        agent("Look up Paris")

    model_server.queue(Reply.call_tool("slow_lookup", {"city": "Paris"}))
    doomed = threading.Thread(target=doomed_turn, daemon=True)
    doomed.start()
    try:
        assert reached.wait(10)
        check_next_turns_are_normal(store, model_server, before)
    finally:
        frozen.set()
        doomed.join(10)


def check_next_turns_are_normal(store: SessionStore, model_server: ModelServer, before: dict[str, bytes]) -> None:
    with pytest.raises(SessionBusy):
        chat(store, "s1", "too early", model_server)
    time.sleep(1.1)  # the dead turn's lease runs out

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert texts(model_server.requests[-1]["messages"]) == [
        ("user", "Hey, my name is Arindam."),
        ("assistant", "Noted: Hey, my name is Arindam."),
        ("user", "Do you remember my name?"),
    ]
    assert len(history_texts(store, "s1")) == 4
    assert set(before) <= set(stored(store))


def test_leftovers_of_a_commit_killed_half_way_are_ignored_and_removed(
    short_lease_store: SessionStore, model_server: ModelServer
) -> None:
    store = short_lease_store
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    keys = SessionKeys.of(CALLER, "s1")
    store.leases.take(store.objects, keys.lease)  # the dying turn held the lease...
    lost = [  # ...and had written four of its messages, but not agent.json, when it died
        {"role": "user", "content": [{"text": "lost question"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup_weather", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "status": "success", "content": []}}]},
        {"role": "assistant", "content": [{"text": "lost answer"}]},
    ]
    for index, message in enumerate(lost, start=2):
        store.objects.put(keys.message("default", index), encode(SessionMessage.from_message(message, index).to_dict()))
    time.sleep(1.1)

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    sent = texts(model_server.requests[-1]["messages"])
    assert ("user", "lost question") not in sent and len(sent) == 3
    assert history_texts(store, "s1") == [
        ("user", "Hey, my name is Arindam."),
        ("assistant", "Noted: Hey, my name is Arindam."),
        ("user", "Do you remember my name?"),
        ("assistant", "Yes, your name is Arindam."),
    ]
    assert not [key for key in stored(store) if key.endswith(("message_4.json", "message_5.json"))]


def test_an_orphaned_tool_call_stored_by_a_killed_stock_turn_is_repaired_on_restore(
    store: SessionStore, model_server: ModelServer, kind: str
) -> None:
    stock = stock_manager(store, kind)
    agent = make_agent(stock, model_server)
    stock.append_message({"role": "user", "content": [{"text": "Hey, my name is Arindam. Weather?"}]}, agent)
    tool_use = {"toolUse": {"toolUseId": "call_1", "name": "lookup_weather", "input": {"city": "Paris"}}}
    stock.append_message({"role": "assistant", "content": [tool_use]}, agent)
    stock.sync_agent(agent)  # killed here: the tool call is stored, its result never was

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    sent = model_server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2]["tool_call_id"] == "call_1"
    assert chat(store, "s1", "Thanks!", model_server) == "Noted: Thanks!"
    roles = [role for role, _ in history_texts(store, "s1")]
    assert roles[-4:] == ["user", "assistant", "user", "assistant"]


def stock_manager(store: SessionStore, kind: str) -> Any:
    """A stock Strands manager on the same session, as a deployment before this store wrote it."""
    import os

    from strands.session.file_session_manager import FileSessionManager
    from strands.session.s3_session_manager import S3SessionManager

    from agent.store.keys import caller_segment

    from .helpers import BUCKET

    segment = caller_segment(CALLER)
    if kind == "s3":
        return S3SessionManager("s1", bucket=BUCKET, prefix=f"sessions/{segment}")
    return FileSessionManager("s1", storage_dir=os.path.join(store.objects.root, segment))
