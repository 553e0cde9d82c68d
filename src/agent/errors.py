"""Domain errors: every way a turn can fail that a caller should hear about.

Each carries a stable machine-readable ``code``; `handler/errors.py` maps them to
HTTP statuses (and to the structured error of direct invocations) in one place.
"""


class AgentError(Exception):
    """Base of the errors a caller can act on. The message is safe to show."""

    code = "internal_error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidRequest(AgentError):
    code = "invalid_request"


class SessionNotFound(AgentError):
    code = "session_not_found"


class SessionBusy(AgentError):
    """Another invocation holds the session's lease; retry after ``retry_after`` seconds."""

    code = "session_busy"


class ModelNotConfigured(AgentError):
    code = "model_not_configured"


class ModelError(AgentError):
    """The model provider failed; the turn was not stored."""

    code = "model_error"


class ModelThrottled(AgentError):
    """The model provider is rate limiting us; the turn was not stored."""

    code = "model_throttled"


class TurnTimedOut(AgentError):
    """The turn ran out of its time budget (the function's timeout) and was cancelled, unstored."""

    code = "turn_timeout"


class StoreUnavailable(AgentError):
    """The session store (S3 or the local directory) failed; the turn was not stored."""

    code = "store_unavailable"
