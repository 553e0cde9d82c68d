"""A provider's failure as a domain error whose message is safe to show a client: throttled
(429 with Retry-After), unreachable (saying why), not configured (no AWS credentials), timed out,
or failed; the provider's own words go to the log."""

import logging
import socket
from urllib.parse import urlsplit

import httpx
import litellm
import openai
from botocore.exceptions import NoCredentialsError
from strands.types.exceptions import ModelThrottledException

from ..deadline import Deadline
from ..errors import AgentError, ModelError, ModelNotConfigured, ModelThrottled, ModelUnreachable, TurnTimedOut
from .credentials import no_aws_credentials
from .turn_model import TIMED_OUT

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 5
# What the HTTP client raises for a MODEL_API_BASE it cannot use (httpx's own transport, or the
# aiohttp one LiteLLM puts under it).
BAD_URL = (httpx.UnsupportedProtocol, httpx.InvalidURL)


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
    if any(isinstance(cause, NoCredentialsError) for cause in _causes(error)):
        return ModelNotConfigured(no_aws_credentials())
    if is_unreachable(error):
        return ModelUnreachable(f"{why_unreachable(error, endpoint)}; nothing was stored.")
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
    return any(isinstance(cause, (ConnectionRefusedError, socket.gaierror, httpx.ConnectError,
                                  *BAD_URL)) for cause in _causes(error))


def why_unreachable(error: BaseException, endpoint: str | None) -> str:
    """Why the provider could not be reached, as the twin's start-up check says it; the endpoint
    is named only when given (locally)."""
    causes = _causes(error)
    parts = urlsplit(endpoint) if endpoint and "://" in endpoint else None
    if any(isinstance(cause, BAD_URL) for cause in causes):
        if endpoint and "://" not in endpoint:
            return f"MODEL_API_BASE {endpoint!r} has no scheme — add http:// (http://{endpoint})"
        named = f" {endpoint!r}" if endpoint else ""
        return f"MODEL_API_BASE{named} is not a usable URL — it must start with http:// or https://"
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        host = f" {parts.hostname!r}" if parts and parts.hostname else ""
        return f"The model's host{host} does not resolve — check MODEL_API_BASE"
    if parts and parts.hostname and any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"Nothing listens at {parts.hostname}:{port} — start the model server there or fix MODEL_API_BASE"
    where = f" at {endpoint}" if endpoint else ""
    return (f"The model provider could not be reached{where} — check that it is running and that "
            "MODEL_API_BASE / MODEL_ID point at it")


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
