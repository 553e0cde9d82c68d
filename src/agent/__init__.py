"""The stateful agent, independent of Lambda: `Conversations` runs turns against a session store."""

from .conversation import Conversations
from .deadline import Deadline
from .errors import (
    AgentError,
    ApprovalPending,
    BudgetExceeded,
    FactNotFound,
    InvalidRequest,
    ModelError,
    ModelNotConfigured,
    ModelThrottled,
    ModelUnreachable,
    NotFound,
    OutputInvalid,
    QueueUnavailable,
    SessionBusy,
    SessionNotFound,
    StoreUnavailable,
    TurnCancelled,
    TurnNotFound,
    TurnTimedOut,
)
from .history import HistoryMessage, HistoryPage
from .memory import CallerMemory, Fact
from .model import ModelProvider
from .settings import Settings, SettingsError
from .turn import ChatRequest, Reply, TurnCallbacks, check_message

__all__ = [
    "AgentError", "ApprovalPending", "BudgetExceeded",
    "CallerMemory", "ChatRequest", "Conversations", "Deadline", "Fact", "FactNotFound", "HistoryMessage",
    "HistoryPage", "InvalidRequest", "ModelError", "ModelNotConfigured", "ModelProvider", "ModelThrottled",
    "ModelUnreachable", "NotFound", "OutputInvalid", "QueueUnavailable", "Reply", "SessionBusy", "SessionNotFound",
    "Settings", "SettingsError", "StoreUnavailable", "TurnCallbacks", "TurnCancelled", "TurnNotFound", "TurnTimedOut",
    "check_message",
]
