"""Lambda entry point: `handler.app.lambda_handler`. Picks the event's source and hands it on."""

import gc

gc.disable()  # init builds long-lived objects only; snapstart.end_init() below resumes the GC

from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from . import http, snapstart, sources  # noqa: E402
from .errors import as_api_error, error_body  # noqa: E402
from .observability import logger, metrics, tracer  # noqa: E402
from .turns import register_context  # noqa: E402


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # replies are conversation content
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    register_context(context)
    if is_http_api(event):
        try:
            return http.app.resolve(event, context)
        except Exception as error:  # an HTTP event malformed beyond routing: an answer, not a trace
            return error_body(as_api_error(error))
    # These two raise on failure, so SQS redelivers and async invocations retry (then the DLQ).
    if is_sqs(event):
        return sources.sqs_batch(event, context)
    if is_eventbridge(event):
        return sources.eventbridge(event)
    return sources.direct(event)


def is_http_api(event: Any) -> bool:
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(request_context, dict) and isinstance(request_context.get("http"), dict)


def is_sqs(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (isinstance(records, list) and bool(records)
            and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records))


def is_eventbridge(event: Any) -> bool:
    return isinstance(event, dict) and "detail-type" in event and "detail" in event


snapstart.end_init()
