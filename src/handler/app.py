"""Lambda's entry point, `handler.app.lambda_handler`: each event handed to the adapter of its
source, with the invocation's deadline. The services are built once, at init (composition.py)."""

import gc

gc.disable()  # init builds long-lived objects only; snapstart.end_init() below resumes the GC

import logging  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402

from agent import Deadline  # noqa: E402

from . import snapstart  # noqa: E402
from .composition import Services, build  # noqa: E402
from .error_table import ApiError, json_text  # noqa: E402
from .http_routes import as_json_request  # noqa: E402
from .websocket_routes import is_websocket  # noqa: E402

logger = logging.getLogger(__name__)
MALFORMED = ApiError(400, "invalid_request", "The event is not a valid API Gateway request.")
# Kept between a turn's deadline and the function's timeout, to answer (and release the session).
ANSWER_MARGIN_SECONDS = 1.0
# API Gateway's own clocks, which start when it receives the request, before Lambda's (a cold
# start comes in between): an HTTP API answers 503 after 30 s, a WebSocket route after 29 s.
HTTP_API_SECONDS, WEBSOCKET_ROUTE_SECONDS = 30.0, 29.0


def dispatch(services: Services, event: Any, context: Any) -> Any:
    deadline = deadline_of(context, api_time_left(event))
    if is_http_api(event):
        services.http.append_context(deadline=deadline)
        try:
            return services.http.resolve(as_json_request(event), context)
        except Exception:  # the routes answer their own errors: this event is malformed beyond routing
            return malformed({"statusCode": 400, "headers": {"Content-Type": "application/json"},
                              "body": json_text(MALFORMED.body())})
    if is_websocket(event):
        try:
            return services.websocket.handle(event, deadline)
        except (KeyError, TypeError, AttributeError):
            return malformed({"statusCode": 400})
    if is_sqs(event):
        # These raise on failure, so SQS redelivers (then the DLQ).
        if services.queue.feeds(event["Records"][0].get("eventSourceARN")):
            return services.worker.handle(event, context, deadline)
        return services.sources.sqs_batch(event, context, deadline)
    if is_eventbridge(event):
        return services.sources.eventbridge(event, deadline)  # raises: async retries, then OnFailure
    return services.sources.direct(event, deadline)


def malformed(answer: Any) -> Any:
    logger.warning("an event that is not what its source sends", exc_info=True)
    return answer


def deadline_of(context: Any, api_seconds: float | None = None) -> Deadline:
    """The invocation's deadline, or API Gateway's if that comes first, less the margin to
    answer; none outside Lambda's clock."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return Deadline.never()
    seconds = remaining() / 1000 if api_seconds is None else min(remaining() / 1000, api_seconds)
    return Deadline.after(seconds - ANSWER_MARGIN_SECONDS)


def api_time_left(event: Any) -> float | None:
    """Seconds until API Gateway stops waiting for this request's answer; None for other events,
    and for a time of receipt that cannot be this request's (a sample event's, a clock apart)."""
    if is_http_api(event):
        received, limit = event["requestContext"].get("timeEpoch"), HTTP_API_SECONDS
    elif is_websocket(event):
        received, limit = event["requestContext"].get("requestTimeEpoch"), WEBSOCKET_ROUTE_SECONDS
    else:
        return None
    if not isinstance(received, (int, float)) or isinstance(received, bool):
        return None
    waited = time.time() - received / 1000
    return limit - waited if 0 <= waited <= limit else None


def is_http_api(event: Any) -> bool:
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(request_context, dict) and isinstance(request_context.get("http"), dict)


def is_sqs(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (isinstance(records, list) and bool(records)
            and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records))


def is_eventbridge(event: Any) -> bool:
    return isinstance(event, dict) and "detail-type" in event and "detail" in event


def handler_for(services: Services) -> Callable[[Any, Any], Any]:
    observe = services.observe

    @observe.logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @observe.tracer.capture_lambda_handler(capture_response=False)  # replies are conversation content
    @observe.metrics.log_metrics
    def lambda_handler(event: Any, context: Any) -> Any:
        return dispatch(services, event, context)

    return lambda_handler


services = build()
lambda_handler = handler_for(services)
snapstart.end_init()
