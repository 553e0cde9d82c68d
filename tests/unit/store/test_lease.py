"""One turn at a time per session: contention, a dead holder, release on every path."""

import time
from typing import Any

import pytest

from agent.errors import SessionBusy
from agent.store import SessionStore
from agent.store.keys import SessionKeys
from model_server import ModelServer

from .helpers import CALLER, chat, history_texts, make_agent, stored


def test_a_second_turn_on_a_busy_session_gets_session_busy_and_writes_nothing(
    store: SessionStore, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    with store.turn(CALLER, "s1") as session_manager:
        before = stored(store)
        with pytest.raises(SessionBusy) as busy:
            with store.turn(CALLER, "s1"):
                pytest.fail("the block must not run while another turn holds the session")
        assert 1 <= busy.value.retry_after <= store.settings.lease_seconds
        assert busy.value.code == "session_busy"
        with pytest.raises(SessionBusy):
            store.delete(CALLER, "s1")
        assert stored(store) == before
        make_agent(session_manager, model_server)("Do you remember my name?")
    assert [text for _, text in history_texts(store, "s1")][-1] == "Yes, your name is Arindam."


def test_other_sessions_and_other_callers_are_not_blocked(store: SessionStore, model_server: ModelServer) -> None:
    with store.turn(CALLER, "s1"):
        assert chat(store, "s2", "hello", model_server) == "Noted: hello"
        assert chat(store, "s1", "hello", model_server, caller="someone-else") == "Noted: hello"


def test_a_holder_that_dies_loses_the_lease_after_it_expires(
    short_lease_store: SessionStore, model_server: ModelServer
) -> None:
    store = short_lease_store
    name = SessionKeys.of(CALLER, "s1")
    store.leases.take(store.objects, name.lease)  # ...and never released: the holder died
    with pytest.raises(SessionBusy) as busy:
        chat(store, "s1", "too early", model_server)
    assert busy.value.retry_after == 1
    time.sleep(1.1)
    assert chat(store, "s1", "after the expiry", model_server) == "Noted: after the expiry"
    assert history_texts(store, "s1") == [("user", "after the expiry"), ("assistant", "Noted: after the expiry")]
    assert not any(key.endswith(".lease") for key in stored(store))


def test_the_lease_is_released_when_the_turn_raises(store: SessionStore, model_server: ModelServer) -> None:
    with pytest.raises(RuntimeError):
        with store.turn(CALLER, "s1") as session_manager:
            make_agent(session_manager, model_server)("hello")
            raise RuntimeError("the request failed after the model answered")
    assert stored(store) == {}
    assert chat(store, "s1", "again", model_server) == "Noted: again"


def test_a_turn_that_outlives_its_lease_and_was_taken_over_is_not_stored(
    short_lease_store: SessionStore, model_server: ModelServer
) -> None:
    store = short_lease_store
    chat(store, "s1", "first", model_server)
    with pytest.raises(SessionBusy):
        with store.turn(CALLER, "s1") as session_manager:
            make_agent(session_manager, model_server)("slow turn")
            time.sleep(1.1)  # the lease runs out; another request takes the session over
            chat(store, "s1", "second", model_server)
    assert [text for role, text in history_texts(store, "s1") if role == "user"] == ["first", "second"]


def test_a_long_turn_still_holding_its_lease_renews_it_and_commits(
    short_lease_store: SessionStore, model_server: ModelServer
) -> None:
    store = short_lease_store
    with store.turn(CALLER, "s1") as session_manager:
        make_agent(session_manager, model_server)("slow but alone")
        time.sleep(1.1)
    assert history_texts(store, "s1") == [("user", "slow but alone"), ("assistant", "Noted: slow but alone")]


def test_leases_and_turns_work_on_a_versioned_bucket_like_the_deployed_one(
    s3_bucket: Any, s3_store: SessionStore, model_server: ModelServer
) -> None:
    s3_bucket.put_bucket_versioning(Bucket="test-sessions", VersioningConfiguration={"Status": "Enabled"})
    for text in ("Hey, my name is Arindam.", "Do you remember my name?"):
        chat(s3_store, "s1", text, model_server)  # the second turn re-creates the lease over a delete marker
    with s3_store.turn(CALLER, "s1"):
        with pytest.raises(SessionBusy):
            chat(s3_store, "s1", "in between", model_server)
    assert history_texts(s3_store, "s1")[-1] == ("assistant", "Yes, your name is Arindam.")
    s3_store.delete(CALLER, "s1")
    assert stored(s3_store) == {}
