"""Parity: the same scripted conversation on S3 and on files stores and restores the same thing,
in Strands' own layout, so stock S3SessionManager / FileSessionManager read it identically."""

import json
import os
from pathlib import Path
from typing import Any

from strands.session.file_session_manager import FileSessionManager
from strands.session.s3_session_manager import S3SessionManager

from agent.store import SessionStore
from agent.store.keys import caller_segment
from model_server import ModelServer, Reply

from .helpers import BUCKET, CALLER, chat, make_agent, make_store, stored

SCRIPT = [
    ("Hey, my name is Arindam.", None),
    ("What's the weather in Paris?", Reply.call_tool("lookup_weather", {"city": "Paris"})),
    ("Do you remember my name?", None),
]
VOLATILE = {"created_at", "updated_at", "tracking_id", "metrics"}  # "metrics": model latency


def scrub(value: Any) -> Any:
    """Drop what differs between two runs by nature (timestamps, random tracking ids)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def converse(store: SessionStore, server: ModelServer) -> list[str]:
    replies = []
    for text, scripted in SCRIPT:
        if scripted:
            server.queue(scripted)
        replies.append(chat(store, "s1", text, server))
    return replies


def restored_by_store(store: SessionStore, server: ModelServer) -> tuple[Any, Any, Any]:
    with store.turn(CALLER, "s1") as session_manager:
        agent = make_agent(session_manager, server)
        return scrub(agent.messages), agent.state.get(), agent.conversation_manager.get_state()


def restored_by_stock(session_manager: Any, server: ModelServer) -> tuple[Any, Any, Any]:
    agent = make_agent(session_manager, server)
    return scrub(agent.messages), agent.state.get(), agent.conversation_manager.get_state()


def documents(store: SessionStore) -> dict[str, Any]:
    return {key: scrub(json.loads(body)) for key, body in stored(store).items()}


def test_s3_and_files_store_and_restore_the_same_conversation(
    s3_bucket: Any, tmp_path: Path, model_server: ModelServer
) -> None:
    s3, files = make_store("s3", tmp_path), make_store("files", tmp_path)
    assert converse(s3, model_server) == converse(files, model_server) == [
        "Noted: Hey, my name is Arindam.",
        "The tool returned: It is sunny in Paris.",
        "Yes, your name is Arindam.",
    ]

    # Same keys, relative to the store's root, holding the same documents.
    assert documents(s3) == documents(files)
    segment = caller_segment(CALLER)
    assert sorted(stored(s3)) == [
        f"{segment}/session_s1/agents/agent_default/agent.json",
        *sorted(f"{segment}/session_s1/agents/agent_default/messages/message_{i}.json" for i in range(8)),
        f"{segment}/session_s1/session.json",
    ]

    # Restored identically: by our store on either backend, and by Strands' stock managers.
    expected = restored_by_store(files, model_server)
    assert restored_by_store(s3, model_server) == expected
    stock_s3 = S3SessionManager("s1", bucket=BUCKET, prefix=f"sessions/{segment}")
    stock_files = FileSessionManager("s1", storage_dir=os.path.join(files.objects.root, segment))
    assert restored_by_stock(stock_s3, model_server) == expected
    assert restored_by_stock(stock_files, model_server) == expected

    messages, _, _ = expected
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert "toolUse" in messages[3]["content"][0] and "toolResult" in messages[4]["content"][0]


def test_a_session_started_by_a_stock_manager_continues_in_the_store(
    s3_bucket: Any, tmp_path: Path, model_server: ModelServer
) -> None:
    for kind in ("s3", "files"):
        store = make_store(kind, tmp_path)
        segment = caller_segment(CALLER)
        if kind == "s3":
            stock: Any = S3SessionManager("s1", bucket=BUCKET, prefix=f"sessions/{segment}")
        else:
            stock = FileSessionManager("s1", storage_dir=os.path.join(store.objects.root, segment))
        make_agent(stock, model_server)("Hey, my name is Arindam.")
        assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
        assert chat(store, "s1", "And again?", model_server) == "Noted: And again?"
        assert [m.message_id for m in store.history(CALLER, "s1")] == list(range(6))
