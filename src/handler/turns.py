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


def register_context(context: LambdaContext | None) -> None:
    """Lets an in-progress idempotency record expire when this invocation's time runs out."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        _config.register_lambda_context(context)


@tracer.capture_method(capture_response=False)  # keep conversation content out of traces
def run_turn(request: TurnRequest) -> dict[str, Any]:
    logger.append_keys(session_id=request.session_id)
    if request.idempotency_key is None:
        return _turn(request=asdict(request))
    return _idempotent_turn(request=asdict(request))


def _turn(request: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = conversations.chat(request["caller"], request["session_id"], request["message"])
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
