"""Conversations: what callers of the agent need, each scoped to a caller: a turn, a session's
history one page at a time, deleting a session, and the sweep of idle sessions.

Lambda keeps nothing between requests we can rely on, so every turn rebuilds the agent from the
store, keyed by (caller, session_id); see turn.py. The caller's remembered facts are
memory.CallerMemory's; turn records, queueing and WebSocket connections are the store's.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .deadline import Deadline
from .history import (
    DEFAULT_PAGE_MESSAGES,
    MAX_PAGE_BYTES,
    HistoryPage,
    decode_cursor,
    encode_cursor,
    message_of,
    within_bytes,
)
from .mcp_servers import McpServers
from .model import ModelProvider
from .settings import Settings
from .store import SessionStore
from .tools import DEFAULT_TOOLS
from .turn import ChatRequest, OnDelta, Reply, TurnCallbacks, Turns
from .turn_stop import TurnStop

__all__ = ["ChatRequest", "Conversations", "Reply"]


class Conversations:
    """Chat, history, deletion and expiry of sessions."""

    def __init__(self, settings: Settings, store: SessionStore, models: ModelProvider,
                 tools: Sequence[Any] = DEFAULT_TOOLS, name_endpoint_in_errors: bool = True,
                 mcp_servers: McpServers | None = None) -> None:
        self.store = store
        self._turns = Turns(settings, store, models, tools, name_endpoint_in_errors, mcp_servers)

    def chat(self, request: ChatRequest, deadline: Deadline, on_delta: OnDelta | None = None,
             stop: TurnStop | None = None, callbacks: TurnCallbacks | None = None) -> Reply:
        """One turn. Text is passed to ``on_delta`` as the model writes it; the deltas of a turn
        concatenated equal its reply. ``stop``: how the turn learns it was cancelled (TurnCancelled).
        ``callbacks``: the caller's work sent beside the turn's own store requests (its record, its
        budget, its reply frame)."""
        return self._turns.run(request, deadline, on_delta, stop, callbacks)

    @property
    def event_loop(self) -> Any:
        """The container's event loop, which every turn runs on (what a warm container keeps)."""
        return self._turns.loop.loop

    def history(self, caller: str, session_id: str, deadline: Deadline, cursor: str | None = None,
                limit: int = DEFAULT_PAGE_MESSAGES, max_bytes: int = MAX_PAGE_BYTES) -> HistoryPage:
        """One page of the messages the user and the agent exchanged, oldest first."""
        start = decode_cursor(cursor, caller, session_id) if cursor else 0
        stored = self.store.history(caller, session_id, start, limit, deadline)
        messages = within_bytes((message_of(m) for m in stored.messages), max_bytes)
        following = messages[-1].index + 1 if messages else stored.total
        more = following < stored.total
        return HistoryPage(session_id, messages, encode_cursor(caller, session_id, following) if more else None)

    def state(self, caller: str, session_id: str, deadline: Deadline) -> dict[str, Any]:
        """The session's agent state as its last turn stored it (what tools keep in agent.state),
        read without starting a turn. SessionNotFound when there is no such session."""
        return self.store.agent_state(caller, session_id, deadline)

    def delete(self, caller: str, session_id: str, deadline: Deadline) -> None:
        self.store.delete(caller, session_id, deadline)

    def expire_idle_sessions(self, deadline: Deadline, now: datetime | None = None) -> list[str]:
        """Delete sessions (and memories of callers left without one) idle longer than the TTL;
        what fits before ``deadline`` (the next sweep resumes)."""
        return self.store.expire_idle(now or datetime.now(UTC), deadline)
