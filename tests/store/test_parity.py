"""Parity: the same conversation on S3 and on files stores and restores the same thing, in Strands'
own layout, so stock S3SessionManager / FileSessionManager read it identically, and the store
restores what the previous store (v1) wrote exactly as v1 did."""

import json
import shutil
from pathlib import Path
from typing import Any

from model_server import ModelServer, Reply
from strands.session.file_session_manager import FileSessionManager
from strands.session.s3_session_manager import S3SessionManager

from agent.store import SessionStore
from agent.store.keys import caller_segment

from .helpers import CALLER, NEVER, Backend, Clock, chat, make_agent

FIXTURE = Path(__file__).parent / "fixtures" / "written_by_v1"
SCRIPT = [
    ("Hey, my name is Arindam.", None),
    ("What's the weather in Paris?", Reply.call_tool("lookup_weather", {"city": "Paris"})),
    ("Do you remember my name?", None),
]
# model latency; a turn's id; the list entry's key (it holds session.json's created_at)
VOLATILE = {"created_at", "updated_at", "tracking_id", "metrics", "_commit", "_listing"}


def scrub(value: Any) -> Any:
    """Drop what differs between two runs by nature (timestamps, random tracking ids)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def converse(store: SessionStore, server: ModelServer) -> list[str]:
    replies = []
    for text, scripted in SCRIPT:
        if scripted:
            server.queue(scripted)
        replies.append(chat(store, "s1", text, server))
    return replies


def restored(session_manager: Any, server: ModelServer, window: int = 40) -> tuple[Any, Any, Any]:
    agent = make_agent(session_manager, server, window)
    return agent.messages, agent.state.get(), agent.conversation_manager.get_state()


def restored_by_store(store: SessionStore, server: ModelServer, session_id: str = "s1", window: int = 40) -> Any:
    with store.turn(CALLER, session_id, NEVER) as turn:
        return restored(turn.session_manager, server, window)


def stock(backend: Backend, session_id: str = "s1") -> Any:
    location = backend.stock_location(caller_segment(CALLER))
    if backend.kind == "s3":
        return S3SessionManager(session_id, **location)
    return FileSessionManager(session_id, **location)


def test_s3_and_files_store_and_restore_the_same_conversation(
    s3_backend: Backend, files_backend: Backend, model_server: ModelServer
) -> None:
    clock = Clock()  # one time for both: the list entry's key holds the last turn's time
    s3, files = s3_backend.store(clock), files_backend.store(clock)
    assert converse(s3, model_server) == converse(files, model_server) == [
        "Noted: Hey, my name is Arindam.",
        "The tool returned: It is sunny in Paris.",
        "Yes, your name is Arindam.",
    ]

    def documents(backend: Backend) -> dict[str, Any]:
        return {key: scrub(json.loads(body)) for key, body in backend.stored().items() if "/sessions/" not in key}

    # Same keys, relative to the store's root, holding the same documents.
    assert documents(s3_backend) == documents(files_backend)
    segment = caller_segment(CALLER)
    listing = [key for key in s3_backend.stored() if key.startswith((f"{segment}/sessions/", ".activity/"))]
    assert len(listing) == 2  # the session's list entry and its day's marker
    assert sorted(set(s3_backend.stored()) - set(listing)) == [
        f"{segment}/session_s1/agents/agent_default/agent.json",
        *sorted(f"{segment}/session_s1/agents/agent_default/messages/message_{i}.json" for i in range(8)),
        f"{segment}/session_s1/session.json",
    ]

    # Restored identically: by our store on either backend, and by Strands' stock managers.
    expected = scrub(restored_by_store(files, model_server))
    assert scrub(restored_by_store(s3, model_server)) == expected
    assert scrub(restored(stock(s3_backend), model_server)) == expected
    assert scrub(restored(stock(files_backend), model_server)) == expected
    messages, _, _ = expected
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert "toolUse" in messages[3]["content"][0] and "toolResult" in messages[4]["content"][0]


def test_a_session_started_by_a_stock_manager_continues_in_the_store(
    backend: Backend, model_server: ModelServer
) -> None:
    store = backend.store()
    make_agent(stock(backend), model_server)("Hey, my name is Arindam.")
    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert chat(store, "s1", "And again?", model_server) == "Noted: And again?"
    history = store.history(CALLER, "s1", 0, 100, NEVER)
    assert [m.message_id for m in history.messages] == list(range(6)) and history.total == 6
    assert scrub(restored(stock(backend), model_server)) == scrub(restored_by_store(store, model_server))


def test_a_session_written_by_the_v1_store_restores_exactly_as_v1_restored_it(
    backend: Backend, model_server: ModelServer
) -> None:
    if backend.kind == "s3":
        for path in FIXTURE.rglob("*.json"):
            backend.s3.put_object(Bucket="test-sessions", Key=f"sessions/{path.relative_to(FIXTURE).as_posix()}",
                                  Body=path.read_bytes())
    else:
        shutil.copytree(FIXTURE, backend.root)
    expected = json.loads((FIXTURE.parent / "written_by_v1.expected.json").read_text())
    store = backend.store()

    messages, state, conversation_manager_state = restored_by_store(store, model_server, "fixture_session", window=6)
    assert messages == expected["messages"]
    assert state == expected["state"]
    assert conversation_manager_state == expected["conversation_manager_state"]
    history = store.history(CALLER, "fixture_session", 0, 1000, NEVER)
    assert [m.to_dict() for m in history.messages] == expected["history"]
    assert history.total == len(expected["history"]) == 14

    with store.turn(CALLER, "fixture_session", NEVER) as turn:  # and it goes on
        make_agent(turn.session_manager, model_server, window=6)("Do you remember my name?")
    assert model_server.user_texts() == [
        "Do you remember my name?", "Tell me a joke about S3 ü 🚀.", "What do you know about me?",
        "Do you remember my name?"
    ]
    assert store.history(CALLER, "fixture_session", 14, 10, NEVER).total == 16
