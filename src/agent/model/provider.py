"""The provider: the model's settings checked once, its API key read once per container (from
MODEL_API_KEY locally, from Secrets Manager deployed, never logged), and a light model object
(tens of microseconds) made for each turn, bound to the turn's deadline."""

import asyncio
import json
import logging
from typing import Any

import litellm

from ..aws_clients import AwsClients
from ..deadline import Deadline
from ..errors import ModelNotConfigured
from ..settings import Settings
from .credentials import LOCAL_SERVER_KEY, is_local_server, missing_aws_credentials, missing_key
from .params import check_model_params
from .turn_model import TurnModel

logger = logging.getLogger(__name__)
# The one line a model set-up problem gets at init. The twin prints the same problem on its own
# model line, after its ready line, and quiets this logger so that it is said once.
SETUP_LOGGER = "agent.model.setup"
setup_logger = logging.getLogger(SETUP_LOGGER)

# One retry layer, not three: the provider SDK's own retries would wait out Retry-After inside
# the invocation. A throttled turn answers 429 with Retry-After, and the client retries (with an
# Idempotency-Key if it wants exactly-once).
PROVIDER_MAX_RETRIES = 0
INIT_KEY_READ_SECONDS = 3.0

MISSING_MODEL_HINT = (
    "No model is configured. Set MODEL_ID (a LiteLLM model string such as "
    "bedrock/us.amazon.nova-2-lite-v1:0, openai/gpt-4o-mini or nebius/deepseek-ai/DeepSeek-V3-0324) "
    "and, for providers that need one, MODEL_API_KEY (or MODEL_API_KEY_SECRET_ARN); "
    "MODEL_API_BASE points at any OpenAI-compatible server."
)


class ModelProvider:
    """Checks the model's settings at init, reads its key once, and makes each turn's model.

    MODEL_PARAMS that LiteLLM would not take stop the container's start (a SettingsError, as any
    malformed setting). A key that cannot be read at init (a secret not reachable yet) does not:
    the next request tries again.
    """

    def __init__(self, settings: Settings, clients: AwsClients | None = None) -> None:
        self._settings = settings
        self._clients = clients
        self._client_args: dict[str, Any] | None = None
        if settings.model_id and settings.model_params:
            check_model_params(settings.model_id, settings.model_params)

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

    def problem(self) -> str | None:
        """What stops every turn, in one line, as far as init can tell without the network: a
        MODEL_ID LiteLLM cannot route, a missing key, no AWS credentials for Bedrock."""
        try:
            self.check()
        except ModelNotConfigured as error:
            return error.message
        model_id, settings = self._settings.model_id or "", self._settings
        keyless = not (settings.model_api_key or settings.model_api_key_secret_arn)
        return (keyless and missing_key(model_id, None, settings.model_api_base)) or missing_aws_credentials(model_id)

    def warm_up(self) -> None:
        """At init, where Lambda gives full CPU: name a set-up problem once (no retry fixes a
        setting), and read the key (briefly: init has a time limit of its own, and a first
        request tries again)."""
        if not self.configured:
            return
        problem = self.problem()
        if problem:
            setup_logger.warning("model: %s", problem)
            return
        try:
            self._arguments(Deadline.after(INIT_KEY_READ_SECONDS))
        except Exception:  # logged where it failed; the request path reports it properly
            logger.warning("the model's API key could not be read at init; the first request tries again")

    def reset(self) -> None:
        """Forget the key: the next turn reads the current one (after a SnapStart restore, or
        after the provider refused the key because it was rotated)."""
        self._client_args = None

    def for_turn(self, deadline: Deadline, streaming: bool = True,
                 home_loop: asyncio.AbstractEventLoop | None = None) -> TurnModel:
        """``streaming``: the text is wanted as it is written (WebSocket turns); a turn answered
        whole asks for the whole answer at once. Either way a cut or missing finish reason fails
        the turn. ``home_loop``: the loop turns run on; calls made on any other loop close their
        clients."""
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
            api_key = api_key or self._keyless()
            if api_key:
                arguments["api_key"] = api_key
            if self._settings.model_api_base:
                arguments["api_base"] = self._settings.model_api_base
            self._client_args = arguments
        return self._client_args

    def _keyless(self) -> str | None:
        """No key is set: a local server takes any (LiteLLM's OpenAI client insists on one); a
        hosted provider that needs one is named, before a call that could only fail."""
        model_id, base = self._settings.model_id or "", self._settings.model_api_base
        if is_local_server(base):
            return LOCAL_SERVER_KEY
        missing = missing_key(model_id, None, base)
        if missing:
            raise ModelNotConfigured(missing)
        return None

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
