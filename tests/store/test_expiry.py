"""Expiry: idle sessions disappear whole; active and busy ones stay; a caller's documents go once
the caller has no session left; old connection bindings go; a sweep out of time resumes."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from model_server import ModelServer

from agent.deadline import Deadline
from agent.store import SessionStore
from agent.store.keys import SessionKeys, caller_segment

from .helpers import CALLER, NEVER, Backend, chat, history_texts


def utcnow() -> datetime:
    return datetime.now(UTC)


def next_whole_second() -> datetime:
    """Wait for it: S3 keeps LastModified to the second, so this splits older objects from newer."""
    time.sleep(1 - time.time() % 1 + 0.01)
    return utcnow().replace(microsecond=0)


def test_expire_idle_deletes_whole_idle_sessions_and_skips_active_and_busy_ones(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    ttl = timedelta(days=store.settings.session_ttl_days)
    for session_id in ("idle", "busy"):
        chat(store, session_id, "fact", model_server)
    chat(store, "idle", "another fact", model_server, caller="local")
    busy = store.leases.take(store.objects, SessionKeys.of(CALLER, "busy").lease)
    middle = next_whole_second()
    chat(store, "active", "hello", model_server)
    chat(store, "idle", "I am back", model_server, caller="someone-else")

    assert store.expire_idle(utcnow(), NEVER) == []
    assert sorted(store.expire_idle(middle + ttl, NEVER)) == [f"{CALLER}/idle", "local/idle"]

    keys = backend.stored()
    assert not [key for key in keys if "/session_idle" in key and not key.startswith("someone-else/")]
    assert [text for role, text in history_texts(store, "active") if role == "user"] == ["hello"]
    assert len(history_texts(store, "busy")) == 2
    assert len(history_texts(store, "idle", caller="someone-else")) == 2

    store.leases.release(store.objects, busy)
    later = middle + ttl + timedelta(days=1)
    assert sorted(store.expire_idle(later, NEVER)) == [f"{CALLER}/active", f"{CALLER}/busy", "someone-else/idle"]
    assert backend.stored() == {}  # the sweep's cursor included


def test_an_idle_session_comes_back_empty_after_expiry(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    store.records(CALLER, "s1", NEVER).put("turn.1", {"state": "done"})
    future = utcnow() + timedelta(days=store.settings.session_ttl_days, seconds=5)
    assert store.expire_idle(future, NEVER) == [f"{CALLER}/s1"]
    assert backend.stored() == {}
    assert chat(store, "s1", "Do you remember my name?", model_server) == "I don't know your name yet."


def test_a_sweep_out_of_time_resumes_where_it_stopped_and_always_progresses(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    for n in range(4):
        chat(store, f"old{n}", "hello", model_server)
    store.change_caller_document(CALLER, "memory", lambda _: {"facts": []}, NEVER)  # goes with the last session
    future = utcnow() + timedelta(days=store.settings.session_ttl_days, seconds=5)

    runs, deleted = 0, list[str]()
    while len(deleted) < 4 and runs < 10:
        before = len(backend.stored())
        swept = store.expire_idle(future, Deadline.after(0))  # no time at all: one thing per run
        assert len(backend.stored()) < before, "every run must delete something"
        deleted += swept
        runs += 1
    assert sorted(deleted) == [f"{CALLER}/old{n}" for n in range(4)]
    assert ".expiry-sweep-cursor" in backend.stored() or backend.stored() == {}
    while backend.stored() and runs < 20:
        store.expire_idle(future, Deadline.after(0))
        runs += 1
    assert backend.stored() == {}  # the last run listed to the end and dropped the cursor


def test_a_callers_documents_go_once_the_caller_has_no_session_left(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    for caller in (CALLER, "gone", "fresh"):
        if caller != CALLER:  # the sweep judges a caller's documents when it deletes their last session
            chat(store, "s0", "hello", model_server, caller=caller)
        store.change_caller_document(caller, "memory", lambda _: {"facts": ["likes tea"]}, NEVER)
    chat(store, "s1", "hello", model_server)  # CALLER still has a session: a busy one, below
    busy = store.leases.take(store.objects, SessionKeys.of(CALLER, "s1").lease)
    ttl = timedelta(days=store.settings.session_ttl_days)

    assert store.expire_idle(utcnow() + ttl - timedelta(hours=1), NEVER) == []  # nothing old enough yet
    assert {key.split("/")[0] for key in backend.stored() if key.endswith("memory.json")} == {
        caller_segment(c) for c in (CALLER, "gone", "fresh")
    }

    assert sorted(store.expire_idle(utcnow() + ttl + timedelta(seconds=5), NEVER)) == ["fresh/s0", "gone/s0"]
    assert store.caller_document(CALLER, "memory", NEVER) == {"facts": ["likes tea"]}
    assert store.caller_document("gone", "memory", NEVER) is None
    assert store.caller_document("fresh", "memory", NEVER) is None

    store.leases.release(store.objects, busy)
    assert store.expire_idle(utcnow() + ttl + timedelta(seconds=5), NEVER) == [f"{CALLER}/s1"]
    assert backend.stored() == {}


def test_connection_bindings_older_than_a_day_go_and_younger_ones_stay(
    store: SessionStore, backend: Backend
) -> None:
    store.bind_connection("conn-A==", CALLER, NEVER)
    assert store.expire_idle(utcnow() + timedelta(hours=3), NEVER) == []
    assert store.connection_caller("conn-A==", NEVER) == CALLER
    assert store.expire_idle(utcnow() + timedelta(days=1, seconds=5), NEVER) == []
    assert store.connection_caller("conn-A==", NEVER) is None
    assert backend.stored() == {}


def sweep_requests(store: SessionStore, requests: Any, idle: int, model_server: ModelServer) -> dict[str, int]:
    """The requests of a sweep over ``idle`` idle sessions of two callers, one renamed each."""
    for n in range(idle):
        chat(store, f"idle{n}", "hello", model_server, caller=("alice", "bob")[n % 2])
    for caller in ("alice", "bob"):
        store.rename(caller, "idle0" if caller == "alice" else "idle1", "Renamed", NEVER)
    requests.take()
    future = utcnow() + timedelta(days=store.settings.session_ttl_days, seconds=5)
    assert len(store.expire_idle(future, NEVER)) == idle
    return requests.take()


def test_the_sweep_costs_four_requests_an_idle_session_and_reads_titles_once_a_caller(
    s3_store: SessionStore, s3_backend: Backend, requests: Any, model_server: ModelServer
) -> None:
    # GET agent.json, PUT the lease, LIST the folder, one DELETE of folder, entry and lease.
    four = {"GetObject": 1, "PutObject": 1, "ListObjectsV2": 1, "DeleteObjects": 1}
    few = sweep_requests(s3_store, requests, 4, model_server)
    assert s3_backend.stored() == {}  # the titles and the lease went too
    more = sweep_requests(s3_store, requests, 10, model_server)
    assert {op: more.get(op, 0) - few.get(op, 0) for op in set(more) | set(few)} == {
        op: 6 * four.get(op, 0) for op in set(more) | set(few)}
    # Besides: the cursor's GET and DELETE, two LISTs of days, one of the day's markers and their
    # DELETE, connections' LIST; a caller: a LIST of their sessions, GET titles.json and memory.json,
    # and titles.json's DELETE (no session left).
    assert sum(few.values()) == 4 * 4 + 7 + 2 * 4
    assert few["GetObject"] == 4 + 1 + 2 * 2


def test_a_callers_memory_goes_after_their_sessions_were_deleted_by_hand(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s0", "hello", model_server, caller="gone")
    store.change_caller_document("gone", "memory", lambda _: {"facts": ["likes tea"]}, NEVER)
    store.delete("gone", "s0", NEVER)  # no session left: only the sweep can find the memory
    ttl = timedelta(days=store.settings.session_ttl_days)
    assert store.expire_idle(utcnow() + ttl + timedelta(seconds=5), NEVER) == []
    assert store.caller_document("gone", "memory", NEVER) is None
    assert backend.stored() == {}


def test_a_memory_younger_than_the_ttl_is_judged_again_on_its_own_day(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s0", "hello", model_server, caller="gone")
    store.change_caller_document("gone", "memory", lambda _: {"facts": ["likes tea"]}, NEVER)
    store.delete("gone", "s0", NEVER)
    stored = store.objects.get(f"{caller_segment('gone')}/memory.json")
    assert stored is not None
    ttl = timedelta(days=store.settings.session_ttl_days)
    store.expire_idle(stored.last_modified + ttl, NEVER)  # the cutoff is the memory's own time: too young
    assert store.caller_document("gone", "memory", NEVER) == {"facts": ["likes tea"]}
    day = stored.last_modified.strftime("%Y-%m-%d")
    assert f".activity/{day}/{caller_segment('gone')}/~documents" in backend.stored()
    store.expire_idle(stored.last_modified + ttl + timedelta(seconds=5), NEVER)
    assert backend.stored() == {}  # the caller marker brought it back: memory and marker gone


def test_a_sweep_out_of_time_still_forgets_the_titles_of_what_it_deleted(
    store: SessionStore, model_server: ModelServer
) -> None:
    for session_id in ("old0", "old1", "kept"):
        chat(store, session_id, "hello", model_server)
        store.rename(CALLER, session_id, f"Named {session_id}", NEVER)
    busy = store.leases.take(store.objects, SessionKeys.of(CALLER, "kept").lease)
    future = utcnow() + timedelta(days=store.settings.session_ttl_days, seconds=5)
    deleted = store.expire_idle(future, Deadline.after(0))  # no time: it stops after the first
    assert len(deleted) == 1
    chat(store, deleted[0].split("/")[1], "a new conversation", model_server)  # the same id, anew
    titles = {s["session_id"]: s["title"] for s in store.list_sessions(CALLER, 10, None, NEVER).sessions}
    assert titles[deleted[0].split("/")[1]] == "a new conversation"
    assert titles["kept"] == "Named kept"
    store.leases.release(store.objects, busy)
