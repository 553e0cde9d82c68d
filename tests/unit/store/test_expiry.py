"""Whole-session expiry: an idle session disappears entirely; active and busy ones are untouched."""

import time
from datetime import datetime, timedelta, timezone

from agent.store import SessionStore
from agent.store.keys import SessionKeys
from model_server import ModelServer

from .helpers import CALLER, chat, history_texts, stored


def test_expire_idle_deletes_whole_idle_sessions_and_skips_active_and_busy_ones(
    store: SessionStore, model_server: ModelServer
) -> None:
    ttl = timedelta(days=store.settings.session_ttl_days)
    for session_id in ("idle", "busy"):
        for i in range(3):
            chat(store, session_id, f"fact {i}", model_server)
    chat(store, "idle", "another fact", model_server, caller="local")
    busy = store.leases.take(store.objects, SessionKeys.of(CALLER, "busy").lease)
    time.sleep(1.1)  # S3 keeps LastModified to the second
    middle = datetime.now(timezone.utc)
    time.sleep(1.1)
    chat(store, "active", "hello", model_server)
    chat(store, "idle", "I am back", model_server, caller="someone-else")

    assert store.expire_idle(datetime.now(timezone.utc)) == []
    assert sorted(store.expire_idle(middle + ttl)) == [f"{CALLER}/idle", "local/idle"]

    keys = stored(store)
    assert not [key for key in keys if "/session_idle" in key and not key.startswith("someone-else/")]
    assert [text for role, text in history_texts(store, "active") if role == "user"] == ["hello"]
    assert len(history_texts(store, "busy")) == 6
    assert len(history_texts(store, "idle", caller="someone-else")) == 2

    store.leases.release(store.objects, busy)
    later = middle + ttl + timedelta(days=1)
    assert sorted(store.expire_idle(later)) == [f"{CALLER}/active", f"{CALLER}/busy", "someone-else/idle"]
    assert stored(store) == {}


def test_an_idle_session_comes_back_empty_after_expiry(store: SessionStore, model_server: ModelServer) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    future = datetime.now(timezone.utc) + timedelta(days=store.settings.session_ttl_days, seconds=5)
    assert store.expire_idle(future) == [f"{CALLER}/s1"]
    assert chat(store, "s1", "Do you remember my name?", model_server) == "I don't know your name yet."


def test_a_sweep_out_of_time_resumes_where_it_stopped_and_always_progresses(
    store: SessionStore, model_server: ModelServer
) -> None:
    for n in range(4):
        chat(store, f"old{n}", "hello", model_server)
    future = datetime.now(timezone.utc) + timedelta(days=store.settings.session_ttl_days, seconds=5)

    runs, deleted = 0, []
    while len(deleted) < 4 and runs < 10:
        swept = store.expire_idle(future, seconds_left=0)  # no time at all: one session per run
        assert swept, "every run must delete at least one idle session"
        deleted += swept
        runs += 1
    assert sorted(deleted) == [f"{CALLER}/old{n}" for n in range(4)]
    assert store.expire_idle(future, seconds_left=0) == []  # this run lists to the end...
    assert stored(store) == {}  # ...and drops the cursor: nothing is left
