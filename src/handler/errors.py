"""Domain errors to responses, in one place: the status codes of every route and event source."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from agent import (
    AgentError,
    InvalidRequest,
    ModelError,
    ModelNotConfigured,
    ModelThrottled,
    SessionBusy,
    SessionNotFound,
    StoreUnavailable,
    TurnTimedOut,
)

logger = Logger(child=True)

STATUS = {
    InvalidRequest: 400,
    SessionNotFound: 404,
    SessionBusy: 409,
    ModelThrottled: 429,
    ModelError: 502,
    ModelNotConfigured: 503,
    StoreUnavailable: 503,
    TurnTimedOut: 504,
}
IN_PROGRESS_RETRY_AFTER = 5


class ApiError(AgentError):
    """An error of the API itself rather than of the domain (unknown route, reused idempotency key)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.code = code


def as_api_error(error: Exception) -> ApiError:
    """Every failure, known or not, as a status, a stable code and a message safe to show."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, AgentError):
        return ApiError(STATUS.get(type(error), 500), error.code, error.message, error.retry_after)
    if isinstance(error, IdempotencyAlreadyInProgressError):
        return ApiError(409, SessionBusy.code, "A request with this idempotency key is still running; retry later.",
                        IN_PROGRESS_RETRY_AFTER)
    if isinstance(error, IdempotencyValidationError):
        return ApiError(422, "idempotency_key_reused",
                        "This idempotency key was already used with a different message.")
    logger.exception("unexpected failure")
    return ApiError(500, "internal_error", "Internal error. The session was not changed.")


def error_body(error: ApiError) -> dict:
    body: dict = {"code": error.code, "message": error.message}
    if error.retry_after is not None:
        body["retry_after"] = error.retry_after
    return {"error": body}


def error_headers(error: ApiError) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
