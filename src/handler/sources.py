"""The other ways the function is invoked: directly (Lambda Invoke, Step Functions, another
function), from a user's SQS queue, from EventBridge, and the expiry schedule. Each payload is
validated by the same field types as the HTTP API (schemas.py) and answered with its codes.

Callers: a direct invoker holds lambda:InvokeFunction, so it may name any caller; a queue or a
bus carries whatever anyone allowed to send there put in it, so their turns live in namespaces of
their own (``sqs``, ``eventbridge``).
"""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser import envelopes, parse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json, ValidationError

from agent import Deadline, InvalidRequest

from .callers import EVENTBRIDGE_CALLER, SQS_CALLER
from .error_table import error_result
from .schemas import FIELD_HINTS, DirectDelete, DirectHistory, DirectMemory, DirectTurn, TurnPayload, hint_for
from .turn_service import TurnRequest

if TYPE_CHECKING:
    from .composition import Services

EXPIRE_ACTION = "expire_idle_sessions"


class TurnRecord(SqsRecordModel):
    body: Json[TurnPayload]  # type: ignore[assignment]


class Sources:
    def __init__(self, services: "Services") -> None:
        self.services = services

    def direct(self, event: Any, deadline: Deadline) -> dict[str, Any]:
        """The answer object, or ``{"error": {"code", "message", ...}}`` as a result, not a Lambda failure."""
        action = event.get("action") if isinstance(event, dict) else None
        if action == EXPIRE_ACTION:
            return self.expire_idle_sessions(deadline)  # raises: the schedule's retries and alarms see it
        try:
            return self._direct(action, event, deadline)
        except Exception as error:
            return error_result(error)

    def _direct(self, action: Any, event: Any, deadline: Deadline) -> dict[str, Any]:
        conversations, turns = self.services.conversations, self.services.turns
        if not isinstance(event, dict):
            raise InvalidRequest('The event must be a JSON object like {"session_id": "...", "message": "..."}.')
        if action in (None, "send_message"):
            turn = validated(DirectTurn, {k: v for k, v in event.items() if k != "action"})
            return turns.run(TurnRequest(turn.caller, turn.session_id, turn.message, turn.idempotency_key), deadline)
        if action == "get_history":
            ask = validated(DirectHistory, event)
            page = conversations.history(ask.caller, ask.session_id, deadline, cursor=ask.cursor, limit=ask.limit)
            return {"session_id": page.session_id, "messages": [vars(m) for m in page.messages],
                    "next_cursor": page.next_cursor}
        if action == "delete_session":
            ask = validated(DirectDelete, event)
            conversations.delete(ask.caller, ask.session_id, deadline)
            return {"deleted": ask.session_id}
        if action in ("get_memory", "forget_fact", "forget_memory"):
            return self._memory(validated(DirectMemory, event), deadline)
        raise InvalidRequest(f"Unknown action {action!r}; use send_message (the default), get_history, "
                             "delete_session, get_memory, forget_fact, forget_memory or expire_idle_sessions.")

    def _memory(self, ask: DirectMemory, deadline: Deadline) -> dict[str, Any]:
        conversations = self.services.conversations
        if ask.action == "forget_memory":
            conversations.forget_everything(ask.caller, deadline)
        elif ask.action == "forget_fact":
            if ask.fact_id is None:
                raise InvalidRequest(FIELD_HINTS["fact_id"])
            conversations.forget(ask.caller, ask.fact_id, deadline)
        return {"facts": [vars(f) for f in conversations.facts(ask.caller, deadline)]}

    def expire_idle_sessions(self, deadline: Deadline) -> dict[str, Any]:
        deleted = self.services.conversations.expire_idle_sessions(deadline)
        return {"expired_sessions": len(deleted)}

    def sqs_batch(self, event: dict[str, Any], context: Any, deadline: Deadline) -> dict[str, Any]:
        """Failed records are reported back (partial batch response), so only they are retried, and
        reach the queue's DLQ if they keep failing. The SQS message id is the default idempotency
        key: a redelivered message replays its stored reply instead of appending the turn twice."""

        def turn(record: TurnRecord) -> dict[str, Any]:
            payload = record.body
            request = TurnRequest(SQS_CALLER, payload.session_id, payload.message,
                                  payload.idempotency_key or record.messageId)
            return self.services.turns.run(request, deadline)

        # All records failing is reported like some failing (each one retried, then to the DLQ).
        processor = BatchProcessor(event_type=EventType.SQS, model=TurnRecord, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=turn, processor=processor, context=context)

    def eventbridge(self, event: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """``detail`` is the turn; the event id is the default idempotency key. Failures raise, so
        Lambda's async retries and the OnFailure destination apply."""
        try:
            payload = parse(event=event, model=TurnPayload, envelope=envelopes.EventBridgeEnvelope)
        except ValidationError as error:
            raise InvalidRequest(hint_for(error)) from None
        request = TurnRequest(EVENTBRIDGE_CALLER, payload.session_id, payload.message,
                              payload.idempotency_key or event["id"])
        return self.services.turns.run(request, deadline)


def validated(model: Any, payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise InvalidRequest(hint_for(error)) from None
