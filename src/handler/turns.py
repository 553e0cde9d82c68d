"""The turn service every event source calls: idempotency, the agent turn, and its metrics."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent import Conversations, ModelError, ModelThrottled, Reply, Settings

from . import snapstart
from .idempotency import idempotency_config, persistence_store
from .observability import logger, metrics, tracer
from .requests import TurnRequest

settings = Settings.from_env()
conversations = Conversations.from_settings(settings)
_config = idempotency_config(settings)
_persistence = persistence_store(settings)
# A key read at init would otherwise live in every restored environment until it is rotated away.
snapstart.after_restore(conversations.models.reset)


def reply_body(reply: Reply) -> dict[str, Any]:
    """The JSON a client gets for a turn (HTTP 200 body, and a direct invocation's result)."""
    return {
        "session_id": reply.session_id,
        "reply": reply.reply,
        "stop_reason": reply.stop_reason,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        "message_count": reply.message_count,
    }


# A turn stops this long before the function's timeout, to store nothing, release the session's
# lease and answer, instead of being killed mid-turn.
TIMEOUT_MARGIN_SECONDS = 3.0
_context: LambdaContext | None = None


def register_context(context: LambdaContext | None) -> None:
    """The invocation's context: its remaining time bounds the turn and the idempotency record."""
    global _context
    _context = context if hasattr(context, "get_remaining_time_in_millis") else None
    if _context is not None:
        _config.register_lambda_context(_context)


def seconds_left() -> float | None:
    """What this invocation may still spend, keeping the margin; None outside Lambda's clock."""
    if _context is None:
        return None
    return max(0.0, _context.get_remaining_time_in_millis() / 1000 - TIMEOUT_MARGIN_SECONDS)


@tracer.capture_method(capture_response=False)  # keep conversation content out of traces
def run_turn(request: TurnRequest) -> dict[str, Any]:
    logger.append_keys(session_id=request.session_id)
    if request.idempotency_key is None:
        return _turn(request=asdict(request))
    return _idempotent_turn(request=asdict(request))


def _turn(request: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = conversations.chat(request["caller"], request["session_id"], request["message"],
                                   seconds_left=seconds_left())
    except (ModelError, ModelThrottled) as error:
        metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=1)
        metrics.add_metadata(key="model_error", value=error.code)
        raise
    metrics.add_metric(name="Turns", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=reply.model_seconds * 1000)
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=reply.input_tokens)
    metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=reply.output_tokens)
    logger.info("turn stored", extra={"message_count": reply.message_count, "stop_reason": reply.stop_reason})
    return reply_body(reply)


_idempotent_turn = idempotent_function(
    data_keyword_argument="request", persistence_store=_persistence, config=_config
)(_turn)
