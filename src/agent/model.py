"""The model: LiteLLM behind Strands' LiteLLMModel, configured once per container.

LiteLLM reaches Bedrock, OpenAI, Nebius or any OpenAI-compatible server from one model string.
The API key comes from MODEL_API_KEY (local runs) or from Secrets Manager (deployed), read once
per container and never logged. Each turn gets its own light model object (tens of
microseconds) bound to the turn's deadline, so no call outlives the invocation.
"""

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncGenerator
from typing import Any

# LiteLLM downloads a price map from the internet at import unless told otherwise; inside a
# VPC without egress that stalls every cold start. The template sets it too; this is the net.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402
import litellm  # noqa: E402  (must follow the environment default above)
import openai  # noqa: E402
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER  # noqa: E402
from strands.models.litellm import LiteLLMModel  # noqa: E402
from strands.types.exceptions import ModelThrottledException  # noqa: E402

from .aws_clients import AwsClients  # noqa: E402
from .deadline import Deadline  # noqa: E402
from .errors import AgentError, ModelError, ModelNotConfigured, ModelThrottled, ModelUnreachable, TurnTimedOut  # noqa: E402
from .settings import Settings  # noqa: E402

logger = logging.getLogger(__name__)

# LiteLLM prints help banners to stdout on errors; Lambda logs are JSON lines. Its warnings are
# about its own bookkeeping (its background logging moving between event loops when Strands makes
# a summary on a loop of its own); the failures that matter are logged here, once.
litellm.suppress_debug_info = True
logging.getLogger("LiteLLM").setLevel(logging.ERROR)

# One retry layer, not three: the provider SDK's own retries would wait out Retry-After inside
# the invocation. A throttled turn answers 429 with Retry-After, and the client retries (with an
# Idempotency-Key if it wants exactly-once).
PROVIDER_MAX_RETRIES = 0
DEFAULT_RETRY_AFTER_SECONDS = 5
INIT_KEY_READ_SECONDS = 3.0
# For LiteLLM's bookkeeping after a call made on a loop of its own (a summary's), before it ends.
SUMMARY_SETTLE_SECONDS = 0.2
TIMED_OUT = "The turn took too long and was cancelled; nothing was stored. Retry."

MISSING_MODEL_HINT = (
    "No model is configured. Set MODEL_ID (a LiteLLM model string such as "
    "bedrock/us.amazon.nova-2-lite-v1:0, openai/gpt-4o-mini or nebius/deepseek-ai/DeepSeek-V3-0324) "
    "and, for providers that need one, MODEL_API_KEY (or MODEL_API_KEY_SECRET_ARN); "
    "MODEL_API_BASE points at any OpenAI-compatible server."
)


class IncompleteReply(ModelError):
    """The provider's answer ended without saying it was finished (a cut stream, an empty or
    non-JSON body): never stored as a reply."""


class TurnModel(LiteLLMModel):
    """Strands' LiteLLMModel for one turn: every call's timeout is cut to the time the turn has
    left, and an answer that ends without a finish reason is a failure, not a reply."""

    def __init__(self, deadline: Deadline, timeout: float, home_loop: asyncio.AbstractEventLoop | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline
        self.timeout = timeout
        self.home_loop = home_loop  # the container's event loop, which turns run on
        self.called_elsewhere = False  # a call ran on another loop: see Conversations._run

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


async def flush_background_work(seconds: float) -> None:
    """Run what LiteLLM queued for after its calls (its success callbacks) on the running loop.
    This also moves LiteLLM's background worker to this loop, whatever the call did."""
    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), seconds)
    except TimeoutError:
        logger.warning("LiteLLM's callbacks did not finish in %.1f s; dropped", seconds)


async def close_clients_of_running_loop() -> None:
    """Close and forget the HTTP clients LiteLLM made for the running event loop.

    LiteLLM keeps a client, with its open connection, per event loop for an hour (up to 200).
    Strands makes each summary on an event loop of its own that ends with the call, so without
    this every summary would leave a client and a connection to the provider behind in a warm
    container. Turns run on the container's loop and keep theirs.
    """
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    cached, expiries = getattr(cache, "cache_dict", None), getattr(cache, "ttl_dict", None)
    if not isinstance(cached, dict) or not isinstance(expiries, dict):
        return  # another LiteLLM: the test of this behaviour says so
    suffix = f"-{id(asyncio.get_running_loop())}"  # LiteLLM's key for a client made on this loop
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


