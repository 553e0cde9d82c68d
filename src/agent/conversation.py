"""A conversation turn: load the session, run the agent, store the turn.

Lambda keeps nothing between requests we can rely on, so every turn rebuilds the agent from the
store keyed by (caller, session_id). The store hands out one session manager per turn, under the
session's lease, and stores the turn only if it completes: a failed model call leaves the
session exactly as it was.
"""

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from strands import Agent, ModelRetryStrategy
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.exceptions import MaxTokensReachedException

from .errors import AgentError, ModelError, ModelThrottled, TurnTimedOut
from .model import ModelProvider, is_rejected_key, is_throttling, retry_after_of
from .settings import Settings
from .store import SessionStore, open_store
from .tools import DEFAULT_TOOLS

logger = logging.getLogger(__name__)

# Model calls one turn may make (each tool round is one more). Bounds a turn's time and cost;
# a turn that reaches it ends with stop_reason "limit_turns" and is stored like any other.
MAX_MODEL_CALLS_PER_TURN = 4


@dataclass(frozen=True)
class Reply:
    """What one turn produced."""

    session_id: str
    reply: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    message_count: int
    model_seconds: float


@dataclass(frozen=True)
class HistoryMessage:
    index: int
    role: str
    text: str
    created_at: str


class Conversations:
    """Chat, history and deletion of sessions, each scoped to a caller."""

    def __init__(self, settings: Settings, store: SessionStore, models: ModelProvider,
                 tools: Sequence[Any] = DEFAULT_TOOLS) -> None:
        self.settings = settings
        self._store = store
        self.models = models
        self._tools = list(tools)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Conversations":
        """Everything expensive is made here, once per container."""
        models = ModelProvider(settings)
        models.warm_up()
        return cls(settings, open_store(settings), models)

    def chat(self, caller: str, session_id: str, message: str, seconds_left: float | None = None) -> Reply:
        """One turn. ``seconds_left``: the time the turn may take (e.g. until the function's
        timeout); past it the agent is cancelled and nothing of the turn is stored."""
        model = self.models.get()  # fails fast, before the session is touched
        with self._store.turn(caller, session_id) as session_manager:
            agent = self._agent(model, session_manager)
            started = time.perf_counter()
            with _deadline(seconds_left) as cancel:
                reply, stop_reason = self._run(agent, message, cancel)
            model_seconds = time.perf_counter() - started
        usage = agent.event_loop_metrics.accumulated_usage
        return Reply(
            session_id=session_id,
            reply=reply,
            stop_reason=stop_reason,
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            message_count=agent.conversation_manager.removed_message_count + len(agent.messages),
            model_seconds=model_seconds,
        )

    def _agent(self, model: Any, session_manager: Any) -> Agent:
        """Agents are cheap: one per turn, restored from the session by its session manager."""
        return Agent(
            model=model,
            system_prompt=self.settings.system_prompt,
            tools=self._tools,
            session_manager=session_manager,
            conversation_manager=SlidingWindowConversationManager(window_size=self.settings.history_window),
            # Throttling answers 429 to the client at once; sleeping through backoff here would
            # run into API Gateway's 30 s and bill the wait.
            retry_strategy=ModelRetryStrategy(max_attempts=1),
            callback_handler=None,
        )

    def _run(self, agent: Agent, message: str, cancel: threading.Event) -> tuple[str, str]:
        """The agent loop; returns (reply, stop_reason). Raising leaves the turn unstored."""
        try:
            result = agent(message, limits={"turns": MAX_MODEL_CALLS_PER_TURN}, cancel_signal=cancel)
        except MaxTokensReachedException:
            # A reply cut at max_tokens is still a reply: Strands has appended the partial
            # message, and failing the turn would fail every retry the same way.
            return _text(agent.messages[-1]).strip(), "max_tokens"
        except AgentError:
            raise
        except Exception as error:
            if is_rejected_key(error):
                self.models.reset()  # a rotated secret: read it again on the next request
            raise _as_model_failure(error) from error
        if result.stop_reason == "cancelled":
            # Better than being killed at the timeout, which would also leave the session
            # leased until the lease expires.
            raise TurnTimedOut("The turn took too long and was cancelled; nothing was stored. Retry.")
        return str(result).strip(), str(result.stop_reason)

    def history(self, caller: str, session_id: str) -> list[HistoryMessage]:
        return [_history_message(stored) for stored in self._store.history(caller, session_id)]

    def delete(self, caller: str, session_id: str) -> None:
        self._store.delete(caller, session_id)

    def expire_idle_sessions(self, now: datetime | None = None, seconds_left: float | None = None) -> list[str]:
        """Delete sessions idle longer than the TTL; with ``seconds_left``, what fits in that time
        (the next sweep resumes)."""
        return self._store.expire_idle(now or datetime.now(timezone.utc), seconds_left=seconds_left)


@contextmanager
def _deadline(seconds: float | None) -> Iterator[threading.Event]:
    """An event that is set once ``seconds`` have passed (never, for None)."""
    cancel = threading.Event()
    timer = threading.Timer(seconds, cancel.set) if seconds is not None else None
    if timer:
        timer.start()
    try:
        yield cancel
    finally:
        if timer:
            timer.cancel()


def _text(message: Any) -> str:
    return "".join(block["text"] for block in message["content"] if "text" in block)


def _history_message(stored: Any) -> HistoryMessage:
    message = stored.to_message()  # honours redactions
    return HistoryMessage(index=stored.message_id, role=message["role"], text=_text(message),
                          created_at=stored.created_at)


def _as_model_failure(error: Exception) -> AgentError:
    """Turn a provider failure into a domain error whose message is safe to show a client."""
    if is_throttling(error):
        return ModelThrottled("The model provider is rate limiting requests; retry later.",
                              retry_after=retry_after_of(error))
    # The provider's own message can quote request details; it goes to the log, not the client.
    logger.error("model call failed", exc_info=error)
    return ModelError("The model provider failed to answer; the message was not stored. Retry later.")

