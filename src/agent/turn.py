"""One turn: the caller's message checked, the agent restored from the session, the agent loop
run on the container's event loop (text passed on as the model writes it), and the turn stored
only if it ended with a real reply, before the deadline. A failed, cancelled or incomplete model
answer leaves the session exactly as it was."""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from strands import Agent, ModelRetryStrategy
from strands.types.exceptions import MaxTokensReachedException, StructuredOutputException

from .approval import ApprovalAnswer, ApprovalTools, PendingCall, pending_calls, refuse_while_pending, resume_prompt
from .container_loop import ContainerLoop
from .deadline import Deadline
from .errors import InvalidRequest, ModelError, OutputInvalid, TurnCancelled, TurnTimedOut
from .history_policy import conversation_manager
from .mcp_servers import LISTING_SHARE, McpServers
from .memory import MEMORY_DOCUMENT, MemoryTools, facts_in, prompt_section
from .model import ModelProvider, TurnModel, as_model_failure, is_rejected_key
from .settings import Settings
from .store import SessionStore
from .structured_output import RequestedOutput, requested_output
from .turn_stop import TurnStop, stoppable

# Model calls one turn may make (each tool round is one more). Bounds a turn's time and cost; a
# turn that reaches it ends with stop_reason "limit_turns" and is stored if it has said something.
MAX_MODEL_CALLS_PER_TURN = 4
# Time kept after the model's last byte to store the turn (S3 PUTs) and release the session.
COMMIT_SECONDS = 1.5
# Between the texts of two model calls in one turn (a tool round): the same in deltas and reply.
ROUND_SEPARATOR = "\n\n"

OnDelta = Callable[[str], None]
Prompt = str | list[Any]  # a message, or the answers that resume a stopped turn (approval.py)


@dataclass(frozen=True)
class ChatRequest:
    caller: str
    session_id: str
    message: str
    # Answers to the session's pending tool calls (approval.py), sent instead of a message.
    answers: tuple[ApprovalAnswer, ...] = ()
    # A JSON Schema (type object): the turn must end with an object that satisfies it.
    output_schema: dict[str, Any] | None = None


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
    # stop_reason "interrupt": the tool calls now waiting for a person (approval.py).
    interrupts: tuple[PendingCall, ...] = ()
    output: dict[str, Any] | None = None  # the object the output_schema asked for


@dataclass(frozen=True)
class TurnCallbacks:
    """The caller's own work for a turn, sent beside the turn's store requests instead of after
    them (each round trip to S3 is 10-30 ms of every turn):

    - ``checks`` run while the session is opened, in the same round trip (the turn's record
      claimed, the caller's budget read); one that raises ends the turn before the model is
      called, with its error, and nothing is stored;
    - ``on_stored`` get the reply once the turn is committed, beside the lease's release and the
      list entry (the turn's record, its tokens counted); a failure is logged, the turn is stored;
    - ``before_release`` too, but the session's lease is released only after it (a reply frame);
    - ``model_done`` is called once the model has written its last word, before the commit (the
      deltas still held back go out beside it, not after it)."""

    checks: Sequence[Callable[[], None]] = ()
    on_stored: Sequence[Callable[["Reply"], None]] = ()
    before_release: Callable[["Reply"], None] | None = None
    model_done: Callable[[], None] | None = None


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


