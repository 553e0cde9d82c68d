"""Records that live with a session, caller documents changed by compare-and-swap, connections."""

import threading
from typing import Any

import pytest
from model_server import ModelServer

from agent.errors import InvalidRequest, SessionNotFound
from agent.store import SessionStore
from agent.store.keys import SessionKeys, caller_segment

from .helpers import CALLER, NEVER, Backend, chat, make_agent


def test_records_create_replace_put_get_delete(store: SessionStore, backend: Backend) -> None:
    records = store.records(CALLER, "s1", NEVER)
    assert records.get("idem:abc-1") is None
    etag = records.create("idem:abc-1", {"state": "running"})
    assert etag is not None
    assert records.create("idem:abc-1", {"state": "again"}) is None  # exists
    assert records.get("idem:abc-1") == ({"state": "running"}, etag)
    assert records.replace("idem:abc-1", {"state": "stale"}, "not-the-etag") is None
    newer = records.replace("idem:abc-1", {"state": "done"}, etag)
    assert newer is not None and newer != etag
    assert records.replace("idem:abc-1", {"state": "late"}, etag) is None  # changed since
    assert records.get("idem:abc-1") == ({"state": "done"}, newer)
    put = records.put("turn.42", {"state": "queued"})
    assert records.get("turn.42") == ({"state": "queued"}, put)
    key = SessionKeys.of(CALLER, "s1").record("idem:abc-1")
    assert backend.stored_json(key) == {"state": "done"}
    records.delete("idem:abc-1")
    assert records.get("idem:abc-1") is None and records.get("turn.42") is not None
    with pytest.raises(InvalidRequest):
        records.get("../session.json")


def test_records_go_with_their_session(store: SessionStore, backend: Backend, model_server: ModelServer) -> None:
    chat(store, "s1", "hello", model_server)
    store.records(CALLER, "s1", NEVER).put("turn.1", {"state": "done"})
    store.records(CALLER, "s2", NEVER).put("turn.1", {"state": "done"})
    store.delete(CALLER, "s1", NEVER)
    assert store.records(CALLER, "s1", NEVER).get("turn.1") is None
    assert store.records(CALLER, "s2", NEVER).get("turn.1") is not None
    with pytest.raises(SessionNotFound):  # records alone are no session to read
        store.history(CALLER, "s2", 0, 10, NEVER)


def add(fact: str) -> Any:
    def change(memory: dict | None) -> dict:
        memory = memory or {"facts": []}
        memory["facts"].append(fact)
        return memory

    return change


def test_caller_documents_are_read_modified_and_deleted(store: SessionStore, backend: Backend) -> None:
    assert store.caller_document(CALLER, "memory", NEVER) is None
    assert store.change_caller_document(CALLER, "memory", add("likes tea"), NEVER) == {"facts": ["likes tea"]}
    assert store.change_caller_document(CALLER, "memory", add("lives in Pune"), NEVER) == {
        "facts": ["likes tea", "lives in Pune"]
    }
    assert store.caller_document(CALLER, "memory", NEVER) == {"facts": ["likes tea", "lives in Pune"]}
    assert backend.stored_json(f"{caller_segment(CALLER)}/memory.json") == {"facts": ["likes tea", "lives in Pune"]}
    assert store.caller_document("someone-else", "memory", NEVER) is None
    assert store.change_caller_document(CALLER, "memory", lambda memory: None, NEVER) is None
    assert backend.stored() == {}


def test_concurrent_changes_of_one_document_lose_nothing(store: SessionStore) -> None:
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        start.wait()
        try:
            for i in range(10):
                store.change_caller_document(CALLER, "memory", add(f"{name}{i}"), NEVER)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    document = store.caller_document(CALLER, "memory", NEVER)
    assert document is not None
    facts = document["facts"]
    assert sorted(facts) == sorted(f"{name}{i}" for name in "ab" for i in range(10))
    assert [f for f in facts if f.startswith("a")] == [f"a{i}" for i in range(10)]  # each writer's order kept


def test_a_turn_reads_the_caller_document_and_changes_it_at_commit(
    store: SessionStore, model_server: ModelServer
) -> None:
    store.change_caller_document(CALLER, "memory", add("likes tea"), NEVER)
    with store.turn(CALLER, "s1", NEVER, caller_document="memory") as turn:
        assert turn.caller_document == {"facts": ["likes tea"]}
        make_agent(turn.session_manager, model_server)("I live in Pune.")
        turn.change_caller_document(add("lives in Pune"))
        # Another turn of the same caller (another session) changes it meanwhile: both changes stay.
        with store.turn(CALLER, "s2", NEVER, caller_document="memory") as other:
            other.change_caller_document(add("has a cat"))
        assert store.caller_document(CALLER, "memory", NEVER) == {"facts": ["likes tea", "has a cat"]}
    assert store.caller_document(CALLER, "memory", NEVER) == {"facts": ["likes tea", "has a cat", "lives in Pune"]}


def test_a_turn_that_raises_changes_no_caller_document(store: SessionStore, model_server: ModelServer) -> None:
    with pytest.raises(RuntimeError), store.turn(CALLER, "s1", NEVER, caller_document="memory") as turn:
        assert turn.caller_document is None
        turn.change_caller_document(add("never stored"))
        raise RuntimeError("the model failed")
    assert store.caller_document(CALLER, "memory", NEVER) is None
    with store.turn(CALLER, "s1", NEVER) as turn, pytest.raises(ValueError):
        turn.change_caller_document(add("which document?"))


def test_connections_are_bound_to_their_caller_and_unbound(store: SessionStore, backend: Backend) -> None:
    connection_id = "Ab3+/cd=="  # API Gateway's are base64-like
    assert store.connection_caller(connection_id, NEVER) is None
    store.bind_connection(connection_id, CALLER, NEVER)
    store.bind_connection("other", "someone-else", NEVER)
    assert store.connection_caller(connection_id, NEVER) == CALLER
    assert store.connection_caller("other", NEVER) == "someone-else"
    binding = backend.stored_json(".connections/Ab3%2B%2Fcd%3D%3D.json")
    assert binding["caller"] == CALLER and binding["connected_at"]
    store.unbind_connection(connection_id, NEVER)
    assert store.connection_caller(connection_id, NEVER) is None
    assert store.connection_caller("other", NEVER) == "someone-else"
