"""An invocation's deadline: Lambda's remaining time, or API Gateway's if that ends first, less
the margin to answer (and release the session)."""

import time
from typing import Any

from agent import Deadline

# Kept between a turn's deadline and the function's timeout, to answer (and release the session).
ANSWER_MARGIN_SECONDS = 1.0
# API Gateway's own clocks, which start when it receives the request, before Lambda's (a cold
# start comes in between): an HTTP API answers 503 after 30 s, a WebSocket route after 29 s.
HTTP_API_SECONDS, WEBSOCKET_ROUTE_SECONDS = 30.0, 29.0


def deadline_of(context: Any, api_seconds: float | None = None) -> Deadline:
    """The invocation's deadline, or API Gateway's if that comes first, less the margin to
    answer; none outside Lambda's clock."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return Deadline.never()
    seconds = remaining() / 1000 if api_seconds is None else min(remaining() / 1000, api_seconds)
    return Deadline.after(seconds - ANSWER_MARGIN_SECONDS)


def api_time_left(received_ms: Any, limit: float) -> float | None:
    """Seconds until API Gateway stops waiting for a request it received at ``received_ms``
    (epoch milliseconds); None for a time of receipt that cannot be this request's (a sample
    event's, a clock apart)."""
    if not isinstance(received_ms, (int, float)) or isinstance(received_ms, bool):
        return None
    waited = time.time() - received_ms / 1000
    return limit - waited if 0 <= waited <= limit else None
