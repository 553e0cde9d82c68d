"""Every private touchpoint of LiteLLM and Strands, in one place.

Each is something the project needs that neither library offers publicly. An upgrade may move or
reshape any of them; tests/model/test_compat.py checks each one and fails naming it, so the fix
starts here. Written against strands-agents 1.62 and litellm 1.106.

- LiteLLM's client cache (``litellm.in_memory_llm_clients_cache``, its ``cache_dict`` and
  ``ttl_dict``, keys ending in ``-<id of the event loop>``): closing the clients a summary's
  short-lived event loop leaves behind, and dropping every client around a SnapStart snapshot.
- LiteLLM's background logging worker (``GLOBAL_LOGGING_WORKER``): run its queued callbacks before
  a summary's event loop ends.
- LiteLLM's stream wrapper (``CustomStreamWrapper.received_finish_reason`` and
  ``intermittent_finish_reason``): the only place that says whether the provider sent a finish
  reason; the wrapper itself reports "stop" for a stream that merely stopped.
- Strands' streaming loop (``LiteLLMModel._handle_streaming_response``, with the
  ``_process_choice_content`` and ``_process_tool_calls`` it calls): restated here to read the
  stream wrapper above, which Strands keeps to itself.
- Strands' interrupt state (``Agent._interrupt_state``): which tool calls wait for a person's
  approval; Strands persists it with the session but offers no public reader.
- Strands' ``find_valid_trim_point`` (``strands.agent.conversation_manager.compression``, a
  package Strands marks as not public): where the history can be cut without orphaning a tool result.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import litellm
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from strands.agent.conversation_manager.compression.context_compression import find_valid_trim_point
from strands.models.litellm import LiteLLMModel
from strands.types.streaming import StreamEvent

logger = logging.getLogger(__name__)

__all__ = ["ProviderFinishReason", "close_clients_of_running_loop", "cut_point", "flush_background_work",
           "forget_all_clients", "interrupt_state", "provider_finished"]


# ---- LiteLLM's client cache -----------------------------------------------------------------
def client_cache_dicts() -> tuple[dict[Any, Any], dict[Any, Any]]:
    """The dicts behind LiteLLM's client cache: (clients by key, expiry by key)."""
    cache = litellm.in_memory_llm_clients_cache
    return cache.cache_dict, cache.ttl_dict


def client_key_suffix(loop: asyncio.AbstractEventLoop) -> str:
    """How LiteLLM's cache keys end for a client made on ``loop``."""
    return f"-{id(loop)}"


async def close_clients_of_running_loop() -> None:
    """Close and forget the HTTP clients LiteLLM made for the running event loop.

    LiteLLM keeps a client, with its open connection, per event loop for an hour (up to 200).
    Strands makes each summary on an event loop of its own that ends with the call, so without
    this every summary would leave a client and a connection to the provider behind in a warm
    container. Turns run on the container's loop and keep theirs.
    """
    cached, expiries = client_cache_dicts()
    suffix = client_key_suffix(asyncio.get_running_loop())
    for key in [k for k in list(cached) if isinstance(k, str) and k.endswith(suffix)]:
        # Taken out directly: the cache's own removal would queue the client for a later close
        # on this loop, an entry kept (per loop) long after the loop is gone. It is closed here.
        client = cached.pop(key, None)
        expiries.pop(key, None)
        try:
            closing = getattr(client, "close", None) or getattr(client, "aclose", None)
            if closing is not None and asyncio.iscoroutine(result := closing()):
                await result
        except Exception:  # a client that cannot close is left to the garbage collector
            logger.debug("could not close a model client", exc_info=True)


def forget_all_clients() -> None:
    """Drop every cached client (around a SnapStart snapshot: no connection survives a restore)."""
    litellm.in_memory_llm_clients_cache.flush_cache()


# ---- LiteLLM's background logging worker ----------------------------------------------------
async def flush_background_work(seconds: float) -> None:
    """Run what LiteLLM queued for after its calls (its success callbacks) on the running loop.
    This also moves LiteLLM's background worker to this loop, whatever the call did."""
    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), seconds)
    except TimeoutError:
        logger.warning("LiteLLM's callbacks did not finish in %.1f s; dropped", seconds)


# ---- the provider's finish reason in a stream -----------------------------------------------
def provider_finished(stream: Any) -> bool:
    """Whether the provider itself ended ``stream`` (a LiteLLM CustomStreamWrapper) with a finish
    reason, as opposed to the stream just stopping (with or without ``data: [DONE]``)."""
    return (stream.received_finish_reason or stream.intermittent_finish_reason) is not None


class ProviderFinishReason(LiteLLMModel):
    """Strands' LiteLLMModel whose streamed finish reason is the provider's: None (which
    ``format_chunk`` then sees in "message_stop") when the stream stopped without one.

    Strands' streaming loop as of 1.62, with that one change; test_compat compares it with the
    installed Strands' and fails when it changes.
    """

    async def _handle_streaming_response(self, litellm_request: dict[str, Any]) -> AsyncGenerator[StreamEvent, None]:
        response = await litellm.acompletion(**self.client_args, **litellm_request)
        yield self.format_chunk({"chunk_type": "message_start"})

        tool_calls: dict[int, list[Any]] = {}
        data_type: str | None = None
        finish_reason: str | None = None
        async for event in response:
            if not getattr(event, "choices", None):
                continue
            choice = event.choices[0]
            async for updated_data_type, chunk in self._process_choice_content(
                choice, data_type, tool_calls, is_streaming=True
            ):
                data_type = updated_data_type
                yield chunk
            if choice.finish_reason:
                # The one change: LiteLLM's made-up "stop" for a stream that just ended is no finish.
                finish_reason = choice.finish_reason if provider_finished(response) else None
                if data_type:
                    yield self.format_chunk({"chunk_type": "content_stop", "data_type": data_type})
                break

        async for chunk in self._process_tool_calls(tool_calls):
            yield chunk
        yield self.format_chunk({"chunk_type": "message_stop", "data": finish_reason})

        async for event in response:  # only the usage is left to read
            if usage := getattr(event, "usage", None):
                yield self.format_chunk({"chunk_type": "metadata", "data": usage})


# ---- Strands' trim point ---------------------------------------------------------------------
def cut_point(messages: list[Any], start: int) -> int:
    """The first index from ``start`` where the history can be cut and still open as providers
    require: a user message that is not a tool's result (``len(messages)`` if there is none)."""
    return find_valid_trim_point(messages, start)


# ---- Strands' interrupt state ----------------------------------------------------------------
def interrupt_state(agent: Any) -> Any:
    """The agent's interrupt state (``activated``, ``interrupts`` by id, each with its ``reason``
    and ``response``): what approval.py reads to know which calls still wait."""
    return agent._interrupt_state
