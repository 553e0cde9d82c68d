"""Settings: one immutable object, read from the environment once per container.

A malformed value stops the start-up with one line naming the variable and what it expects
(`SettingsError`), rather than a traceback or a silently wrong default.
"""

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful assistant. Keep your answers concise. "
    "Use what the user told you earlier in this conversation."
)
HISTORY_POLICIES = ("summarize", "window")
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what it expects."""


@dataclass(frozen=True)
class Settings:
    # Model (a LiteLLM model string, e.g. bedrock/..., openai/..., nebius/...)
    model_id: str | None = None
    model_api_base: str | None = None
    model_api_key: str | None = field(default=None, repr=False)
    model_api_key_secret_arn: str | None = None
    model_params: Mapping[str, Any] = field(default_factory=dict)
    # Seconds one model call may take; always cut further to the invocation's remaining time.
    model_timeout: int = 300
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # Sessions: S3 when session_bucket is set, files under session_dir otherwise
    session_bucket: str | None = None
    session_prefix: str = "sessions"
    session_dir: str = ".sessions"
    history_window: int = 40
    # What happens to messages that outgrow the window: folded into a summary, or dropped
    history_policy: str = "summarize"
    max_message_chars: int = 16000
    # A turn holds its session's lease this long at most (a crashed holder blocks no longer)
    lease_seconds: int = 90
    # A session idle this long is deleted whole by the expiry sweep
    session_ttl_days: int = 30
    # How long a retried Idempotency-Key replays its first reply
    idempotency_ttl_seconds: int = 3600
    # Facts a caller's agent keeps across sessions (opt-in)
    memory: bool = False
    memory_max_facts: int = 50
    # The queue of long turns (SQS FIFO); empty: async and WebSocket turns are refused with 503
    turn_queue_url: str | None = None
    # Where WebSocket frames are posted; empty: https://<domain>/<stage> of the event (API Gateway)
    websocket_callback_url: str | None = None
    # Tools whose calls wait for a person's approval (approval.py); "*": every tool
    approval_tools: frozenset[str] = frozenset()
    # Tokens (input + output) a caller may use per UTC day; 0: unlimited (see agent/usage.py)
    caller_daily_tokens: int = 0
    # Output tokens one model call may write (the provider's max_tokens); 0: the provider's default
    max_output_tokens: int = 0
    # The user's agent (docs/agent.md): tool modules (AGENT_TOOLS, comma-separated), MCP servers
    # over streamable HTTP and how long their tool lists are kept
    agent_tools: str = ""
    mcp_servers: str = ""  # JSON, read by agent.your_agent (mcp_servers.parse_mcp_servers)
    mcp_tools_ttl: int = 300
    # Deployed: the secrets the function may read for MCP headers (None: not checked, locally)
    mcp_secret_arns: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        read = _Reader(env)
        return cls(
            model_id=read.text("MODEL_ID"),
            model_api_base=read.text("MODEL_API_BASE"),
            model_api_key=read.text("MODEL_API_KEY"),
            model_api_key_secret_arn=read.text("MODEL_API_KEY_SECRET_ARN"),
            model_params=_with_output_limit(
                read.parsed("MODEL_PARAMS", _json_object, 'a JSON object, e.g. {"temperature": 0.3}', {}),
                read.number("MAX_OUTPUT_TOKENS", 0, minimum=0)),
            model_timeout=read.number("MODEL_TIMEOUT", 300, minimum=1),
            system_prompt=system_prompt(read.text("SYSTEM_PROMPT"), read.text("SYSTEM_PROMPT_FILE")),
            session_bucket=read.text("SESSION_BUCKET"),
            session_prefix=(read.text("SESSION_PREFIX") or "sessions").strip("/"),
            session_dir=read.text("SESSION_DIR") or ".sessions",
            history_window=read.number("HISTORY_WINDOW", 40, minimum=2),
            history_policy=read.choice("HISTORY_POLICY", HISTORY_POLICIES, "summarize"),
            # Bounded so that one message always fits a history page (Lambda answers 6 MB at most).
            max_message_chars=read.number("MAX_MESSAGE_CHARS", 16000, minimum=1, maximum=100_000),
            lease_seconds=read.number("SESSION_LEASE_SECONDS", 90, minimum=2),
            session_ttl_days=read.number("SESSION_TTL_DAYS", 30, minimum=1),
            idempotency_ttl_seconds=read.number("IDEMPOTENCY_TTL_SECONDS", 3600, minimum=1),
            memory=read.choice("MEMORY", ("on", "off"), "off") == "on",
            memory_max_facts=read.number("MEMORY_MAX_FACTS", 50, minimum=1, maximum=1000),
            turn_queue_url=read.text("TURN_QUEUE_URL"),
            websocket_callback_url=read.text("WEBSOCKET_CALLBACK_URL"),
            approval_tools=frozenset(n.strip() for n in (read.text("APPROVAL_TOOLS") or "").split(",") if n.strip()),
            caller_daily_tokens=read.number("CALLER_DAILY_TOKENS", 0, minimum=0),
            max_output_tokens=read.number("MAX_OUTPUT_TOKENS", 0, minimum=0),
            agent_tools=read.text("AGENT_TOOLS") or "",
            mcp_servers=read.text("MCP_SERVERS") or "",
            mcp_tools_ttl=read.number("MCP_TOOLS_TTL", 300, minimum=0),
            mcp_secret_arns=tuple(a.strip() for a in env["MCP_SECRET_ARNS"].split(",") if a.strip())
            if "MCP_SECRET_ARNS" in env else None,
        )


class _Reader:
    """Reads one variable at a time, failing with a message that names it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def number(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        expected = f"a whole number from {minimum}" + (f" to {maximum}" if maximum else " up")
        value = self.parsed(name, int, expected, default)
        if value < minimum or (maximum is not None and value > maximum):
            raise SettingsError(f"{name} must be {expected}, not {value}.")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
        return value

    def parsed(self, name: str, parse: Callable[[str], T], expected: str, default: T) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError):
            raise SettingsError(f"{name} must be {expected}, not {raw!r}.") from None


