"""The model: a Strands LiteLLMModel built from settings, once per container.

LiteLLM reaches Bedrock, OpenAI, Nebius or any OpenAI-compatible server from one model
string. The API key comes from MODEL_API_KEY (local runs) or from Secrets Manager through
Powertools Parameters (deployed), fetched once per container and never logged.
"""

import json
import logging
import os

# LiteLLM downloads a price map from the internet at import unless told otherwise; inside a
# VPC without egress that stalls every cold start. The template sets it too; this is the net.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402  (must follow the environment default above)
from strands.models.litellm import LiteLLMModel  # noqa: E402
from strands.types.exceptions import ModelThrottledException  # noqa: E402

from .errors import ModelNotConfigured  # noqa: E402
from .settings import Settings  # noqa: E402

logger = logging.getLogger(__name__)

# LiteLLM prints help banners to stdout on errors; Lambda logs are JSON lines.
litellm.suppress_debug_info = True

# One retry layer, not three: the provider SDK's own retries would wait out Retry-After
# (up to a minute) inside API Gateway's 30 s. A throttled turn answers 429 with Retry-After
# and the client retries, with an Idempotency-Key if it wants exactly-once.
PROVIDER_MAX_RETRIES = 0
# Leave API Gateway (30 s) room to carry our own error response back.
DEFAULT_TIMEOUT_SECONDS = 25
DEFAULT_RETRY_AFTER_SECONDS = 5

MISSING_MODEL_HINT = (
    "No model is configured. Set MODEL_ID (a LiteLLM model string such as "
    "bedrock/us.amazon.nova-2-lite-v1:0, openai/gpt-4o-mini or nebius/deepseek-ai/DeepSeek-V3-0324) "
    "and, for providers that need one, MODEL_API_KEY (or MODEL_API_KEY_SECRET_ARN); "
    "MODEL_API_BASE points at any OpenAI-compatible server."
)


def read_api_key(settings: Settings, force_fetch: bool = False) -> str | None:
    """The provider's API key: from the environment, or from Secrets Manager (a plain string,
    or a JSON object with an ``api_key`` field)."""
    if settings.model_api_key:
        return settings.model_api_key
    if not settings.model_api_key_secret_arn:
        return None
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(settings.model_api_key_secret_arn, max_age=3600, force_fetch=force_fetch)
    if isinstance(secret, str) and secret.lstrip().startswith("{"):
        return json.loads(secret).get("api_key")
    return secret if isinstance(secret, str) else None


class ModelProvider:
    """Builds the model once and hands the same one to every request.

    The build is tried at init (where Lambda gives full CPU); if it fails there (a secret not
    reachable yet), the container still starts and the next request tries again.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._model: LiteLLMModel | None = None
        self._refetch_key = False

    @property
    def configured(self) -> bool:
        return bool(self._settings.model_id)

    def warm_up(self) -> None:
        if not self.configured:
            return
        try:
            self.get()
        except Exception:  # the request path retries and reports it properly
            logger.warning("model set-up failed at init; will retry on the first request", exc_info=True)

    def reset(self) -> None:
        """Forget the model and its key: the next request reads the current key (after a
        SnapStart restore, or after the provider refused the key because it was rotated)."""
        self._model = None
        self._refetch_key = True

    def get(self) -> LiteLLMModel:
        if not self.configured:
            raise ModelNotConfigured(MISSING_MODEL_HINT)
        if self._model is None:
            try:
                self._model = self._build()
            except Exception:
                logger.exception("could not set up the model")
                raise ModelNotConfigured(
                    "The model's API key could not be read (MODEL_API_KEY_SECRET_ARN); retry later."
                ) from None
        return self._model

    def _build(self) -> LiteLLMModel:
        settings = self._settings
        client_args: dict = {"max_retries": PROVIDER_MAX_RETRIES, "timeout": DEFAULT_TIMEOUT_SECONDS}
        api_key = read_api_key(settings, force_fetch=self._refetch_key)
        self._refetch_key = False
        if api_key:
            client_args["api_key"] = api_key
        if settings.model_api_base:
            client_args["api_base"] = settings.model_api_base
        return LiteLLMModel(client_args=client_args, model_id=settings.model_id, params=dict(settings.model_params))


def is_rejected_key(error: Exception) -> bool:
    return isinstance(error, litellm.AuthenticationError)


def is_throttling(error: Exception) -> bool:
    return isinstance(error, (litellm.RateLimitError, ModelThrottledException))


def retry_after_of(error: Exception) -> int:
    """The provider's Retry-After in whole seconds, or a default when it sent none we can read."""
    headers = getattr(error, "litellm_response_headers", None) or {}
    try:
        return max(1, int(float(headers.get("retry-after", DEFAULT_RETRY_AFTER_SECONDS))))
    except (TypeError, ValueError):  # an HTTP-date: not worth parsing for a hint
        return DEFAULT_RETRY_AFTER_SECONDS
