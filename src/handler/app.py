"""AgentFunction's entry point, `handler.app.lambda_handler`: each event handed to the adapter of
its source, with the invocation's deadline. The services are built once, at init (composition.py).
The turn queue's worker has an entry point of its own (worker_app.py)."""

import gc

gc.disable()  # init builds long-lived objects only; snapstart.end_init() below resumes the GC

import logging  # noqa: E402  (after gc.disable: the imports are init)
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from . import snapstart  # noqa: E402
from .composition import Services, build  # noqa: E402
from .deadlines import HTTP_API_SECONDS, WEBSOCKET_ROUTE_SECONDS, api_time_left, deadline_of  # noqa: E402
from .error_table import ApiError, json_text  # noqa: E402
from .http_routes import as_json_request  # noqa: E402
from .observability import observed  # noqa: E402
from .websocket_routes import is_websocket  # noqa: E402

logger = logging.getLogger(__name__)
MALFORMED = ApiError(400, "invalid_request", "The event is not a valid API Gateway request.")


def dispatch(services: Services, event: Any, context: Any) -> Any:
    if is_http_api(event):
        services.http.append_context(deadline=deadline_of(context, api_time_left(
            event["requestContext"].get("timeEpoch"), HTTP_API_SECONDS)))
        try:
            return services.http.resolve(as_json_request(event), context)
        except Exception:  # the routes answer their own errors: this event is malformed beyond routing
            return malformed({"statusCode": 400, "headers": {"Content-Type": "application/json"},
                              "body": json_text(MALFORMED.body())})
    if is_websocket(event):
        deadline = deadline_of(context, api_time_left(event["requestContext"].get("requestTimeEpoch"),
                                                      WEBSOCKET_ROUTE_SECONDS))
        try:
            return services.websocket.handle(event, deadline)
        except (KeyError, TypeError, AttributeError):
            return malformed({"statusCode": 400})
    deadline = deadline_of(context)
    if is_sqs(event):
        return services.sources.sqs_batch(event, context, deadline)  # failed records: redelivered, then the DLQ
    if is_eventbridge(event):
        return services.sources.eventbridge(event, deadline)  # raises: async retries, then OnFailure
    return services.sources.direct(event, deadline)


def malformed(answer: Any) -> Any:
    logger.warning("an event that is not what its source sends", exc_info=True)
    return answer


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
    return observed(services.observe, lambda event, context: dispatch(services, event, context))


services = build()
lambda_handler = handler_for(services)
snapstart.end_init()