def _json_object(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _with_output_limit(params: dict[str, Any], max_output_tokens: int) -> dict[str, Any]:
    """MAX_OUTPUT_TOKENS as the model's max_tokens: a bound on spend, so it wins over a larger
    max_tokens in MODEL_PARAMS (and keeps a smaller one)."""
    if not max_output_tokens:
        return params
    given = params.get("max_tokens")
    limit = min(given, max_output_tokens) if isinstance(given, int) and given > 0 else max_output_tokens
    return {**params, "max_tokens": limit}


# The folder that holds the function's packages (agent, handler, agent_tools): src/ locally, the
# artifact's root (/var/task) deployed. A relative SYSTEM_PROMPT_FILE is found there in both.
CODE_ROOT = Path(__file__).resolve().parent.parent
MAX_PROMPT_BYTES = 100_000


def system_prompt(text: str | None, file: str | None) -> str:
    """SYSTEM_PROMPT, or the text of SYSTEM_PROMPT_FILE (a file shipped with the code), or ours."""
    if text and file:
        raise SettingsError("Set SYSTEM_PROMPT or SYSTEM_PROMPT_FILE, not both.")
    if not file:
        return text or DEFAULT_SYSTEM_PROMPT
    path = CODE_ROOT / file
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"SYSTEM_PROMPT_FILE {file!r} cannot be read ({error.strerror or error}); give a "
                            f"path relative to {CODE_ROOT} (e.g. agent_tools/prompt.md) or an absolute one.") from None
    if len(raw) > MAX_PROMPT_BYTES:
        raise SettingsError(f"SYSTEM_PROMPT_FILE {file!r} is {len(raw)} bytes; at most {MAX_PROMPT_BYTES} are allowed.")
    try:
        prompt = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingsError(f"SYSTEM_PROMPT_FILE {file!r} must be UTF-8 text.") from None
    if not prompt:
        raise SettingsError(f"SYSTEM_PROMPT_FILE {file!r} is empty.")
    return prompt

