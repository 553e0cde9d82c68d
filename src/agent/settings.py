"""Settings: one immutable object, read from the environment once per container."""

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful assistant. Keep your answers concise. "
    "Use what the user told you earlier in this conversation."
)


@dataclass(frozen=True)
class Settings:
    # Model (LiteLLM model string, e.g. bedrock/..., openai/..., nebius/...)
    model_id: str | None = None
    model_api_base: str | None = None
    model_api_key: str | None = field(default=None, repr=False)
    model_api_key_secret_arn: str | None = None
    model_params: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # Sessions: S3 when session_bucket is set, files under session_dir otherwise
    session_bucket: str | None = None
    session_prefix: str = "sessions"
    session_dir: str = ".sessions"
    history_window: int = 40
    max_message_chars: int = 16000
    # A turn holds its session's lease this long at most (a crashed holder blocks no longer)
    lease_seconds: int = 90
    # A session idle this long is deleted whole by the expiry sweep
    session_ttl_days: int = 30
    # Idempotency records: DynamoDB when the table is set, files under session_dir otherwise
    idempotency_table: str | None = None
    idempotency_ttl_seconds: int = 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        """Build settings from environment variables; a malformed value fails loudly at init."""

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: int, minimum: int = 1) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
            if value < minimum:
                raise ValueError(f"{name} must be at least {minimum}, got {value}")
            return value

        params_raw = text("MODEL_PARAMS")
        params = json.loads(params_raw) if params_raw else {}
        if not isinstance(params, dict):
            raise ValueError("MODEL_PARAMS must be a JSON object, e.g. {\"temperature\": 0.3}")

        return cls(
            model_id=text("MODEL_ID"),
            model_api_base=text("MODEL_API_BASE"),
            model_api_key=text("MODEL_API_KEY"),
            model_api_key_secret_arn=text("MODEL_API_KEY_SECRET_ARN"),
            model_params=params,
            system_prompt=text("SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
            session_bucket=text("SESSION_BUCKET"),
            session_prefix=(text("SESSION_PREFIX") or "sessions").strip("/"),
            session_dir=text("SESSION_DIR") or ".sessions",
            history_window=number("HISTORY_WINDOW", 40, minimum=2),
            max_message_chars=number("MAX_MESSAGE_CHARS", 16000),
            lease_seconds=number("SESSION_LEASE_SECONDS", 90),
            session_ttl_days=number("SESSION_TTL_DAYS", 30),
            idempotency_table=text("IDEMPOTENCY_TABLE"),
            idempotency_ttl_seconds=number("IDEMPOTENCY_TTL_SECONDS", 3600),
        )
