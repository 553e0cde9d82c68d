"""One turn at a time per session: contention, a dead holder, release on every path, and the
commit point's compare-and-swap when two writers both believe they hold the session."""

import json

import pytest
from model_server import ModelServer

from agent.errors import SessionBusy
from agent.store import SessionStore
from agent.store.keys import SessionKeys

from .helpers import CALLER, NEVER, Backend, Clock, chat, history_texts, make_agent


def user_texts(store: SessionStore, session_id: str) -> list[str]:
    return [text for role, text in history_texts(store, session_id) if role == "user"]


def test_a_second_turn_on_a_busy_session_gets_session_busy_and_writes_nothing(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    with store.turn(CALLER, "s1", NEVER) as turn:
        before = backend.stored()
        with pytest.raises(SessionBusy) as busy, store.turn(CALLER, "s1", NEVER):
            pytest.fail("the block must not run while another turn holds the session")
        assert busy.value.retry_after == store.settings.lease_seconds
        assert busy.value.code == "session_busy"
        with pytest.raises(SessionBusy):
            store.delete(CALLER, "s1", NEVER)
        assert backend.stored() == before
        make_agent(turn.session_manager, model_server)("Do you remember my name?")
    assert history_texts(store, "s1")[-1] == ("assistant", "Yes, your name is Arindam.")


def test_other_sessions_and_other_callers_are_not_blocked(store: SessionStore, model_server: ModelServer) -> None:
    with store.turn(CALLER, "s1", NEVER):
        assert chat(store, "s2", "hello", model_server) == "Noted: hello"
        assert chat(store, "s1", "hello", model_server, caller="someone-else") == "Noted: hello"


def test_a_holder_that_dies_blocks_the_session_until_its_lease_expires(
    short_lease_store: SessionStore, backend: Backend, clock: Clock, model_server: ModelServer
) -> None:
    store = short_lease_store
    store.leases.take(store.objects, SessionKeys.of(CALLER, "s1").lease)  # ...never released: the holder died
    with pytest.raises(SessionBusy) as busy:
        chat(store, "s1", "too early", model_server)
    assert busy.value.retry_after == 1
    clock.advance(1.1)
    assert chat(store, "s1", "after the expiry", model_server) == "Noted: after the expiry"
    assert history_texts(store, "s1") == [("user", "after the expiry"), ("assistant", "Noted: after the expiry")]
    assert not any(key.endswith(".lease") for key in backend.stored())


def test_the_lease_is_released_when_the_block_raises(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    with pytest.raises(RuntimeError), store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("hello")
        raise RuntimeError("the request failed after the model answered")
    assert backend.stored() == {}
    assert chat(store, "s1", "again", model_server) == "Noted: again"


def test_a_turn_that_outlived_its_lease_and_was_taken_over_is_not_stored(
    short_lease_store: SessionStore, clock: Clock, model_server: ModelServer
) -> None:
    store = short_lease_store
    chat(store, "s1", "first", model_server)
    with pytest.raises(SessionBusy), store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("slow turn")
        clock.advance(1.1)  # the lease runs out; another request takes the session over
        chat(store, "s1", "second", model_server)
    assert user_texts(store, "s1") == ["first", "second"]


def test_a_long_turn_still_holding_its_lease_renews_it_and_commits(
    short_lease_store: SessionStore, backend: Backend, clock: Clock, model_server: ModelServer
) -> None:
    store = short_lease_store
    with store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("slow but alone")
        lease_key = SessionKeys.of(CALLER, "s1").lease
        first = json.loads(backend.stored()[lease_key])
        clock.advance(1.1)  # past expiry, but nobody took it
    assert history_texts(store, "s1") == [("user", "slow but alone"), ("assistant", "Noted: slow but alone")]
    assert first["expires_at"] == pytest.approx(clock() - 1.1 + 1)
    assert lease_key not in backend.stored()


def steal_the_lease(store: SessionStore, session_id: str) -> None:
    """The lease is gone from under its holder, who does not know (clock skew, a frozen process)."""
    key = SessionKeys.of(CALLER, session_id).lease
    held = store.objects.get(key)
    assert held is not None and store.objects.delete_if_match(key, held.etag)


def test_the_commit_point_is_a_compare_and_swap_a_writer_that_lost_the_race_stores_nothing_more(
    store: SessionStore, backend: Backend, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat(store, "s1", "first", model_server)
    committed: dict[str, bytes] = {}
    objects = type(store.objects)
    put_if_match = objects.put_if_match

    def meanwhile(self, key: str, body: bytes, etag: str) -> str | None:
        if key.endswith("/agent.json"):
            # The loser's commit, after its messages and before its agent.json: another turn
            # takes the session and commits whole in between.
            monkeypatch.setattr(objects, "put_if_match", put_if_match)
            steal_the_lease(store, "s1")
            chat(store, "s1", "the winner", model_server)
            committed.update(backend.stored())
        return put_if_match(self, key, body, etag)

    monkeypatch.setattr(objects, "put_if_match", meanwhile)
    with pytest.raises(SessionBusy) as busy, store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("the loser")
    assert committed, "the race ran"
    assert busy.value.retry_after == 1
    assert backend.stored() == committed  # the winner's turn, whole: the loser's agent.json was refused
    assert history_texts(store, "s1") == [
        ("user", "first"), ("assistant", "Noted: first"), ("user", "the winner"), ("assistant", "Noted: the winner"),
    ]


def test_a_writer_that_lost_the_race_never_overwrites_committed_messages(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s1", "first", model_server)
    with pytest.raises(SessionBusy), store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("the loser")
        steal_the_lease(store, "s1")
        chat(store, "s1", "the winner", model_server)  # commits messages 2 and 3 first
        committed = backend.stored()
    assert backend.stored() == committed
    assert [text for role, text in history_texts(store, "s1") if role == "user"] == ["first", "the winner"]


def test_a_new_session_racing_a_writer_that_created_it_first_stores_nothing(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    with pytest.raises(SessionBusy), store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("the loser")
        steal_the_lease(store, "s1")
        chat(store, "s1", "the winner", model_server)
        committed = backend.stored()
    assert backend.stored() == committed
    assert history_texts(store, "s1") == [("user", "the winner"), ("assistant", "Noted: the winner")]


def test_leases_and_turns_work_on_a_versioned_bucket_like_the_deployed_one(
    s3_backend: Backend, s3_store: SessionStore, model_server: ModelServer
) -> None:
    s3_backend.s3.put_bucket_versioning(Bucket="test-sessions", VersioningConfiguration={"Status": "Enabled"})
    for text in ("Hey, my name is Arindam.", "Do you remember my name?"):
        chat(s3_store, "s1", text, model_server)  # the second turn re-creates the lease over a delete marker
    with s3_store.turn(CALLER, "s1", NEVER), pytest.raises(SessionBusy):
        chat(s3_store, "s1", "in between", model_server)
    assert history_texts(s3_store, "s1")[-1] == ("assistant", "Yes, your name is Arindam.")
    s3_store.delete(CALLER, "s1", NEVER)
    assert [key.split("/")[0] for key in s3_backend.stored()] == [".activity"]  # the sweep's day marker
