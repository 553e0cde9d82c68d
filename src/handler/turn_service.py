"""The turn service every event source calls: the turn, its record in the turn ledger, its
metrics; long turns queued for a worker, and their status.

Every path keeps to the ledger's rules (turn_ledger.py): a retry with the same idempotency key
replays the first reply, the same key with another message is 422, a failed turn is forgotten,
and the records go with their session. It receives the request and the invocation's deadline as
arguments; it keeps nothing between invocations but what the composition root gave it.
"""

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

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
    TurnCallbacks,
    TurnCancelled,
    TurnNotFound,
)
from agent.approval import ApprovalAnswer
from agent.store import CommitUnknown, SessionDeleted
from agent.turn_stop import TurnStop
from agent.usage import CallerUsage

from .approvals import answers_of, asked, interrupts_body, responses_of
from .error_table import ApiError, as_api_error
from .observability import Observability
from .schemas import ConnectionRef, QueuedRecord, QueuedTurn
from .turn_ledger import (
    CANCELLED,
    STOPPING,
    Entry,
    TurnLedger,
    in_progress,
    message_digest,
    new_turn_id,
    record_name,
    running_until,
)
from .turn_queue import TurnQueue

# A queued turn that finds its session busy looks again this often...
BUSY_POLL_SECONDS = 2.0
# ...while at least this much time would be left for the turn itself.
MIN_TURN_SECONDS = 10.0
DEAD_LETTERED = ApiError(503, "turn_abandoned", "This turn failed on every attempt (the session store or the worker "
                         "kept failing); nothing of it was stored. Send it again.")


@dataclass(frozen=True)
class TurnRequest:
    """One turn, from whichever source: validated, and with its caller decided."""

    caller: str
    session_id: str
    message: str
    idempotency_key: str | None = None
    # Instead of a message ("" then): answers to the session's tool calls waiting for approval.
    interrupt_responses: tuple[ApprovalAnswer, ...] = ()
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class TurnHooks:
    """What a path adds to a turn, on the reply's body (agent.TurnCallbacks has the rules): its
    record's checks while the session opens; what it records once the turn is stored; its reply
    frame, before the session is released; the flush of its held-back deltas."""

    checks: tuple[Callable[[], None], ...] = ()
    on_stored: tuple[Callable[[dict[str, Any]], Any], ...] = ()
    before_release: Callable[[dict[str, Any]], None] | None = None
    model_done: Callable[[], None] | None = None


def reply_body(reply: Reply) -> dict[str, Any]:
    """The JSON of a turn's reply: the POST's 200 body, a direct invocation's result, a "reply" frame."""
    return {
        "session_id": reply.session_id,
        "reply": reply.reply,
        "stop_reason": reply.stop_reason,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        "message_count": reply.message_count,
        **interrupts_body(reply.interrupts),
        **({"output": reply.output} if reply.output is not None else {}),
    }


