"""The turn service every event source calls: idempotency, the turn, its metrics; long turns
queued for a worker, and their status.

It receives the request and the invocation's deadline as arguments; it keeps nothing between
invocations but what the composition root gave it.
"""

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from agent import (
    AgentError,
    ChatRequest,
    Conversations,
    Deadline,
    ModelError,
    ModelThrottled,
    Reply,
    SessionBusy,
    StoreUnavailable,
    TurnNotFound,
)

from .error_table import ApiError, as_api_error
from .idempotency import SessionRecordsLayer, idempotency_config
from .observability import Observability
from .schemas import ConnectionRef, QueuedTurn
from .turn_queue import TurnQueue

# A queued turn that finds its session busy looks again this often...
BUSY_POLL_SECONDS = 2.0
# ...while at least this much time would be left for the turn itself.
MIN_TURN_SECONDS = 10.0


@dataclass(frozen=True)
class TurnRequest:
    """One turn, from whichever source: validated, and with its caller decided."""

    caller: str
    session_id: str
    message: str
    idempotency_key: str | None = None


def reply_body(reply: Reply) -> dict[str, Any]:
    """The JSON of a turn's reply: the POST's 200 body, a direct invocation's result, a "reply" frame."""
    return {
        "session_id": reply.session_id,
        "reply": reply.reply,
        "stop_reason": reply.stop_reason,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        "message_count": reply.message_count,
    }


