"""Lambda entry point: `handler.app.lambda_handler`. Picks the event's source and hands it on."""

import gc

gc.disable()  # init builds long-lived objects only; snapstart.end_init() below resumes the GC

from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from . import http, snapstart, sources  # noqa: E402
from .observability import logger, metrics, tracer  # noqa: E402
from .turns import register_context  # noqa: E402


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    register_context(context)
    if is_http_api(event):
        return http.app.resolve(event, context)
    if is_sqs(event):
        return sources.sqs_batch(event, context)
    if is_eventbridge(event):
        return sources.eventbridge(event)
    return sources.direct(event)


def is_http_api(event: Any) -> bool:
    return isinstance(event, dict) and "http" in (event.get("requestContext") or {})


def is_sqs(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and records[0].get("eventSource") == "aws:sqs"


def is_eventbridge(event: Any) -> bool:
    return isinstance(event, dict) and "detail-type" in event and "detail" in event


snapstart.end_init()
