"""The model of one turn: every call's timeout is cut to the time the turn has left, and an
answer that ends without the provider's finish reason is a failure, not a reply."""

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import litellm

from ..deadline import Deadline
from ..errors import ModelError, TurnTimedOut
from .compat import ProviderFinishReason, close_clients_of_running_loop, flush_background_work

logger = logging.getLogger(__name__)

# LiteLLM prints help banners to stdout on errors; Lambda logs are JSON lines. Its warnings are
# about its own bookkeeping (its background logging moving between event loops when Strands makes
# a summary on a loop of its own); the failures that matter are logged by the turn, once.
litellm.suppress_debug_info = True
logging.getLogger("LiteLLM").setLevel(logging.ERROR)

# For LiteLLM's bookkeeping after a call made on a loop of its own (a summary's), before it ends.
SUMMARY_SETTLE_SECONDS = 0.2
TIMED_OUT = "The turn took too long and was cancelled; nothing was stored. Retry."


class IncompleteReply(ModelError):
    """The provider's answer ended without saying it was finished (a cut stream, an empty or
    non-JSON body): never stored as a reply."""


class TurnModel(ProviderFinishReason):
    """Strands' LiteLLMModel for one turn (see compat.ProviderFinishReason for its streams)."""

    def __init__(self, deadline: Deadline, timeout: float, home_loop: asyncio.AbstractEventLoop | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline
        self.timeout = timeout
        self.home_loop = home_loop  # the container's event loop, which turns run on
        self.called_elsewhere = False  # a call ran on another loop: see ContainerLoop.after_turn

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        seconds = timeout_tier(self.deadline.cap(self.timeout))
        if seconds <= 0:
            raise TurnTimedOut(TIMED_OUT)
        self.client_args["timeout"] = seconds
        try:
            async for event in super().stream(*args, **kwargs):
                yield event
        except litellm.Timeout as error:
            if seconds < self.timeout:  # cut to the time the turn had left: the turn ran out of it
                raise TurnTimedOut(TIMED_OUT) from error
            raise
        finally:
            if self.home_loop is not None and asyncio.get_running_loop() is not self.home_loop:
                # A loop that ends with this call (a summary's): nothing of LiteLLM's may stay on it.
                self.called_elsewhere = True
                await flush_background_work(SUMMARY_SETTLE_SECONDS)
                await close_clients_of_running_loop()

    def format_chunk(self, event: dict[str, Any], **kwargs: Any) -> Any:
        # Strands reads a missing finish reason as "end_turn"; a provider that hangs up mid-answer,
        # or answers 200 with an empty or non-JSON body, ends exactly that way.
        if event.get("chunk_type") == "message_stop" and not event.get("data"):
            raise IncompleteReply("The model's answer was cut off before it finished; nothing was stored. Retry.")
        return super().format_chunk(event, **kwargs)


def timeout_tier(seconds: float) -> float:
    """``seconds`` rounded down to a whole second (to 5 s above a minute). LiteLLM keeps one HTTP
    client, with its open connections, per distinct timeout: the exact time left would cost a new
    client and a new connection every turn. The turn's own deadline still ends it exactly."""
    if seconds >= 60:
        return float(int(seconds // 5) * 5)
    return float(int(seconds)) if seconds >= 1 else max(0.0, round(seconds, 1))
