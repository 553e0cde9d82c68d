"""Each private LiteLLM or Strands touchpoint in agent/model/compat.py, checked against the
installed libraries: an upgrade that moves or reshapes one fails here, naming it, instead of
quietly leaking clients or storing cut replies.

When one fails: read the installed library's code, carry the change over to compat.py, and only
then update the expectation here.
"""

import asyncio
import hashlib
import inspect
import sys
from importlib.metadata import version
from typing import Any

import litellm
import pytest
from model_server import ModelServer, Reply
from strands.models.litellm import LiteLLMModel

from agent.model import compat

# Strands' streaming loop that compat.ProviderFinishReason restates (strands-agents 1.62.0).
STRANDS_STREAMING_LOOP = "276b60479aacc9ef"
STRANDS_HELPERS = {
    "_process_choice_content": "(self, choice: Any, data_type: str | None, tool_calls: dict[int, list[typing.Any]], "
                               "is_streaming: bool = True)",
    "_process_tool_calls": "(self, tool_calls: dict[int, list[typing.Any]])",
}


def where(touchpoint: str) -> str:
    return (f"{touchpoint} moved or changed shape (litellm {version('litellm')}, strands-agents "
            f"{version('strands-agents')}): see agent/model/compat.py")


async def completion(server: ModelServer, stream: bool = False) -> Any:
    return await litellm.acompletion(model="openai/test-model", api_base=server.base_url, api_key="test",
                                     max_retries=0, stream=stream, messages=[{"role": "user", "content": "hi"}])


def test_litellm_client_cache_dicts_hold_the_clients_of_each_event_loop(model_server):
    async def call_then_close() -> tuple[list[str], list[str]]:
        await completion(model_server)
        cached, _ = compat.client_cache_dicts()
        suffix = compat.client_key_suffix(asyncio.get_running_loop())
        made = [k for k in cached if isinstance(k, str) and k.endswith(suffix)]
        await compat.close_clients_of_running_loop()
        return made, [k for k in cached if isinstance(k, str) and k.endswith(suffix)]

    try:
        cached, expiries = compat.client_cache_dicts()
    except AttributeError as error:
        pytest.fail(f"{where('litellm.in_memory_llm_clients_cache.cache_dict / ttl_dict')}: {error}")
    assert isinstance(cached, dict) and isinstance(expiries, dict), where("LiteLLM's client cache dicts")
    made, left = asyncio.run(call_then_close())
    assert made, where("LiteLLM's client cache keys (ending in -<id of the event loop>)")
    assert left == [], where("LiteLLM's client cache (a client outlived close_clients_of_running_loop)")


def test_litellm_client_cache_can_be_flushed_whole(model_server):
    asyncio.run(completion(model_server))
    try:
        compat.forget_all_clients()
    except AttributeError as error:
        pytest.fail(f"{where('litellm.in_memory_llm_clients_cache.flush_cache')}: {error}")
    assert compat.client_cache_dicts()[0] == {}, where("litellm.in_memory_llm_clients_cache.flush_cache")


def test_litellm_global_logging_worker_flushes_on_the_running_loop(model_server):
    worker = sys.modules["litellm.litellm_core_utils.logging_worker"].GLOBAL_LOGGING_WORKER
    assert inspect.iscoroutinefunction(worker.flush), where("GLOBAL_LOGGING_WORKER.flush")

    async def call_then_flush() -> None:
        await completion(model_server)
        await asyncio.wait_for(compat.flush_background_work(1.0), 2.0)

    asyncio.run(call_then_flush())


@pytest.mark.parametrize("cut", [True, False], ids=["cut with [DONE]", "finished"])
def test_litellm_stream_wrapper_says_whether_the_provider_finished(model_server, cut):
    if cut:
        model_server.queue(Reply.half_stream("one two three", words=2, done=True))

    async def read() -> tuple[Any, list[Any]]:
        stream = await completion(model_server, stream=True)
        return stream, [chunk async for chunk in stream]

    stream, chunks = asyncio.run(read())
    finish_reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish_reasons == ["stop"]  # what LiteLLM reports either way: why compat reads its state
    try:
        finished = compat.provider_finished(stream)
    except AttributeError as error:
        pytest.fail(f"{where('CustomStreamWrapper.received_finish_reason / intermittent_finish_reason')}: {error}")
    assert finished is not cut, where("CustomStreamWrapper.received_finish_reason")


def test_strands_streaming_loop_is_the_one_compat_restates():
    source = inspect.getsource(LiteLLMModel._handle_streaming_response)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == STRANDS_STREAMING_LOOP, \
        where("strands LiteLLMModel._handle_streaming_response (restated in ProviderFinishReason)")
    for name, signature in STRANDS_HELPERS.items():
        method = getattr(LiteLLMModel, name, None)
        assert method is not None and str(inspect.signature(method)).startswith(signature), \
            where(f"strands LiteLLMModel.{name}")


def test_strands_find_valid_trim_point_skips_tool_results():
    messages: list[Any] = [
        {"role": "user", "content": [{"text": "what time is it?"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "current_time", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "noon"}]}}]},
        {"role": "assistant", "content": [{"text": "Noon."}]},
        {"role": "user", "content": [{"text": "thanks"}]},
    ]
    assert compat.cut_point(messages, 1) == 4, where("strands find_valid_trim_point")
    assert compat.cut_point(messages, 5) == 5, where("strands find_valid_trim_point")
