"""How a reply ends decides whether it is stored: only an answer the provider said it finished.

Through `Conversations.chat`, the way every path runs a turn: with ``on_delta`` (WebSocket and
queued turns stream) and without (synchronous HTTP turns ask for the whole answer), LiteLLM over
HTTP to the test model, sessions in local files.
"""

import pytest
from model_server import Reply

from agent import ChatRequest, Conversations, Deadline, ModelError
from agent.turn import MAX_MODEL_CALLS_PER_TURN
from tests.conftest import Api, stored_files

CALLER, SESSION = "local", "user_arindam_convo_123"
CUT = {
    "dropped mid-body": lambda: Reply.half_stream("The answer is forty", words=3),
    "ended without [DONE]": lambda: Reply.half_stream("The answer is forty", words=3, abrupt=False),
    "ended with [DONE]": lambda: Reply.half_stream("The answer is forty", words=3, done=True),
}
HOW = {"streamed": True, "whole": False}


def conversations(env: dict[str, str]) -> Conversations:
    return Api(env).services.conversations


def chat(conversations: Conversations, message: str, streamed: bool, deltas: list[str] | None = None) -> str:
    on_delta = (deltas if deltas is not None else []).append if streamed else None
    return conversations.chat(ChatRequest(CALLER, SESSION, message), Deadline.after(20), on_delta=on_delta).reply


def texts(conversations: Conversations) -> list[str]:
    return [m.text for m in conversations.history(CALLER, SESSION, Deadline.after(5)).messages]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("cut", CUT)
def test_a_reply_cut_before_its_finish_reason_is_a_model_error_and_stores_nothing(env, model_server, cut, how):
    talk = conversations(env)
    assert "Arindam" in chat(talk, "Hey, my name is Arindam.", HOW[how])
    before = texts(talk)

    model_server.queue(CUT[cut]())
    deltas: list[str] = []
    with pytest.raises(ModelError) as failure:
        chat(talk, "What is the answer?", HOW[how], deltas)

    assert failure.value.code == "model_error" and "stored" in failure.value.message
    assert texts(talk) == before
    assert "Arindam" in chat(talk, "Do you remember my name?", HOW[how])  # the session is still usable
    assert model_server.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]


@pytest.mark.parametrize("how", HOW)
def test_a_cut_reply_on_a_new_session_leaves_no_session(env, model_server, session_dir, how):
    model_server.queue(Reply.half_stream("Half of it", words=1, done=True))
    talk = conversations(env)
    with pytest.raises(ModelError):
        chat(talk, "hello", HOW[how])
    assert stored_files(session_dir) == []


@pytest.mark.parametrize("how", HOW)
def test_a_finished_streamed_reply_is_still_stored_whole(env, model_server, how):
    talk = conversations(env)
    model_server.queue(Reply.say("The answer is forty-two."))
    deltas: list[str] = []
    assert chat(talk, "What is the answer?", HOW[how], deltas) == "The answer is forty-two."
    assert texts(talk) == ["What is the answer?", "The answer is forty-two."]
    assert "".join(deltas) == ("The answer is forty-two." if HOW[how] else "")


@pytest.mark.parametrize("how", HOW)
def test_a_turn_that_only_calls_tools_until_the_limit_stores_no_empty_reply(env, model_server, how):
    talk = conversations(env)
    chat(talk, "Hey, my name is Arindam.", HOW[how])
    before = texts(talk)

    model_server.queue(*[Reply.call_tool("current_time", {})] * MAX_MODEL_CALLS_PER_TURN)
    with pytest.raises(ModelError) as failure:
        chat(talk, "What time is it?", HOW[how])

    assert "nothing was stored" in failure.value.message
    assert len(model_server.requests) == 1 + MAX_MODEL_CALLS_PER_TURN  # it did reach the limit
    assert texts(talk) == before
    assert "Arindam" in chat(talk, "Do you remember my name?", HOW[how])

