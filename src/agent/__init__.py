"""The stateful agent, independent of Lambda: `Conversations` runs turns against a session store."""

from .conversation import Conversations, HistoryMessage, Reply
from .errors import (
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
from .settings import Settings

__all__ = [
    "AgentError", "Conversations", "HistoryMessage", "InvalidRequest", "ModelError", "ModelNotConfigured",
    "ModelThrottled", "Reply", "SessionBusy", "SessionNotFound", "Settings", "StoreUnavailable", "TurnTimedOut",
]
