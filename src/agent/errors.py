"""Domain errors: every way a request can fail that a caller should hear about.

Each carries a stable machine-readable ``code``. `handler/error_table.py` maps them to HTTP
statuses in one table, looked up through the class hierarchy, so a subclass keeps its parent's
status; WebSocket error frames and direct invocations use the same codes. The message is always
safe to show: no keys, paths, provider text or stack traces.
"""


class AgentError(Exception):
    """Base of the errors a caller can act on."""

    code = "internal_error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidRequest(AgentError):
    code = "invalid_request"


class NotFound(AgentError):
    code = "not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class TurnNotFound(NotFound):
    code = "turn_not_found"


class FactNotFound(NotFound):
    code = "fact_not_found"


class SessionBusy(AgentError):
    """Another request holds the session's lease; retry after ``retry_after`` seconds."""

    code = "session_busy"


class ModelNotConfigured(AgentError):
    """No usable model: MODEL_ID missing or not a model LiteLLM knows, or its key unreadable."""

    code = "model_not_configured"


class ModelError(AgentError):
    """The model provider failed, or answered something that is not a complete reply; nothing
    of the turn was stored."""

    code = "model_error"


class ModelUnreachable(ModelError):
    """The model's endpoint refused the connection or does not resolve."""

    code = "model_unreachable"


class OutputInvalid(ModelError):
    """The model did not produce an object that satisfies the request's output_schema; nothing
    of the turn was stored."""

    code = "output_invalid"


class ModelThrottled(AgentError):
    """The model provider is rate limiting us; the turn was not stored."""

    code = "model_throttled"


class TurnTimedOut(AgentError):
    """The turn ran out of the invocation's time and was cancelled; nothing was stored."""

    code = "turn_timeout"


class StoreUnavailable(AgentError):
    """The session store (S3 or the local directory) failed; the turn was not stored."""

    code = "store_unavailable"


class QueueUnavailable(AgentError):
    """A turn could not be queued for a worker (no queue configured, or the queue failed)."""

    code = "queue_unavailable"


class ApprovalPending(AgentError):
    """A tool call of the session waits for a person's answer; a new message must wait for it."""

    code = "approval_pending"
class BudgetExceeded(AgentError):
    """The caller's tokens today (UTC) reached CALLER_DAILY_TOKENS; retry_after: seconds to the
    next UTC midnight. Refused before the model is called: nothing was stored."""

    code = "budget_exceeded"


class TurnCancelled(AgentError):
    """The turn was cancelled (DELETE .../turns/{turn_id}, cancelTurn) before it ended; nothing
    of it was stored."""

    code = "turn_cancelled"