class TurnService:
    def __init__(self, conversations: Conversations, queue: TurnQueue, observe: Observability,
                 idempotency_ttl_seconds: int) -> None:
        self.conversations = conversations
        self.queue = queue
        self.logger, self.metrics = observe.logger, observe.metrics
        self.idempotency_ttl_seconds = idempotency_ttl_seconds

    # ---- turns run now ---------------------------------------------------------------------
    def run(self, request: TurnRequest, deadline: Deadline, on_delta: Any = None) -> dict[str, Any]:
        """A turn; with an idempotency key, a retry replays the first reply instead of running again."""
        self.logger.append_keys(session_id=request.session_id)  # on every line of this invocation
        if request.idempotency_key is None:
            return self._turn(request=asdict(request), deadline=deadline, on_delta=on_delta)
        records = self.conversations.turn_records(request.caller, request.session_id, deadline)
        once = idempotent_function(data_keyword_argument="request", persistence_store=SessionRecordsLayer(records),
                                   config=idempotency_config(self.idempotency_ttl_seconds, deadline))(self._turn)
        return once(request=asdict(request), deadline=deadline, on_delta=on_delta)

    def _turn(self, request: dict[str, Any], deadline: Deadline, on_delta: Any) -> dict[str, Any]:
        chat = ChatRequest(request["caller"], request["session_id"], request["message"])
        try:
            reply = self.conversations.chat(chat, deadline, on_delta)
        except (ModelError, ModelThrottled) as error:
            self.metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=1)
            self.metrics.add_metadata(key="model_error", value=error.code)
            raise
        self.metrics.add_metric(name="Turns", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=reply.model_seconds * 1000)
        self.metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=reply.input_tokens)
        self.metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=reply.output_tokens)
        self.logger.info("turn stored", extra={"message_count": reply.message_count, "stop_reason": reply.stop_reason})
        return reply_body(reply)

    # ---- turns queued for a worker ---------------------------------------------------------
    def enqueue(self, request: TurnRequest, deadline: Deadline, connection: ConnectionRef | None = None,
                turn_id: str | None = None, announce: Callable[[Deadline], None] | None = None) -> dict[str, Any]:
        """Queue a long turn; its status record says "queued" until a worker takes it.

        ``announce`` (the WebSocket's "accepted") is called just before the turn is queued, under
        the session's queueing lease: no frame of the turn can come before it, and a turn sent
        after it was announced is queued after it. A retried request with the same idempotency
        key finds its turn (see turn_id_for) instead of queueing another; the same key with
        another message is refused, as a synchronous turn's would be."""
        turn_id = turn_id or turn_id_for(request)
        turn = QueuedTurn(caller=request.caller, session_id=request.session_id, turn_id=turn_id,
                          message=request.message, idempotency_key=request.idempotency_key, connection=connection)
        self.queue.check(turn)  # refused before anything is written or announced
        records = self.conversations.turn_records(request.caller, request.session_id, deadline)
        status = {"turn_id": turn_id, "status": "queued", "created_at": _now(), "message": _digest(request.message)}
        if records.create(_record(turn_id), status) is None:
            return self._queued_before(records, request, turn_id, deadline, announce)
        try:
            with self.conversations.queueing(request.caller, request.session_id, deadline) as bounded:
                if announce:
                    announce(bounded)
                self.queue.send(turn, bounded)
        except AgentError:
            records.delete(_record(turn_id))
            raise
        return {**status, "session_id": request.session_id}

    def _queued_before(self, records: Any, request: TurnRequest, turn_id: str, deadline: Deadline,
                       announce: Callable[[Deadline], None] | None) -> dict[str, Any]:
        found = records.get(_record(turn_id))
        if found is None:  # deleted with its session just now
            raise SessionBusy("This session was just deleted; send the message again.", retry_after=1)
        if found[0].get("message") != _digest(request.message):
            raise ApiError(422, "idempotency_key_reused", "This idempotency key was already used with a different message.")
        if announce:
            announce(deadline)
        return {**found[0], "session_id": request.session_id}

    def run_queued(self, turn: QueuedTurn, deadline: Deadline, on_delta: Any = None,
                   on_restart: Callable[[], None] | None = None) -> dict[str, Any]:
        """A worker's turn: status "running", then "done" with the reply, or "failed" with the
        error (raised as TurnFailed: final, the worker answers it). Idempotent on the turn id, so a
        redelivered message replays instead of running twice. A store that fails is not final: the
        error is raised as it is, and SQS delivers the turn again; that attempt calls
        ``on_restart`` first, since what the failed one streamed is not the reply."""
        records = self.conversations.turn_records(turn.caller, turn.session_id, deadline)
        name = _record(turn.turn_id)
        found = records.get(name)
        if found and found[0].get("status") == "running" and on_restart:
            on_restart()
        running = {**(found[0] if found else {"turn_id": turn.turn_id, "created_at": _now()}), "status": "running"}
        etag = records.replace(name, running, found[1]) if found else records.create(name, running)
        request = TurnRequest(turn.caller, turn.session_id, turn.message, turn.idempotency_key or turn.turn_id)
        try:
            reply = self._run_when_free(request, deadline, on_delta)
        except StoreUnavailable:
            raise
        except Exception as error:
            failure = as_api_error(error)
            _write(records, name, {**running, "status": "failed", "error": failure.body()["error"], "updated_at": _now()},
                   etag)
            raise TurnFailed(failure) from error
        _write(records, name, {**running, "status": "done", "reply": reply, "updated_at": _now()}, etag)
        return reply

    def _run_when_free(self, request: TurnRequest, deadline: Deadline, on_delta: Any) -> dict[str, Any]:
        """A queued turn waits for its session instead of being refused: a synchronous POST may
        hold it, for its lease at most."""
        while True:
            try:
                return self.run(request, deadline, on_delta)
            except SessionBusy as busy:
                wait = min(float(busy.retry_after or 1), BUSY_POLL_SECONDS)
                if deadline.remaining() < wait + MIN_TURN_SECONDS:
                    raise
                time.sleep(wait)

    def status(self, caller: str, session_id: str, turn_id: str, deadline: Deadline) -> dict[str, Any]:
        found = self.conversations.turn_records(caller, session_id, deadline).get(_record(turn_id))
        if found is None:
            raise TurnNotFound(f"Session {session_id} has no turn {turn_id}.")
        return {**found[0], "session_id": session_id}


class TurnFailed(Exception):
    """A queued turn ended with an error, recorded in its status: final, not to be retried."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _write(records: Any, name: str, document: dict[str, Any], etag: str | None) -> None:
    """A status change, only over the record this turn wrote: one deleted with its session since
    stays deleted."""
    if etag is not None:
        records.replace(name, document, etag)


def _digest(message: str) -> str:
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()


def _record(turn_id: str) -> str:
    return f"turn-{turn_id}"


def turn_id_for(request: TurnRequest) -> str:
    """A new turn's id; derived from the idempotency key when there is one."""
    if request.idempotency_key is None:
        return "t_" + secrets.token_hex(16)
    key = f"{request.caller}\n{request.session_id}\n{request.idempotency_key}"
    return "t_" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _now() -> str:
    return datetime.now(UTC).isoformat()
