"""SnapStart priming: LiteLLM's request path run once before the snapshot is taken."""

import asyncio

import httpx
import litellm
import openai

# A chat completion as an OpenAI-compatible server answers it.
_CANNED = {"id": "prime", "object": "chat.completion", "created": 0, "model": "prime",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def prime() -> None:
    """Run LiteLLM's request path once, against a canned answer held in memory (httpx's
    MockTransport: no socket is opened). Its first call imports some 700 modules (the openai SDK's
    resources, LiteLLM's MCP handling) and takes about two seconds; done before a SnapStart
    snapshot, restored environments start with them loaded instead of a user's first turn paying."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=_CANNED))
    client = openai.AsyncOpenAI(api_key="prime", base_url="http://prime.invalid/v1",
                                http_client=httpx.AsyncClient(transport=transport))
    tool = {"type": "function", "function": {"name": "prime", "description": "prime",
                                             "parameters": {"type": "object", "properties": {}}}}

    async def call() -> None:
        await litellm.acompletion(model="openai/prime", messages=[{"role": "user", "content": "hi"}], tools=[tool],
                                  client=client, api_key="prime", max_retries=0)
        await client.close()

    asyncio.run(call())
