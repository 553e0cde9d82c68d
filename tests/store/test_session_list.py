"""The session list: newest first with titles, renames, deletes and expiry remove at once,
callers apart, paging exactly once, concurrent turns, and sessions written before the list."""

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from model_server import ModelServer

from agent.errors import InvalidRequest, SessionNotFound
from agent.store import SessionStore

from .helpers import CALLER, NEVER, Backend, Clock, chat, seed

V1 = Path(__file__).parent / "fixtures" / "written_by_v1"


def listed(store: SessionStore, caller: str = CALLER, limit: int = 50) -> list[dict]:
    return store.list_sessions(caller, limit, None, NEVER).sessions


def test_three_sessions_are_listed_newest_first_with_their_titles(
    store: SessionStore, clock: Clock, model_server: ModelServer
) -> None:
    long = "Plan a trip to Japan in April with stops in Kyoto, Osaka and Tokyo, and tell me what to pack for rain"
    for session_id, text in (("a", "Hey, my name is Arindam."), ("b", long), ("c", "hello")):
        chat(store, session_id, text, model_server)
        clock.advance(60)
    chat(store, "a", "again", model_server)
    sessions = listed(store)
    assert [s["session_id"] for s in sessions] == ["a", "c", "b"]
    assert [s["message_count"] for s in sessions] == [4, 2, 2]
    assert sessions[0]["title"] == "Hey, my name is Arindam."
    title_b = sessions[2]["title"]
    assert title_b.endswith("…") and len(title_b) <= 81 and long.startswith(title_b[:-1])
    assert sessions[0]["updated_at"] > sessions[1]["updated_at"] > sessions[2]["updated_at"]


def test_rename_sets_the_title_and_bad_titles_change_nothing(store: SessionStore, model_server: ModelServer) -> None:
    chat(store, "a", "hello", model_server)
    assert store.rename(CALLER, "a", "  Trip to Japan ", NEVER)["title"] == "Trip to Japan"
    for bad in ("", "   ", "x" * 201, "tab\u0007bell"):
        with pytest.raises(InvalidRequest):
            store.rename(CALLER, "a", bad, NEVER)
    assert listed(store)[0]["title"] == "Trip to Japan"
    assert store.session_summary(CALLER, "a", NEVER)["title"] == "Trip to Japan"
    with pytest.raises(SessionNotFound):
        store.rename(CALLER, "nope", "A title", NEVER)


def test_delete_and_expiry_remove_a_session_from_the_list_at_once(
    store: SessionStore, clock: Clock, model_server: ModelServer
) -> None:
    for session_id in ("old", "gone", "kept"):
        chat(store, session_id, f"hello {session_id}", model_server)
    store.rename(CALLER, "gone", "Soon deleted", NEVER)
    store.delete(CALLER, "gone", NEVER)
    assert sorted(s["session_id"] for s in listed(store)) == ["kept", "old"]
    with pytest.raises(SessionNotFound):
        store.session_summary(CALLER, "gone", NEVER)
    clock.advance(3 * 86_400)
    chat(store, "kept", "still here", model_server)
    now = datetime.fromtimestamp(clock.now, UTC)
    future = now + timedelta(days=store.settings.session_ttl_days) - timedelta(days=1)
    assert store.expire_idle(future, NEVER) == [f"{CALLER}/old"]
    assert [s["session_id"] for s in listed(store)] == ["kept"]


def test_two_callers_never_see_each_others_sessions(store: SessionStore, model_server: ModelServer) -> None:
    chat(store, "same", "I am alice", model_server)
    chat(store, "same", "I am bob", model_server, caller="bob")
    chat(store, "bobs", "only bob", model_server, caller="bob")
    assert [s["title"] for s in listed(store)] == ["I am alice"]
    assert sorted(s["title"] for s in listed(store, "bob")) == ["I am bob", "only bob"]
    cursor = store.list_sessions("bob", 1, None, NEVER).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidRequest):
        store.list_sessions(CALLER, 1, cursor, NEVER)
    with pytest.raises(InvalidRequest):
        store.list_sessions("bob", 1, "not-a-cursor", NEVER)


@pytest.mark.parametrize("backend", ["files"], indirect=True)
def test_paging_across_250_sessions_lists_each_exactly_once_newest_first(
    store: SessionStore, clock: Clock, model_server: ModelServer
) -> None:
    for n in range(250):
        seed(store, f"s{n:03d}", 2, model_server)
        clock.advance(1)
    seen, cursor = [], None
    while True:
        page = store.list_sessions(CALLER, 40, cursor, NEVER)
        seen += [s["session_id"] for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"s{n:03d}" for n in reversed(range(250))]


def test_concurrent_turns_in_8_sessions_of_one_caller_are_all_listed_with_their_counts(
    store: SessionStore, model_server: ModelServer
) -> None:
    def two_turns(n: int) -> None:
        chat(store, f"c{n}", "first", model_server)
        chat(store, f"c{n}", "second", model_server)

    threads = [threading.Thread(target=two_turns, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((s["session_id"], s["message_count"]) for s in listed(store)) == [(f"c{n}", 4) for n in range(8)]


@pytest.mark.parametrize("backend", ["files"], indirect=True)
def test_sessions_written_before_the_list_are_listed(store: SessionStore, backend: Backend,
                                                     model_server: ModelServer) -> None:
    shutil.copytree(V1, backend.root, dirs_exist_ok=True)
    caller = next(V1.iterdir()).name
    from urllib.parse import unquote

    sessions = listed(store, unquote(caller))
    assert sessions and all(s["message_count"] > 0 and s["title"] for s in sessions)
    before = {s["session_id"]: s for s in sessions}
    assert listed(store, unquote(caller)) == sessions  # indexed once; the same list again
    assert set(before) == {p.name.removeprefix("session_") for p in (V1 / caller).iterdir()
                           if p.is_dir() and p.name.startswith("session_")}
