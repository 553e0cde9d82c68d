"""A turn is stored whole or not at all; reads inside it see its writes; callers stay apart."""

import pytest
from model_server import ModelServer, Reply
from strands.types.exceptions import EventLoopException

from agent.errors import InvalidRequest, SessionNotFound
from agent.store import SessionStore

from .helpers import CALLER, NEVER, Backend, chat, history_texts, make_agent, texts


def test_a_block_that_raises_on_a_new_session_stores_nothing(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    with pytest.raises(RuntimeError), store.turn(CALLER, "new", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("Hey, my name is Arindam.")
        raise RuntimeError("failed before the reply went out")
    assert backend.stored() == {}  # not even session.json, and no lease left behind
    with pytest.raises(SessionNotFound):
        store.history(CALLER, "new", 0, 10, NEVER)


def test_a_failed_turn_on_an_existing_session_leaves_it_exactly_as_it_was(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    before = backend.stored()
    model_server.queue(Reply.call_tool("lookup_weather", {"city": "Paris"}), Reply.error(500))
    with pytest.raises(EventLoopException):  # the model's 500, as Strands raises it
        chat(store, "s1", "What's the weather in Paris?", model_server)
    assert backend.stored() == before

    assert chat(store, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert texts(model_server.requests[-1]["messages"][-3:]) == [
        ("user", "Hey, my name is Arindam."),
        ("assistant", "Noted: Hey, my name is Arindam."),
        ("user", "Do you remember my name?"),
    ]


def test_history_keeps_every_message_while_the_model_sees_the_window(
    store: SessionStore, model_server: ModelServer
) -> None:
    for i in range(5):
        chat(store, "s1", f"fact {i}", model_server, window=4)
    assert [text for role, text in history_texts(store, "s1") if role == "user"] == [f"fact {i}" for i in range(5)]
    assert [m.message_id for m in store.history(CALLER, "s1", 0, 100, NEVER).messages] == list(range(10))
    sent = [m for m in model_server.requests[-1]["messages"] if m["role"] != "system"]
    assert texts(sent) == [  # the window of four the conversation manager kept, and the new message
        ("user", "fact 2"), ("assistant", "Noted: fact 2"), ("user", "fact 3"), ("assistant", "Noted: fact 3"),
        ("user", "fact 4"),
    ]


def test_a_missing_session_raises_and_creates_nothing(store: SessionStore, backend: Backend) -> None:
    with pytest.raises(SessionNotFound):
        store.history(CALLER, "missing", 0, 10, NEVER)
    with pytest.raises(SessionNotFound):
        store.delete(CALLER, "missing", NEVER)
    assert backend.stored() == {}


def test_delete_removes_the_whole_session_and_the_next_turn_starts_fresh(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server)
    chat(store, "s2", "Hey, my name is Bo.", model_server)
    store.records(CALLER, "s1", NEVER).put("status", {"state": "done"})
    store.delete(CALLER, "s1", NEVER)
    assert [key for key in backend.stored() if "session_s1" in key] == []
    assert chat(store, "s1", "Do you remember my name?", model_server) == "I don't know your name yet."
    assert chat(store, "s2", "Do you remember my name?", model_server) == "Yes, your name is Bo."


def test_reads_inside_a_turn_see_its_buffered_writes(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    with store.turn(CALLER, "s1", NEVER) as turn:
        make_agent(turn.session_manager, model_server)("hello")
        repository = turn.session_manager.session_repository
        assert repository.read_session("s1") is not None
        agent, message = repository.read_agent("s1", "default"), repository.read_message("s1", "default", 1)
        assert agent is not None and agent.agent_id == "default"
        assert message is not None and message.message["role"] == "assistant"
        assert [m.message_id for m in repository.list_messages("s1", "default")] == [0, 1]
        assert [key.rsplit("/", 1)[-1] for key in backend.stored()] == ["session_s1.lease"]
    assert len(backend.stored()) == 6  # session.json, agent.json, two messages, list entry, day marker; no lease


def test_callers_cannot_reach_each_others_sessions_whatever_their_names(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    chat(store, "s1", "Hey, my name is Arindam.", model_server, caller="..")
    for caller in ["../..", "/", ".", "local", "arn:aws:sts::123456789012:assumed-role/ChatRole/..", "é"]:
        answer = chat(store, "s1", "Do you remember my name?", model_server, caller=caller)
        assert answer == "I don't know your name yet."
    assert chat(store, "s1", "Do you remember my name?", model_server, caller="..") == "Yes, your name is Arindam."
    for key in backend.stored():
        assert ".." not in key.split("/") and not key.startswith("/")


@pytest.mark.parametrize("session_id", ["../x", "a/b", ".hidden", ""])
def test_a_bad_session_id_is_refused_before_anything_is_stored(
    store: SessionStore, backend: Backend, session_id: str
) -> None:
    with pytest.raises(InvalidRequest), store.turn(CALLER, session_id, NEVER):
        pytest.fail("the block must not run")
    assert backend.stored() == {}


def test_agent_json_carries_the_window_the_next_turn_restores(
    store: SessionStore, backend: Backend, model_server: ModelServer
) -> None:
    for i in range(3):
        chat(store, "s1", f"fact {i}", model_server, window=4)
    agent_json = backend.stored_json("agent.json")
    snapshot = agent_json["_snapshot"]
    assert snapshot["message_count"] == 6
    assert snapshot["offset"] == agent_json["conversation_manager_state"]["removed_message_count"] == 2
    assert [m["message_id"] for m in snapshot["messages"]] == [2, 3, 4, 5]
    assert snapshot["messages"] == [backend.stored_json(f"message_{i}.json") for i in range(2, 6)]


class AnswerLost:
    """Files whose conditional write of agent.json lands, but whose answer never arrives (as on S3
    when a response times out and botocore's retry of the landed write is refused with 412)."""

    def __init__(self, objects, how: str) -> None:
        self.objects, self.how = objects, how

    def __getattr__(self, name):
        return getattr(self.objects, name)

    def within(self, deadline):
        return AnswerLost(self.objects.within(deadline), self.how)

    def put_if_match(self, key, body, etag):
        landed = self.objects.put_if_match(key, body, etag)
        if not key.endswith("agent.json") or landed is None:
            return landed
        if self.how == "timeout":
            raise OSError("the answer to the write never came")
        return None  # the retry of the write that had landed, refused


@pytest.mark.parametrize("how", ["timeout", "retry refused"])
def test_a_commit_that_landed_is_a_success_even_when_its_answer_was_lost(tmp_path, model_server, how):
    from agent.settings import Settings
    from agent.store.file_objects import FileObjects

    settings = Settings(session_dir=str(tmp_path / "sessions"))
    plain = SessionStore(FileObjects(settings.session_dir), settings)
    chat(plain, "s1", "Hey, my name is Arindam.", model_server)
    losing = SessionStore(AnswerLost(FileObjects(settings.session_dir), how), settings)

    assert chat(losing, "s1", "Do you remember my name?", model_server) == "Yes, your name is Arindam."
    assert [text for _, text in history_texts(plain, "s1")][::2] == ["Hey, my name is Arindam.",
                                                                    "Do you remember my name?"]