class TurnService:
    def __init__(self, conversations: Conversations, queue: TurnQueue, observe: Observability,
                 idempotency_ttl_seconds: int, usage: CallerUsage | None = None) -> None:
        self.conversations = conversations
        self.queue = queue
        self.logger, self.metrics = observe.logger, observe.metrics
        self.idempotency_ttl_seconds = idempotency_ttl_seconds
        # Tokens per caller per UTC day, and the budget checked before a turn calls the model.
        self.usage = usage or CallerUsage(conversations.store.objects, 0)

    def ledger(self, caller: str, session_id: str, deadline: Deadline) -> TurnLedger:
        return TurnLedger(self.conversations.store.records(caller, session_id, deadline))

    # ---- turns run now ---------------------------------------------------------------------
    def run(self, request: TurnRequest, deadline: Deadline, on_delta: Any = None) -> dict[str, Any]:
        """A turn; with an idempotency key, a retry replays the first reply instead of running again.
        The key's record is claimed in the round trip that opens the session, and marked done in
        the one that releases it."""
        self.logger.append_keys(session_id=request.session_id)  # on every line of this invocation
        if request.idempotency_key is None:
            return self._turn(request, deadline, on_delta)
        ledger, turn_id = self.ledger(request.caller, request.session_id, deadline), turn_id_for(request)
        ours: list[Entry] = []

        def claim() -> None:
            entry, mine = ledger.claim(turn_id, asked(request), "running", running_until(deadline))
            if not mine:
                raise AlreadyClaimed(entry)
            ours.append(entry)

        hooks = TurnHooks(checks=(claim,), on_stored=(lambda body: self._settle(ledger, ours[0], "done", reply=body),))
        try:
            return self._turn(request, deadline, on_delta, self._stop(ledger, turn_id), hooks)
        except AlreadyClaimed as claimed:
            if claimed.entry.status == "done":
                return dict(claimed.entry.document["reply"])
            raise in_progress() from None
        except CommitUnknown:
            raise  # left running until it expires: a retry must not run it while it may still land
        except TurnCancelled:
            self._end_cancelled(ledger, turn_id)
            raise
        except Exception as error:
            if ours:
                self._settle(ledger, ours[0], "failed", error=as_api_error(error).body()["error"])
            raise

    def _turn(self, request: TurnRequest, deadline: Deadline, on_delta: Any, stop: TurnStop | None = None,
              hooks: TurnHooks | None = None) -> dict[str, Any]:
        """The turn, with its path's work (``hooks``) and the caller's budget and token count
        sent beside the turn's own store requests (agent.TurnCallbacks). The path's checks come
        before the budget: a retry of a stored turn replays it even once the budget is spent."""
        hooks = hooks or TurnHooks()
        chat = ChatRequest(request.caller, request.session_id, request.message, request.interrupt_responses,
                           request.output_schema)

        def count(reply: Reply) -> None:
            self.usage.count(request.caller, request.session_id, reply.input_tokens, reply.output_tokens, deadline)

        before_release = hooks.before_release
        callbacks = TurnCallbacks(
            checks=(*hooks.checks, self._budget(request.caller, deadline)),
            on_stored=(count, *(lambda reply, work=work: work(reply_body(reply)) for work in hooks.on_stored)),
            before_release=(lambda reply: before_release(reply_body(reply))) if before_release else None,
            model_done=hooks.model_done)
        try:
            reply = self.conversations.chat(chat, deadline, on_delta, stop, callbacks)
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

    def _budget(self, caller: str, deadline: Deadline) -> Callable[[], None]:
        """The caller's budget, checked before the model is called (BudgetExceeded); no read without one."""
        return lambda: self.usage.check(caller, deadline)

    def _settle(self, ledger: TurnLedger, entry: Entry, status: str, **fields: Any) -> Entry | None:
        """The turn's end in its record. The turn's outcome is decided already: a record that
        cannot be written stays "running" until it expires (a retry then runs a failed turn, or
        waits on a done one), and the caller still gets the outcome."""
        expires_at = time.time() + self.idempotency_ttl_seconds if status == "done" else None
        try:
            return ledger.advance(entry, status, expires_at, **fields)
        except StoreUnavailable:
            self.logger.warning("the turn's end could not be recorded", extra={"turn_id": entry.turn_id})
            return None

    # ---- turns queued for a worker ---------------------------------------------------------
    def enqueue(self, request: TurnRequest, deadline: Deadline, connection: ConnectionRef | None = None,
                turn_id: str | None = None, announce: Callable[[Deadline], None] | None = None) -> dict[str, Any]:
        """Queue a long turn; its record says "queued" until a worker takes it.

        ``announce`` (the WebSocket's "accepted") is called just before the turn is queued, under
        the session's queueing lease: no frame of the turn can come before it, and a turn sent
        after it was announced is queued after it. A retry with the same idempotency key finds its
        turn (queued, running or done) instead of queueing another, unless it failed: then it is
        queued again. The record is claimed and the budget read in the round trip that takes the
        queueing lease; the message carries the record, so the worker need not read it first."""
        turn_id = turn_id or turn_id_for(request)
        turn = QueuedTurn(caller=request.caller, session_id=request.session_id, turn_id=turn_id,
                          message=request.message, idempotency_key=request.idempotency_key, connection=connection,
                          interrupt_responses=responses_of(request.interrupt_responses),
                          output_schema=request.output_schema)
        self.queue.check(turn)  # refused before anything is written or announced
        ledger = self.ledger(request.caller, request.session_id, deadline)
        ours: list[Entry] = []

        def claim() -> None:
            entry, mine = ledger.claim(turn_id, asked(request), "queued", None)
            if not mine:
                raise AlreadyClaimed(entry)
            ours.append(entry)

        try:
            with self.conversations.store.queueing(request.caller, request.session_id, deadline,
                                                   beside=(claim, self._budget(request.caller, deadline))) as bounded:
                if announce:
                    announce(bounded)
                queued = turn.model_copy(update={"queued_as": QueuedRecord(document=ours[0].document,
                                                                           etag=ours[0].etag)})
                self.queue.send(queued, bounded, attempt=ours[0].document["attempt"])
        except AlreadyClaimed as claimed:
            if announce:
                announce(deadline)
            return {**_status(claimed.entry), "session_id": request.session_id}
        except AgentError:
            if ours:  # refused (the budget, the queue): as if it had not been asked
                with suppress(StoreUnavailable):  # the refusal is the answer; a record left just expires
                    ledger.forget(ours[0])
            raise
        return {**_status(ours[0]), "session_id": request.session_id}

    def run_queued(self, turn: QueuedTurn, deadline: Deadline, on_delta: Any = None,
                   on_restart: Callable[[], None] | None = None,
                   on_reply: Callable[[dict[str, Any]], None] | None = None,
                   on_model_done: Callable[[], None] | None = None) -> dict[str, Any]:
        """A worker's turn: "running", then "done" with the reply, or "failed" with the error
        (raised as TurnFailed: final, the worker answers it). A redelivered turn that is done
        replays its reply. A turn whose record is gone was cancelled with its session: it never
        runs (checked again under the session's lease, so a DELETE that comes after this check
        still wins). A store that fails is not final: the error is raised as it is and SQS
        delivers the turn again; that attempt calls ``on_restart`` first, since what the failed
        one streamed is not the reply; after the last one, the dead-letter queue finalises it.

        ``on_reply`` gets the reply's body once the turn is stored, beside the record's "done"
        and before the session's lease is released (the reply frame); ``on_model_done`` once the
        model has written its last word (the deltas held back go out beside the commit).

        The first delivery marks the record "running" over the ETag the message carries, in the
        round trip that opens the session; any other (or a record changed since) reads it first."""
        ledger = self.ledger(turn.caller, turn.session_id, deadline)
        hooks = TurnHooks(before_release=on_reply, model_done=on_model_done)
        if turn.queued_as is not None:
            try:
                queued = Entry(turn.queued_as.document, turn.queued_as.etag)
                return self._run_recorded(turn, ledger, deadline, on_delta, hooks, queued, running=False)
            except RecordChanged:
                pass  # delivered again, or cancelled or deleted since it was queued: its record says which
        entry = self._take(ledger, turn, deadline, on_restart)
        if entry.status == "done":
            return dict(entry.document["reply"])
        return self._run_recorded(turn, ledger, deadline, on_delta, hooks, entry, running=True)

    def _run_recorded(self, turn: QueuedTurn, ledger: TurnLedger, deadline: Deadline, on_delta: Any,
                      hooks: TurnHooks, entry: Entry, running: bool) -> dict[str, Any]:
        """The queued turn and its record's end. ``entry`` is "running" already (``running``), or
        as it was queued: marked "running" beside the session's opening (RecordChanged when it is
        not as queued). A try after the session was busy reads the record beside its opening: a
        cancel (or a DELETE) that came while the turn waited ends it before the model is called."""
        request = TurnRequest(turn.caller, turn.session_id, turn.message or "",
                              interrupt_responses=answers_of(turn.interrupt_responses),
                              output_schema=turn.output_schema)
        marked, tries = [entry] if running else [], [0]

        def start() -> None:
            tries[0] += 1
            if not marked:
                advanced = ledger.advance(entry, "running", running_until(deadline))
                if advanced is None:
                    raise RecordChanged()
                marked.append(advanced)
            elif tries[0] > 1:
                self._still_wanted(ledger, turn.turn_id)

        hooks = TurnHooks(checks=(start,),
                          on_stored=(lambda body: self._settle(ledger, marked[0], "done", reply=body),),
                          before_release=hooks.before_release, model_done=hooks.model_done)
        store = self.conversations.store
        try:
            with store.only_while_recorded(turn.caller, turn.session_id, record_name(turn.turn_id)):
                reply = self._run_when_free(request, deadline, on_delta, self._stop(ledger, turn.turn_id), hooks)
        except RecordChanged:
            raise
        except SessionDeleted as deleted:
            raise TurnFailed(as_api_error(deleted)) from deleted
        except TurnCancelled as cancelled:
            self._end_cancelled(ledger, turn.turn_id)
            raise TurnFailed(CANCELLED) from cancelled
        except StoreUnavailable:
            raise
        except Exception as error:
            failure = as_api_error(error)
            if marked:
                self._settle(ledger, marked[0], "failed", error=failure.body()["error"])
            raise TurnFailed(failure) from error
        return reply

    @staticmethod
    def _still_wanted(ledger: TurnLedger, turn_id: str) -> None:
        """TurnCancelled or SessionDeleted when the turn's record says it is no longer to run."""
        entry = ledger.get(turn_id)
        if entry is None:
            raise SessionDeleted()
        if entry.status in STOPPING:
            raise TurnCancelled(CANCELLED.message)

    def _take(self, ledger: TurnLedger, turn: QueuedTurn, deadline: Deadline,
              on_restart: Callable[[], None] | None) -> Entry:
        """The turn's record, now "running" (or "done", to replay); TurnFailed when it is final."""
        for _ in range(3):
            entry = ledger.get(turn.turn_id)
            if entry is None or entry.document.get("message") != message_digest(asked(turn)):
                # Deleted with its session (or a message of a turn since cancelled so, and its key reused).
                raise TurnFailed(as_api_error(SessionDeleted()))
            if entry.status == "done":
                return entry
            if entry.status == "failed":  # delivered again after it ended
                raise TurnFailed(_api_error(entry.document.get("error")))
            if entry.status in STOPPING:  # cancelled while queued (or its worker died cancelling it)
                self._end_cancelled(ledger, turn.turn_id)
                raise TurnFailed(CANCELLED)
            if entry.status == "running" and on_restart:
                on_restart()
            running = ledger.advance(entry, "running", running_until(deadline))
            if running is not None:
                return running
        raise SessionBusy("The turn's record keeps changing; it will be delivered again.", retry_after=1)

    def _run_when_free(self, request: TurnRequest, deadline: Deadline, on_delta: Any, stop: TurnStop,
                       hooks: TurnHooks) -> dict[str, Any]:
        """A queued turn waits for its session instead of being refused: a synchronous POST may
        hold it, for its lease at most."""
        while True:
            try:
                return self._turn(request, deadline, on_delta, stop, hooks)
            except SessionBusy as busy:
                wait = min(float(busy.retry_after or 1), BUSY_POLL_SECONDS)
                if deadline.remaining() < wait + MIN_TURN_SECONDS:
                    raise
                time.sleep(wait)

    def finalise(self, turn: QueuedTurn, deadline: Deadline) -> ApiError | None:
        """A queued turn that reached the dead-letter queue: "failed" (turn_abandoned) if it had
        not ended; the error to tell its client, or None when it had ended already (or is gone)."""
        ledger = self.ledger(turn.caller, turn.session_id, deadline)
        for _ in range(3):
            entry = ledger.get(turn.turn_id)
            if entry is None or entry.status not in ("queued", "running", "cancelling") \
                    or entry.document.get("message") != message_digest(asked(turn)):
                return None
            if ledger.advance(entry, "failed", error=DEAD_LETTERED.body()["error"]) is not None:
                return DEAD_LETTERED
        raise SessionBusy("The turn's record keeps changing; it will be delivered again.", retry_after=1)

    def status(self, caller: str, session_id: str, turn_id: str, deadline: Deadline) -> dict[str, Any]:
        entry = self.ledger(caller, session_id, deadline).get(turn_id)
        if entry is None:
            raise TurnNotFound(f"Session {session_id} has no turn {turn_id}.")
        return {**_status(entry), "session_id": session_id}


    # ---- stopping a turn (DELETE .../turns/{turn_id}, cancelTurn) ----------------------------------
    def cancel(self, caller: str, session_id: str, turn_id: str, deadline: Deadline) -> dict[str, Any]:
        """A queued turn of the caller's never runs; a running one stops within about a second
        (TurnStop) and stores nothing; both end "cancelled". An ended turn is left as it is."""
        self.logger.append_keys(session_id=session_id)
        entry = self.ledger(caller, session_id, deadline).cancel(turn_id)
        if entry is None:
            raise TurnNotFound(f"Session {session_id} has no turn {turn_id}.")
        if entry.status in STOPPING:
            self.metrics.add_metric(name="TurnsCancelled", unit=MetricUnit.Count, value=1)
        return {**_status(entry), "session_id": session_id}

    def _stop(self, ledger: TurnLedger, turn_id: str) -> TurnStop:
        """The running turn reads its record to learn it was asked to stop."""

        def asked() -> bool:
            entry = ledger.get(turn_id)
            return entry is not None and entry.status in STOPPING

        return TurnStop(asked)

    def _end_cancelled(self, ledger: TurnLedger, turn_id: str) -> None:
        """A stopped turn's end in its record: "cancelled" (final; its key may run the turn again)."""
        try:
            for _ in range(3):
                entry = ledger.get(turn_id)
                if entry is None or entry.status not in ("running", "cancelling"):
                    return
                if ledger.advance(entry, "cancelled", error=CANCELLED.body()["error"]) is not None:
                    return
        except StoreUnavailable:
            pass
        self.logger.warning("the turn's cancellation could not be recorded", extra={"turn_id": turn_id})


class AlreadyClaimed(Exception):
    """The turn's idempotency key is another request's (queued, running or done): answered from its record."""

    def __init__(self, entry: Entry) -> None:
        super().__init__(entry.status)
        self.entry = entry


class RecordChanged(Exception):
    """A queued turn's record is not as it was queued: delivered again, cancelled, or deleted."""


class TurnFailed(Exception):
    """A queued turn ended with an error, recorded in its status: final, not to be retried."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _status(entry: Entry) -> dict[str, Any]:
    """What GET .../turns/{turn_id} shows of a record."""
    return {k: v for k, v in entry.document.items() if k in ("turn_id", "status", "created_at", "reply", "error")}


def _api_error(error: Any) -> ApiError:
    error = error if isinstance(error, dict) else {}
    return ApiError(500, str(error.get("code", "internal_error")), str(error.get("message", "The turn failed.")),
                    error.get("retry_after"))


def turn_id_for(request: TurnRequest) -> str:
    """A new turn's id; derived from the idempotency key when there is one."""
    return new_turn_id(request.caller, request.session_id, request.idempotency_key)
