"""Conversations: a turn, a session's history, deletion, and the caller's memory.

Lambda keeps nothing between requests we can rely on, so every turn rebuilds the agent from the
store, keyed by (caller, session_id). The store hands out one turn at a time per session, under
the session's lease, and stores the turn only if it completes with a real reply, before the
deadline: a failed, cancelled or incomplete model answer leaves the session exactly as it was.
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from strands import Agent, ModelRetryStrategy
from strands.types.exceptions import MaxTokensReachedException

from .deadline import Deadline
from .errors import FactNotFound, InvalidRequest, ModelError, TurnTimedOut
from .history import (
    DEFAULT_PAGE_MESSAGES,
    MAX_PAGE_BYTES,
    HistoryPage,
    decode_cursor,
    encode_cursor,
    message_of,
    within_bytes,
)
from .history_policy import conversation_manager
from .memory import MEMORY_DOCUMENT, Fact, MemoryTools, facts_in, prompt_section, removing
from .model import ModelProvider, as_model_failure, close_clients_of_running_loop, is_rejected_key
from .settings import Settings
from .store import SessionStore
from .tools import DEFAULT_TOOLS

logger = logging.getLogger(__name__)

# Model calls one turn may make (each tool round is one more). Bounds a turn's time and cost;
# a turn that reaches it ends with stop_reason "limit_turns" and is stored like any other.
MAX_MODEL_CALLS_PER_TURN = 4
# Time kept after the model's last byte to store the turn (S3 PUTs) and release the session.
COMMIT_SECONDS = 1.5
# At most this long, within COMMIT_SECONDS, for what a summary left on the container's loop to stop.
SETTLE_SECONDS = 0.2
# Between the texts of two model calls in one turn (a tool round): the same in deltas and reply.
ROUND_SEPARATOR = "\n\n"

OnDelta = Callable[[str], None]


@dataclass(frozen=True)
class ChatRequest:
    caller: str
    session_id: str
    message: str


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


class Conversations:
    """Chat, history and deletion of sessions, and the caller's memory, each scoped to a caller."""

    def __init__(self, settings: Settings, store: SessionStore, models: ModelProvider,
                 tools: Sequence[Any] = DEFAULT_TOOLS, name_endpoint_in_errors: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self._tools = list(tools)
        # Locally, "could not reach http://127.0.0.1:8000/v1" is what a developer needs; a
        # deployed API tells its callers no more than that the provider could not be reached.
        self.name_endpoint_in_errors = name_endpoint_in_errors
        # One event loop for the container's life, one turn at a time (as Lambda runs them):
        # LiteLLM schedules its own background work on the loop that called it. Closed with the
        # container (or at exit): a loop left holding LiteLLM's waiting task crashes the
        # interpreter's last garbage collection.
        self._loop = asyncio.new_event_loop()
        weakref.finalize(self, _close, self._loop)

    # ---- a turn ---------------------------------------------------------------------------
    def chat(self, request: ChatRequest, deadline: Deadline, on_delta: OnDelta | None = None) -> Reply:
        """One turn. Text is passed to ``on_delta`` as the model writes it; the deltas of a turn
        concatenated equal its reply."""
        message = check_message(request.message, self.settings.max_message_chars)
        model_deadline = deadline.earlier_by(COMMIT_SECONDS)
        if model_deadline.expired():
            raise TurnTimedOut("No time was left for this turn before the function's timeout; nothing was stored.")
        # Fails before the session is touched.
        model = self.models.for_turn(model_deadline, streaming=on_delta is not None, home_loop=self._loop)
        memory = MEMORY_DOCUMENT if self.settings.memory else None
        with self.store.turn(request.caller, request.session_id, deadline, caller_document=memory) as turn:
            agent = self._agent(model, turn, request.session_id)
            started = time.perf_counter()
            reply, stop_reason = self._run(agent, message, model_deadline, on_delta)
            model_seconds = time.perf_counter() - started
        usage = agent.event_loop_metrics.accumulated_usage
        return Reply(
            session_id=request.session_id, reply=reply, stop_reason=stop_reason,
            input_tokens=int(usage.get("inputTokens", 0)), output_tokens=int(usage.get("outputTokens", 0)),
            message_count=agent.conversation_manager.removed_message_count + _stored_count(agent),
            model_seconds=model_seconds,
        )

    def _agent(self, model: Any, turn: Any, session_id: str) -> Agent:
        """Agents are cheap: one per turn, restored from the session by its session manager."""
        tools, system_prompt = list(self._tools), self.settings.system_prompt
        if self.settings.memory:
            facts = facts_in(turn.caller_document)
            tools += MemoryTools(facts, session_id, self.settings.memory_max_facts, turn.change_caller_document).tools()
            system_prompt += prompt_section(facts)
        return Agent(
            model=model,
            system_prompt=system_prompt,
            tools=tools,
            session_manager=turn.session_manager,
            conversation_manager=conversation_manager(self.settings.history_policy, self.settings.history_window),
            # Throttling answers 429 to the client at once; sleeping through backoff here would
            # spend the invocation's time and bill the wait.
            retry_strategy=ModelRetryStrategy(max_attempts=1),
            callback_handler=None,
        )

    def _run(self, agent: Agent, message: str, deadline: Deadline, on_delta: OnDelta | None) -> tuple[str, str]:
        """The agent loop; (reply, stop_reason). Raising leaves the turn unstored."""
        reply = StreamedReply(on_delta)
        try:
            stop_reason = self._loop.run_until_complete(_stream(agent, message, deadline, reply))
        except MaxTokensReachedException:
            # A reply cut at max_tokens is still a reply: Strands has appended the partial
            # message, and failing the turn would fail every retry the same way.
            stop_reason, reply.last = "max_tokens", agent.messages[-1]
        except TimeoutError:
            raise TurnTimedOut("The turn took too long and was cancelled; nothing was stored. Retry.") from None
        except Exception as error:
            if is_rejected_key(error):
                self.models.reset()  # a rotated secret: read it again on the next request
            endpoint = self.settings.model_api_base or self.settings.model_id
            raise as_model_failure(error, deadline, endpoint if self.name_endpoint_in_errors else None) from error
        finally:
            if agent.model.called_elsewhere:
                # LiteLLM's background worker moved to the summary's loop and left its task here
                # waiting forever, which, collected later, logs "Task was destroyed but it is
                # pending!" (once per summary). The next call starts a fresh one.
                _settle(self._loop)
        if not reply.complete():
            raise ModelError("The model answered with an empty reply; nothing was stored. Retry.")
        return reply.text(), stop_reason

    # ---- history ---------------------------------------------------------------------------
    def history(self, caller: str, session_id: str, deadline: Deadline, cursor: str | None = None,
                limit: int = DEFAULT_PAGE_MESSAGES, max_bytes: int = MAX_PAGE_BYTES) -> HistoryPage:
        """One page of the messages the user and the agent exchanged, oldest first."""
        start = decode_cursor(cursor, caller, session_id) if cursor else 0
        stored = self.store.history(caller, session_id, start, limit, deadline)
        messages = within_bytes((message_of(m) for m in stored.messages), max_bytes)
        following = messages[-1].index + 1 if messages else stored.total
        more = following < stored.total
        return HistoryPage(session_id, messages, encode_cursor(caller, session_id, following) if more else None)

    def delete(self, caller: str, session_id: str, deadline: Deadline) -> None:
        self.store.delete(caller, session_id, deadline)

    def expire_idle_sessions(self, deadline: Deadline, now: datetime | None = None) -> list[str]:
        """Delete sessions (and memories of callers left without one) idle longer than the TTL;
        what fits before ``deadline`` (the next sweep resumes)."""
        return self.store.expire_idle(now or datetime.now(UTC), deadline)

    # ---- what lives beside a session: turn records, queueing, WebSocket connections --------
    def turn_records(self, caller: str, session_id: str, deadline: Deadline) -> Any:
        """Small documents that live and die with the session (idempotency records, queued turns'
        status): agent.store.SessionRecords."""
        return self.store.records(caller, session_id, deadline)

    def queueing(self, caller: str, session_id: str, deadline: Deadline) -> Any:
        """Hold the session's queueing lease: turns are queued one at a time, in order."""
        return self.store.queueing(caller, session_id, deadline)

    def bind_connection(self, connection_id: str, caller: str, deadline: Deadline) -> None:
        self.store.bind_connection(connection_id, caller, deadline)

    def connection_caller(self, connection_id: str, deadline: Deadline) -> str | None:
        return self.store.connection_caller(connection_id, deadline)

    def unbind_connection(self, connection_id: str, deadline: Deadline) -> None:
        self.store.unbind_connection(connection_id, deadline)

    # ---- memory ----------------------------------------------------------------------------
    def facts(self, caller: str, deadline: Deadline) -> list[Fact]:
        return facts_in(self.store.caller_document(caller, MEMORY_DOCUMENT, deadline))

    def forget(self, caller: str, fact_id: str, deadline: Deadline) -> None:
        found: list[bool] = []

        def change(document: dict | None) -> dict | None:
            found[:] = [any(f.id == fact_id for f in facts_in(document))]
            return removing(fact_id)(document) if found[0] else document

        self.store.change_caller_document(caller, MEMORY_DOCUMENT, change, deadline)
        if not found[0]:
            raise FactNotFound(f"There is no remembered fact {fact_id}.")

    def forget_everything(self, caller: str, deadline: Deadline) -> None:
        self.store.change_caller_document(caller, MEMORY_DOCUMENT, lambda _: None, deadline)


class StreamedReply:
    """The reply as it streams: the text of each of the turn's model calls, joined by
    ROUND_SEPARATOR, passed on delta by delta, so the deltas concatenated equal the reply."""

    def __init__(self, on_delta: OnDelta | None) -> None:
        self.on_delta = on_delta
        self.parts: list[str] = []
        self.call_wrote = False  # the current model call has written text
        self.earlier_wrote = False  # an earlier model call of this turn did
        self.last: Any = None  # the turn's latest model message

    def delta(self, text: str) -> None:
        if not text:
            return
        if self.earlier_wrote and not self.call_wrote:
            text = ROUND_SEPARATOR + text
        self.call_wrote = True
        self.parts.append(text)
        if self.on_delta:
            self.on_delta(text)

    def message(self, message: Any) -> None:
        if message.get("role") == "assistant":
            self.last = message
            self.earlier_wrote = self.earlier_wrote or self.call_wrote
            self.call_wrote = False

    def text(self) -> str:
        return "".join(self.parts)

    def complete(self) -> bool:
        """The turn's last model message says something: text, or a tool call."""
        content = (self.last or {}).get("content") or []
        return any(block.get("text", "").strip() or "toolUse" in block for block in content)


async def _stream(agent: Agent, message: str, deadline: Deadline, reply: StreamedReply) -> str:
    remaining = deadline.remaining()
    async with asyncio.timeout(None if remaining == float("inf") else remaining):
        result = None
        async for event in agent.stream_async(message, limits={"turns": MAX_MODEL_CALLS_PER_TURN}):
            if "data" in event:
                reply.delta(event["data"])
            elif "message" in event:
                reply.message(event["message"])
            elif "result" in event:
                result = event["result"]
    return str(result.stop_reason) if result is not None else "end_turn"


def _settle(loop: asyncio.AbstractEventLoop, then: Any = None) -> None:
    """Cancel what is left waiting on ``loop`` and let it finish, bounded (``then``: one more
    coroutine to run afterwards)."""

    async def settle() -> None:
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.wait(leftover, timeout=SETTLE_SECONDS)
        if then is not None:
            await then

    loop.run_until_complete(settle())


def _close(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed() or loop.is_running():
        return
    try:
        asyncio.get_running_loop()  # collected while another loop runs here: closing is all there is
    except RuntimeError:
        _settle(loop, _last_rites(loop))
    loop.close()


async def _last_rites(loop: asyncio.AbstractEventLoop) -> None:
    await close_clients_of_running_loop()  # the provider's connections go with the container
    await loop.shutdown_asyncgens()


def _stored_count(agent: Agent) -> int:
    """Messages of the agent that are stored ones (a summary at the front is not)."""
    summary = agent.conversation_manager.get_state().get("summary_message")
    return len(agent.messages) - (1 if summary is not None and agent.messages and agent.messages[0] == summary else 0)


def check_message(message: Any, max_chars: int) -> str:
    """The same rules for every way a message arrives (HTTP, WebSocket, queues, direct)."""
    if not isinstance(message, str) or not message.strip():
        raise InvalidRequest('"message" must be a non-empty string.')
    if len(message) > max_chars:
        raise InvalidRequest(f'"message" is {len(message)} characters long; the limit is {max_chars}.')
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
        raise InvalidRequest('"message" must be valid Unicode text.') from None
    return message
