"""The test model, seen the way the project's code sees it: Strands' LiteLLMModel -> litellm -> openai over HTTP.

Each hostile reply is checked for what a client actually gets, so a test that queues one knows
what its code under test will face.
"""

import http.client
import json
import subprocess
import sys
import threading
import time
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

import litellm
import pytest
from litellm.exceptions import MidStreamFallbackError
from model_server import ModelServer, Reply
from strands import Agent, ModelRetryStrategy, tool
from strands.agent.conversation_manager import SummarizingConversationManager
from strands.models.litellm import LiteLLMModel

from tests.conftest import ROOT

# The project's memory section: a heading with "remember about this user", one "- [id] text" line per fact.
MEMORY = ("You are helpful.\n\n## What you remember about this user\n"
          "- [f_3fa9c2] My name is Arindam.\n- [f_77aa01] I like tea.\n")


def model(server: ModelServer) -> LiteLLMModel:
    client_args = {"api_key": "test", "api_base": server.base_url, "max_retries": 0}
    return LiteLLMModel(client_args=client_args, model_id="openai/test-model")


class Deltas:
    """A Strands callback handler that keeps each text delta with the time it arrived."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seen: list[tuple[float, str]] = []

    def __call__(self, **event: Any) -> None:
        if "data" in event:
            self.seen.append((time.monotonic() - self.started, event["data"]))

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.seen]

    @property
    def times(self) -> list[float]:
        return [at for at, _ in self.seen]


def agent(server: ModelServer, deltas: Deltas | None = None, **kwargs: Any) -> Agent:
    return Agent(model=model(server), callback_handler=deltas, retry_strategy=ModelRetryStrategy(max_attempts=1),
                 **kwargs)


def complete(server: ModelServer, text: str = "hi", **kwargs: Any) -> Any:
    """litellm directly, where what the client library sees is the clearer check."""
    return litellm.completion(model="openai/test-model", api_base=server.base_url, api_key="test", max_retries=0,
                              messages=[{"role": "user", "content": text}], **kwargs)


def stream_events(server: ModelServer, text: str = "hi") -> tuple[http.client.HTTPResponse, list[str]]:
    """The raw wire: the response and its SSE data lines, read with no client library in between."""
    url = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    body = {"model": "test-model", "stream": True, "messages": [{"role": "user", "content": text}]}
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    lines = response.read().decode().split("\n\n")
    return response, [line.removeprefix("data: ") for line in lines if line]


@tool
def remember(fact: str) -> str:
    """Remember a fact about the user for later conversations."""
    return "remembered"


@tool
def forget(fact_id: str) -> str:
    """Forget a remembered fact, by its id."""
    return "forgotten"


# ---- streaming ---------------------------------------------------------------------------------


def test_the_wire_is_what_a_provider_sends_one_event_per_word_then_finish_usage_done(model_server):
    model_server.queue(Reply.say("It is  sunny\nin Paris. "))
    response, events = stream_events(model_server)

    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type") == "text/event-stream" and response.getheader("Content-Length") is None
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert deltas[0] == "" and deltas[1:-1] == ["It", " is", "  sunny", "\nin", " Paris. "]
    assert "".join(deltas[1:-1]) == "It is  sunny\nin Paris. "
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert events[-1] == "[DONE]"


def test_a_streamed_reply_reaches_the_agent_one_word_at_a_time_with_the_pauses():
    with ModelServer(word_delay=0.1) as server:
        agent(server)("warm up")  # LiteLLM's first call imports and sets up; keep that out of the timing
        deltas = Deltas()
        result = agent(server, deltas)("one two three four five")

    words = ["Noted:", " one", " two", " three", " four", " five"]
    assert deltas.texts == words and str(result).strip() == "".join(words)
    gaps = [later - earlier for earlier, later in pairwise(deltas.times)]
    assert sum(gap >= 0.08 for gap in gaps) >= len(gaps) - 1, gaps  # a busy client may read two at once
    assert deltas.times[-1] >= 0.1 * (len(words) - 1)


def test_a_reply_can_set_its_own_word_delay(model_server):
    agent(model_server)("warm up")
    model_server.queue(Reply.say("a b c d e", word_delay=0.05))
    deltas = Deltas()
    agent(model_server, deltas)("go")
    assert deltas.texts == ["a", " b", " c", " d", " e"]
    assert deltas.times[-1] - deltas.times[0] >= 0.04 * 2


def test_a_slow_reply_takes_about_its_seconds_spread_over_its_words(model_server):
    model_server.queue(Reply.slow("one two three four five", seconds=0.5))
    deltas = Deltas()
    agent(model_server, deltas)("go")
    assert deltas.texts == ["one", " two", " three", " four", " five"]
    assert 0.5 <= deltas.times[-1] < 1.5
    assert deltas.times[-1] - deltas.times[0] >= 0.3  # spread out, not one stall then a burst


def test_without_stream_the_reply_is_one_completion(model_server):
    model_server.queue(Reply.say("It is sunny in Paris."), Reply.call_tool("lookup_weather", {"city": "Paris"}))
    said = complete(model_server, stream=False)
    assert said.choices[0].message.content == "It is sunny in Paris." and said.choices[0].finish_reason == "stop"
    called = complete(model_server, stream=False)
    assert called.choices[0].finish_reason == "tool_calls"
    assert json.loads(called.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}


def test_a_streamed_tool_call_reaches_the_agent_with_its_arguments(model_server):
    calls: list[str] = []

    @tool
    def lookup_weather(city: str) -> str:
        """Report the weather for a city."""
        calls.append(city)
        return f"It is sunny in {city}."

    model_server.queue(Reply.call_tool("lookup_weather", {"city": "Paris"}))
    result = agent(model_server, tools=[lookup_weather])("Weather in Paris?")
    assert calls == ["Paris"] and str(result).strip() == "The tool returned: It is sunny in Paris."


# ---- hostile replies -----------------------------------------------------------------------------


def test_half_stream_drops_the_connection_after_n_words(model_server):
    model_server.queue(Reply.half_stream("one two three four", words=2))
    deltas = Deltas()
    with pytest.raises(MidStreamFallbackError, match="Response payload is not completed"):  # a 503
        agent(model_server, deltas)("go")
    assert deltas.texts == ["one", " two"]

    model_server.queue(Reply.half_stream("one two three four", words=2))
    with pytest.raises(http.client.IncompleteRead):
        stream_events(model_server)


def test_half_stream_ended_cleanly_looks_like_a_short_finished_reply_to_strands(model_server):
    model_server.queue(*[Reply.half_stream("one two three four", words=2, abrupt=False)] * 3)
    response, events = stream_events(model_server)
    chunks = [json.loads(e) for e in events]
    assert response.status == 200 and events[-1] != "[DONE]"
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["", "one", " two"]
    assert not any(c["choices"][0]["finish_reason"] for c in chunks)  # the wire never says "stop"...

    streamed = list(complete(model_server, stream=True))
    assert streamed[-1].choices[0].finish_reason == "stop"  # ...but LiteLLM makes one up

    result = agent(model_server)("go")
    assert str(result).strip() == "one two" and result.stop_reason == "end_turn"  # so Strands can't tell


def test_half_stream_ended_with_done_says_done_but_never_finishes(model_server):
    model_server.queue(Reply.half_stream("one two three four", words=2, done=True))
    response, events = stream_events(model_server)
    assert response.status == 200 and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["", "one", " two"]
    assert not any(c["choices"][0]["finish_reason"] for c in chunks)


def test_half_a_non_streamed_completion_is_a_connection_error(model_server):
    model_server.queue(Reply.half_stream("one two three four", words=2))
    with pytest.raises(litellm.InternalServerError, match="Connection error"):
        complete(model_server, stream=False)


@pytest.mark.parametrize("hostile", [Reply.empty_body, Reply.not_json], ids=["empty_body", "not_json"])
def test_a_200_without_events_is_an_empty_finished_reply_when_streaming(model_server, hostile):
    model_server.queue(hostile())
    result = agent(model_server)("go")
    assert result.message["content"] == [] and result.stop_reason == "end_turn"  # no error: the caller must look


def test_an_empty_body_without_stream_is_a_server_error(model_server):
    model_server.queue(Reply.empty_body())
    with pytest.raises(litellm.InternalServerError, match="Expecting value"):
        complete(model_server, stream=False)


def test_a_page_that_is_not_json_without_stream_is_a_server_error(model_server):
    model_server.queue(Reply.not_json())
    with pytest.raises(litellm.InternalServerError, match="Empty or invalid response"):
        complete(model_server, stream=False)


def test_no_content_is_a_finished_reply_with_nothing_in_it(model_server):
    model_server.queue(Reply.no_content(), Reply.no_content())
    result = agent(model_server)("go")
    assert result.message["content"] == [] and result.stop_reason == "end_turn"
    said = complete(model_server, stream=False)
    assert said.choices[0].message.content in ("", None) and said.choices[0].finish_reason == "stop"
    assert not said.choices[0].message.tool_calls


def test_stall_before_first_byte_then_the_default_answer(model_server):
    model_server.queue(Reply.stall_before_first_byte(0.4))
    deltas = Deltas()
    result = agent(model_server, deltas)("hello")
    assert deltas.times[0] >= 0.4 - 0.01 and str(result).strip() == "Noted: hello"


def test_stall_mid_stream_pauses_after_some_words_then_finishes(model_server):
    model_server.queue(Reply.stall_mid_stream("a b c d e", after_words=2, seconds=0.4))
    deltas = Deltas()
    result = agent(model_server, deltas)("go")
    assert deltas.texts == ["a", " b", " c", " d", " e"] and result.stop_reason == "end_turn"
    gaps = [later - earlier for earlier, later in pairwise(deltas.times)]
    assert gaps[1] >= 0.35 and max(gaps[:1] + gaps[2:]) < 0.3


def in_background(call: Any) -> tuple[threading.Thread, list[Exception]]:
    """Run a client call on a thread, keeping what it raised (a stopped server drops its connection)."""
    raised: list[Exception] = []

    def run() -> None:
        try:
            call()
        except Exception as error:  # noqa: BLE001 (what the client saw is the point)
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


def wait_for_request(server: ModelServer) -> None:
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_stall_blocks_neither_other_requests_nor_stop():
    with ModelServer() as server:
        server.queue(Reply.stall_before_first_byte(30))
        stalled, raised = in_background(lambda: agent(server)("I will wait"))
        wait_for_request(server)

        started = time.monotonic()
        assert str(agent(server)("meanwhile")).strip() == "Noted: meanwhile"
        server.stop()
        stalled.join(5)
        assert time.monotonic() - started < 2 and not stalled.is_alive()
    assert isinstance(raised[0], litellm.InternalServerError)  # the stalled request's connection closed


def test_stop_returns_promptly_during_a_slow_stream():
    with ModelServer() as server:
        server.queue(Reply.slow("a slow reply that would take a minute", seconds=60))
        streaming, raised = in_background(lambda: list(complete(server, stream=True)))
        wait_for_request(server)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1
        streaming.join(5)
    assert raised and not streaming.is_alive()  # the client saw the stream cut, not a minute of waiting


# ---- default answers: from the request alone -------------------------------------------------------


def test_the_summariser_carries_every_user_statement_through_two_summaries(model_server):
    manager = SummarizingConversationManager(summary_ratio=0.8, preserve_recent_messages=2)
    chat = agent(model_server, conversation_manager=manager)
    for said in ["Hey, my name is Arindam.", "I'm planning a trip to Japan in April.", "I love ramen."]:
        chat(said)
    manager.reduce_context(chat)
    first = model_server.requests[-1]
    assert "conversation summarizer" in json.dumps(first["messages"][0])
    summary = chat.messages[0]["content"][0]["text"]
    assert summary.startswith("## Conversation Summary\n")
    assert "* The user said: Hey, my name is Arindam." in summary
    assert "* The user said: I'm planning a trip to Japan in April." in summary

    for said in ["My sister lives in Osaka, Japan.", "I work as a nurse."]:
        chat(said)
    manager.reduce_context(chat)
    summary = chat.messages[0]["content"][0]["text"]
    for said in ["Hey, my name is Arindam.", "I'm planning a trip to Japan in April.", "I love ramen.",
                 "My sister lives in Osaka, Japan."]:
        assert f"* The user said: {said}" in summary  # the first summary's statements, carried again

    assert str(chat("What is my name?")).strip() == "Yes, your name is Arindam."
    about_japan = str(chat("What did we discuss about Japan?"))
    assert "I'm planning a trip to Japan in April." in about_japan and "My sister lives in Osaka, Japan." in about_japan
    assert "ramen" not in about_japan and "nurse" not in about_japan


def test_remember_is_called_with_the_users_sentence_then_acknowledged(model_server):
    remembered: list[str] = []

    @tool(name="remember")
    def remember_fact(fact: str) -> str:
        """Remember a fact about the user."""
        remembered.append(fact)
        return "remembered"

    chat = agent(model_server, tools=[remember_fact, forget])
    assert str(chat("Hey, my name is Arindam.")).strip() == "I'll remember that."
    assert remembered == ["Hey, my name is Arindam."]

    asked = len(model_server.requests)
    assert str(chat("What is my name?")).strip() == "Yes, your name is Arindam."
    assert len(model_server.requests) == asked + 1  # a question: no tool call, one request
    assert remembered == ["Hey, my name is Arindam."]


def test_remember_is_only_called_when_offered(model_server):
    assert str(agent(model_server)("I love ramen.")).strip() == "Noted: I love ramen."


def test_forget_is_called_with_the_id_of_the_matching_remembered_fact(model_server):
    forgotten: list[str] = []

    @tool(name="forget")
    def forget_fact(fact_id: str) -> str:
        """Forget a remembered fact."""
        forgotten.append(fact_id)
        return "forgotten"

    chat = agent(model_server, tools=[remember, forget_fact], system_prompt=MEMORY)
    assert str(chat("Please forget that I like tea.")).strip() == "I've forgotten that."
    chat("Forget my name.")
    assert forgotten == ["f_77aa01", "f_3fa9c2"]


def test_remembered_facts_in_the_system_prompt_answer_questions(model_server):
    chat = agent(model_server, tools=[remember, forget], system_prompt=MEMORY)
    assert str(chat("Do you remember my name?")).strip() == "Yes, your name is Arindam."
    known = str(chat("What do you know about me?"))
    assert "My name is Arindam." in known and "I like tea." in known
    assert str(agent(model_server)("What is my name?")).strip() == "I don't know your name yet."


# ---- the log --------------------------------------------------------------------------------------


def test_one_log_line_per_request_when_asked_and_none_by_default(model_server, capsys):
    agent(model_server)("hello")
    assert capsys.readouterr().out == ""

    with ModelServer(log=True) as server:
        agent(server, tools=[remember, forget])("I love ramen.")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert "1 messages" in lines[0] and "tools: remember, forget" in lines[0] and " stream " in lines[0]
    assert lines[0].endswith("-> tool remember") and lines[1].endswith("-> text 3 words")


@pytest.mark.slow
def test_make_model_serves_from_the_command_line_and_logs_each_request():
    command = [sys.executable, "tools/model_server.py", "--port", "0", "--word-delay", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None  # stdout=PIPE
    try:
        banner = process.stdout.readline()
        base_url = banner.split(" on ", 1)[1].split()[0]
        said = litellm.completion(model="openai/test-model", api_base=base_url, api_key="test", max_retries=0,
                                  messages=[{"role": "user", "content": "hello"}])
        assert said.choices[0].message.content == "Noted: hello"
        assert process.stdout.readline().rstrip().endswith("1 messages  tools: none  no stream  -> text 2 words")
    finally:
        process.terminate()
        process.wait(5)


@pytest.mark.slow
def test_a_long_turn_streams_all_along(model_server):
    """Text keeps coming through the whole turn, never a long silence (an idle timeout would not
    fire). That no cap on a call's total time comes before the function's timeout is shown with a
    30 s answer in tests/api/test_deadlines.py."""
    text = " ".join(f"word{n}" for n in range(90))
    model_server.queue(Reply.slow(text, seconds=8))
    deltas = Deltas()
    result = agent(model_server, deltas)("tell me a long story")
    assert str(result).strip() == text and 7.5 <= deltas.times[-1] < 12
    gaps = [later - earlier for earlier, later in pairwise(deltas.times)]
    assert max(gaps) < 1.5  # never silent for long: an idle timeout would not fire
