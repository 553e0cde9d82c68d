"""History slices: start, limit and the total, inside and outside the snapshot, on both backends."""

import pytest
from model_server import ModelServer

from agent.errors import InvalidRequest
from agent.store import SessionStore

from .helpers import CALLER, NEVER, chat, seed


def ids(store: SessionStore, start: int, limit: int) -> tuple[list[int], int]:
    page = store.history(CALLER, "s1", start, limit, NEVER)
    return [m.message_id for m in page.messages], page.total


def test_slices_by_start_and_limit_across_the_snapshot_boundary(store: SessionStore, model_server: ModelServer) -> None:
    seed(store, "s1", 30, model_server, window=10)  # messages 20..29 are in agent.json's snapshot
    chat(store, "s1", "newest", model_server, window=10)
    assert ids(store, 0, 5) == ([0, 1, 2, 3, 4], 32)
    assert ids(store, 18, 4) == ([18, 19, 20, 21], 32)  # two outside the snapshot, two inside
    assert ids(store, 28, 100) == ([28, 29, 30, 31], 32)
    assert ids(store, 32, 10) == ([], 32)
    assert ids(store, 0, 0) == ([], 32)
    page = store.history(CALLER, "s1", 30, 2, NEVER)
    assert [m.to_message()["content"][0]["text"] for m in page.messages] == ["newest", "Noted: newest"]
    older = store.history(CALLER, "s1", 3, 1, NEVER).messages[0]
    assert older.to_message() == {"role": "assistant", "content": [{"text": "message 3"}]}


def test_paging_through_returns_every_message_once(store: SessionStore, model_server: ModelServer) -> None:
    seed(store, "s1", 23, model_server, window=6)
    seen, start = [], 0
    while True:
        page = store.history(CALLER, "s1", start, 5, NEVER)
        seen += [m.message_id for m in page.messages]
        start += 5
        if start >= page.total:
            break
    assert seen == list(range(23))


def test_a_session_without_messages_has_an_empty_history(store: SessionStore, model_server: ModelServer) -> None:
    seed(store, "s1", 0, model_server)
    assert ids(store, 0, 10) == ([], 0)


@pytest.mark.parametrize("start, limit", [(-1, 10), (0, -1)])
def test_negative_start_or_limit_is_invalid(store: SessionStore, start: int, limit: int) -> None:
    with pytest.raises(InvalidRequest):
        store.history(CALLER, "s1", start, limit, NEVER)
