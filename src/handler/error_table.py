"""Every failure as a status, a stable code and a message safe to show: one table, one place.

Domain errors (agent.errors) are looked up through their class hierarchy, so a subclass keeps
its parent's status. ApiError is the API's own (unknown route, bad JSON, a reused idempotency
key) and is not a domain error. HTTP responses, WebSocket error frames and direct invocations
all use these codes.
"""

import json
import logging
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from agent import (
    AgentError,
    ApprovalPending,
    BudgetExceeded,
    InvalidRequest,
    ModelError,
    ModelNotConfigured,
    ModelThrottled,
    NotFound,
    QueueUnavailable,
    SessionBusy,
    StoreUnavailable,
    TurnCancelled,
    TurnTimedOut,
)
from agent.store.failures import MESSAGE as STORE_MESSAGE

logger = logging.getLogger(__name__)

STATUS: dict[type[AgentError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    SessionBusy: 409,
    ApprovalPending: 409,
    ModelThrottled: 429,
    ModelError: 502,
    ModelNotConfigured: 503,
    StoreUnavailable: 503,
    QueueUnavailable: 503,
    TurnTimedOut: 504,
    BudgetExceeded: 429,
    TurnCancelled: 409,
}
IN_PROGRESS_RETRY_AFTER = 5
INTERNAL_MESSAGE = "Internal error. The session was not changed."


class ApiError(Exception):
    """An answer of the API itself: a status, a code and a message safe to show."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"error": error}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def status_of(error: AgentError) -> int:
    return next((STATUS[cls] for cls in type(error).__mro__ if cls in STATUS), 500)


def as_api_error(error: BaseException) -> ApiError:
    """Any failure, known or not; an unknown one is logged and answered without its details."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, AgentError):
        return ApiError(status_of(error), error.code, error.message, error.retry_after)
    if isinstance(error, IdempotencyAlreadyInProgressError):
        return ApiError(409, SessionBusy.code, "A request with this idempotency key is still running; retry later.",
                        IN_PROGRESS_RETRY_AFTER)
    if isinstance(error, IdempotencyValidationError):
        return ApiError(422, "idempotency_key_reused",
                        "This idempotency key was already used with a different message.")
    if isinstance(error, IdempotencyPersistenceLayerError):
        # Powertools wraps what the records' store raised (StoreUnavailable, a deadline).
        cause = _cause_of_kind(error, AgentError)
        return as_api_error(cause) if cause else ApiError(503, StoreUnavailable.code, STORE_MESSAGE)
    if isinstance(error, RecursionError):  # JSON nested deeper than any parser will go
        return ApiError(400, "invalid_json", "The body is nested too deeply to be read.")
    logger.exception("unexpected failure")
    return ApiError(500, "internal_error", INTERNAL_MESSAGE)


def _cause_of_kind(error: BaseException, kind: type) -> Any:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        if isinstance(error, kind):
            return error
        seen.append(error)
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


def error_result(error: BaseException) -> dict[str, Any]:
    """A direct invocation's answer to a failure: ``{"error": {"code", "message", "retry_after"?}}``."""
    return as_api_error(error).body()


def json_text(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))
