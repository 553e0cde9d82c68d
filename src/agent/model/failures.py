"""A provider's failure as a domain error whose message is safe to show a client: throttled
(429 with Retry-After), unreachable, timed out, or failed; the provider's own words go to the log."""

import logging
import socket

import httpx
import litellm
import openai
from strands.types.exceptions import ModelThrottledException

from ..deadline import Deadline
from ..errors import AgentError, ModelError, ModelThrottled, ModelUnreachable, TurnTimedOut
from .turn_model import TIMED_OUT

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 5


def as_model_failure(error: BaseException, deadline: Deadline, endpoint: str | None) -> AgentError:
    """``error`` as a domain error. ``endpoint`` is named in the message only for local runs (the
    deployed API says no more than that the provider could not be reached)."""
    known = _domain_error_in(error)
    if known is not None:
        return known
    if is_throttling(error):
        return ModelThrottled("The model provider is rate limiting requests; retry later.",
                              retry_after=retry_after_of(error))
    if isinstance(error, (litellm.Timeout, openai.APITimeoutError, TimeoutError)) and deadline.expired():
        return TurnTimedOut(TIMED_OUT)
    if is_unreachable(error):
        where = f" at {endpoint}" if endpoint else ""
        return ModelUnreachable(f"The model provider could not be reached{where}; nothing was stored. "
                                "Check that it is running and that MODEL_API_BASE / MODEL_ID point at it.")
    # The provider's own message can quote request details; it goes to the log, not the client.
    logger.error("model call failed", exc_info=error)
    return ModelError("The model provider failed to answer; the message was not stored. Retry later.")


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain and len(chain) < 16:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _domain_error_in(error: BaseException) -> AgentError | None:
    """Our own error raised inside Strands' event loop (it may wrap what a model raises)."""
    return next((cause for cause in _causes(error) if isinstance(cause, AgentError)), None)


def is_rejected_key(error: BaseException) -> bool:
    return any(isinstance(cause, litellm.AuthenticationError) for cause in _causes(error))


def is_throttling(error: BaseException) -> bool:
    return any(isinstance(cause, (litellm.RateLimitError, ModelThrottledException)) for cause in _causes(error))


def is_unreachable(error: BaseException) -> bool:
    """Connection refused, or a name that does not resolve (LiteLLM reports both as a 500); not a
    connection that broke while the answer was coming, which is the provider failing."""
    return any(isinstance(cause, (ConnectionRefusedError, socket.gaierror, httpx.ConnectError))
               for cause in _causes(error))


def retry_after_of(error: BaseException) -> int:
    """The provider's Retry-After in whole seconds, or a default when it sent none we can read."""
    for cause in _causes(error):
        headers = getattr(cause, "litellm_response_headers", None)
        if headers:
            try:
                return max(1, int(float(headers.get("retry-after", DEFAULT_RETRY_AFTER_SECONDS))))
            except (TypeError, ValueError):  # an HTTP-date: not worth parsing for a hint
                break
    return DEFAULT_RETRY_AFTER_SECONDS