def timeout_tier(seconds: float) -> float:
    """``seconds`` rounded down to a whole second (to 5 s above a minute). LiteLLM keeps one HTTP
    client, with its open connections, per distinct timeout: the exact time left would cost a new
    client and a new connection every turn. The turn's own deadline still ends it exactly."""
    if seconds >= 60:
        return float(int(seconds // 5) * 5)
    return float(int(seconds)) if seconds >= 1 else max(0.0, round(seconds, 1))


class ModelProvider:
    """Checks the model's settings at init, reads its key once, and makes each turn's model.

    A key that cannot be read at init (a secret not reachable yet) does not stop the container:
    the next request tries again.
    """

    def __init__(self, settings: Settings, clients: AwsClients | None = None) -> None:
        self._settings = settings
        self._clients = clients
        self._client_args: dict[str, Any] | None = None

    @property
    def configured(self) -> bool:
        return bool(self._settings.model_id)

    def check(self) -> None:
        """ModelNotConfigured, naming the value, for a MODEL_ID that LiteLLM cannot route."""
        model_id = self._settings.model_id
        if not model_id:
            raise ModelNotConfigured(MISSING_MODEL_HINT)
        try:
            litellm.get_llm_provider(model_id)
        except Exception:
            raise ModelNotConfigured(
                f"MODEL_ID {model_id!r} names no provider LiteLLM knows; use <provider>/<model>, "
                "e.g. openai/gpt-4o-mini, bedrock/us.amazon.nova-2-lite-v1:0 or hosted_vllm/<model>."
            ) from None

    def warm_up(self) -> None:
        """At init, where Lambda gives full CPU: check the settings and read the key (briefly:
        init has a time limit of its own, and a first request tries again)."""
        if not self.configured:
            return
        try:
            self.check()
            self._arguments(Deadline.after(INIT_KEY_READ_SECONDS))
        except Exception as error:  # the request path reports it properly
            logger.warning("model set-up failed at init; will retry on the first request: %s", error)

    def reset(self) -> None:
        """Forget the key: the next turn reads the current one (after a SnapStart restore, or
        after the provider refused the key because it was rotated)."""
        self._client_args = None

    def for_turn(self, deadline: Deadline, streaming: bool = True,
                 home_loop: asyncio.AbstractEventLoop | None = None) -> TurnModel:
        """``streaming``: the text is wanted as it is written (WebSocket turns). A turn answered
        whole asks for the whole answer at once, where a cut or missing finish reason is visible:
        LiteLLM's stream wrapper reports a stream that merely stopped as finished ("stop").
        ``home_loop``: the loop turns run on; calls made on any other loop close their clients."""
        self.check()
        return TurnModel(
            deadline, self._settings.model_timeout, home_loop=home_loop, client_args=dict(self._arguments(deadline)),
            model_id=self._settings.model_id, params=dict(self._settings.model_params), stream=streaming,
        )

    def _arguments(self, deadline: Deadline) -> dict[str, Any]:
        if self._client_args is None:
            arguments: dict[str, Any] = {"max_retries": PROVIDER_MAX_RETRIES}
            try:
                api_key = self._api_key(deadline)
            except Exception:
                logger.exception("could not read the model's API key")
                raise ModelNotConfigured(
                    "The model's API key could not be read (MODEL_API_KEY_SECRET_ARN); retry later."
                ) from None
            if api_key:
                arguments["api_key"] = api_key
            if self._settings.model_api_base:
                arguments["api_base"] = self._settings.model_api_base
            self._client_args = arguments
        return self._client_args

    def _api_key(self, deadline: Deadline) -> str | None:
        """MODEL_API_KEY, or the Secrets Manager secret: a plain string, or JSON with ``api_key``."""
        settings = self._settings
        if settings.model_api_key:
            return settings.model_api_key
        if not settings.model_api_key_secret_arn:
            return None
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        # A provider of its own each time: the key is cached in _client_args, not in Powertools.
        clients = self._clients or AwsClients()
        provider = SecretsProvider(boto3_client=clients.client("secretsmanager", deadline))
        secret = provider.get(settings.model_api_key_secret_arn)
        if isinstance(secret, bytes):
            secret = secret.decode()
        if isinstance(secret, str) and secret.lstrip().startswith("{"):
            return json.loads(secret).get("api_key")
        return secret if isinstance(secret, str) else None


# A chat completion as an OpenAI-compatible server answers it, for prime().
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


def as_model_failure(error: BaseException, deadline: Deadline, endpoint: str | None) -> AgentError:
    """A provider failure as a domain error whose message is safe to show a client.

    ``endpoint`` is named in the message only for local runs (the deployed API says no more than
    that the provider could not be reached).
    """
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
    while error is not None and error not in chain and len(chain) < 16:
        chain.append(error)
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
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