class Turns:
    """Runs turns against the store, one at a time, on the container's event loop."""

    def __init__(self, settings: Settings, store: SessionStore, models: ModelProvider, tools: Sequence[Any],
                 name_endpoint_in_errors: bool, mcp_servers: McpServers | None = None) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self.tools = list(tools)
        # Locally, "could not reach http://127.0.0.1:8000/v1" is what a developer needs; a
        # deployed API tells its callers no more than that the provider could not be reached.
        self.name_endpoint_in_errors = name_endpoint_in_errors
        self.loop = ContainerLoop()
        self.approval = ApprovalTools(settings.approval_tools)
        self.mcp_servers = mcp_servers

    def run(self, request: ChatRequest, deadline: Deadline, on_delta: OnDelta | None = None,
            stop: TurnStop | None = None, callbacks: TurnCallbacks | None = None) -> Reply:
        callbacks = callbacks or TurnCallbacks()
        message = None if request.answers else check_message(request.message, self.settings.max_message_chars)
        requested = requested_output(request.output_schema)  # a bad schema fails before the session is touched
        model_deadline = deadline.earlier_by(COMMIT_SECONDS)
        if model_deadline.expired():
            raise TurnTimedOut("No time was left for this turn before the function's timeout; nothing was stored.")
        memory = MEMORY_DOCUMENT if self.settings.memory else None
        # Listed before the session's lease is taken (from the container's cache on a warm turn).
        mcp_tools = self.mcp_servers.tools_for_turn(model_deadline, LISTING_SHARE) if self.mcp_servers else []
        with self.store.turn(request.caller, request.session_id, deadline, caller_document=memory,
                             beside=callbacks.checks) as turn:
            # Once the checks passed: a retry answered from its record needs no model (nor its key).
            model = self.models.for_turn(model_deadline, streaming=on_delta is not None, home_loop=self.loop.loop)
            agent = self._agent(model, turn, request.session_id, mcp_tools)
            prompt = _prompt(agent, request, message)
            started = time.perf_counter()
            text, stop_reason = self._run(agent, prompt, model_deadline, on_delta, stop, requested)
            model_seconds = time.perf_counter() - started
            if callbacks.model_done is not None:
                callbacks.model_done()
            output = requested.output() if requested else None  # raises inside the turn: nothing stored
            usage = agent.event_loop_metrics.accumulated_usage
            reply = Reply(
                session_id=request.session_id, reply=text, stop_reason=stop_reason,
                input_tokens=int(usage.get("inputTokens", 0)), output_tokens=int(usage.get("outputTokens", 0)),
                message_count=agent.conversation_manager.removed_message_count + _stored_count(agent),
                model_seconds=model_seconds, interrupts=tuple(pending_calls(agent)), output=output,
            )
            for work in callbacks.on_stored:
                turn.once_stored(partial(work, reply))
            if callbacks.before_release is not None:
                turn.once_stored(partial(callbacks.before_release, reply), before_release=True)
        return reply

    def _agent(self, model: Any, turn: Any, session_id: str, turn_tools: Sequence[Any] = ()) -> Agent:
        """Agents are cheap: one per turn, restored from the session by its session manager."""
        tools, system_prompt = [*self.tools, *turn_tools], self.settings.system_prompt
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
            hooks=[self.approval] if self.approval.names else None,
        )

    def _run(self, agent: Agent, message: Prompt, deadline: Deadline, on_delta: OnDelta | None,
             stop: TurnStop | None = None, requested: RequestedOutput | None = None) -> tuple[str, str]:
        """The agent loop; (reply, stop_reason). Raising leaves the turn unstored."""
        reply = StreamedReply(on_delta)
        try:
            stop_reason = self.loop.run(_stream(agent, message, deadline, reply, stop, requested))
        except StructuredOutputException as error:
            cause = (str(error).strip().splitlines() or ["no object"])[0]
            raise OutputInvalid(f"The model did not produce an object matching output_schema ({cause}); "
                                "nothing was stored.") from error
        except MaxTokensReachedException:
            # A reply cut at max_tokens is still a reply: Strands has appended the partial
            # message, and failing the turn would fail every retry the same way.
            stop_reason, reply.last = "max_tokens", agent.messages[-1]
        except TimeoutError:
            raise TurnTimedOut("The turn took too long and was cancelled; nothing was stored. Retry.") from None
        except TurnCancelled:
            raise  # stopped by its caller (turn_stop.py): nothing stored, and no model failure
        except Exception as error:
            if is_rejected_key(error):
                self.models.reset()  # a rotated secret: read it again on the next request
            endpoint = self.settings.model_api_base or self.settings.model_id
            raise as_model_failure(error, deadline, endpoint if self.name_endpoint_in_errors else None) from error
        finally:
            if isinstance(agent.model, TurnModel) and agent.model.called_elsewhere:
                self.loop.settle()
        if stop_reason == "limit_turns" and requested and requested.produced is None:
            raise OutputInvalid(f"The model did not produce an object matching output_schema in "
                                f"{MAX_MODEL_CALLS_PER_TURN + 1} calls; nothing was stored. Retry or rephrase.")
        if stop_reason == "limit_turns" and not reply.text().strip():
            # Every call went to tools and none answered: storing it would leave an empty reply.
            raise ModelError(f"The model called tools {MAX_MODEL_CALLS_PER_TURN} times without answering; "
                             "nothing was stored. Retry or rephrase the message.")
        if not reply.complete():
            raise ModelError("The model answered with an empty reply; nothing was stored. Retry.")
        return reply.text(), stop_reason


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


def _prompt(agent: Agent, request: ChatRequest, message: str | None) -> Prompt:
    """The message, or (answering pending tool calls) what resumes the turn they stopped."""
    if request.answers:
        return resume_prompt(agent, request.answers)
    refuse_while_pending(agent, request.session_id)
    return message or ""


async def _stream(agent: Agent, message: Prompt, deadline: Deadline, reply: StreamedReply,
                  stop: TurnStop | None = None, requested: RequestedOutput | None = None) -> str:
    remaining = deadline.remaining()
    async with asyncio.timeout(None if remaining == float("inf") else remaining), stoppable(stop) as cancel_signal:
        result = None
        # Structured output may cost one more call: Strands' forced retry when the model answered in text.
        turns = MAX_MODEL_CALLS_PER_TURN + (1 if requested else 0)
        async for event in agent.stream_async(message, limits={"turns": turns}, cancel_signal=cancel_signal,
                                              structured_output_model=requested.model if requested else None):
            if "data" in event:
                reply.delta(event["data"])
            elif "message" in event:
                reply.message(event["message"])
            elif "result" in event:
                result = event["result"]
    if requested and result is not None:
        requested.produced = result.structured_output
    return str(result.stop_reason) if result is not None else "end_turn"


def _stored_count(agent: Agent) -> int:
    """Messages of the agent that are stored ones (a summary at the front is not)."""
    summary = agent.conversation_manager.get_state().get("summary_message")
    return len(agent.messages) - (1 if summary is not None and agent.messages and agent.messages[0] == summary else 0)
