"""The other ways the function is invoked: directly (Lambda Invoke, Step Functions, another
function), from a user's SQS queue, from EventBridge, and the expiry schedule. A turn from any of
them is validated by the one model every source uses (turn_requests.py); the other actions by
the same field types as the HTTP API (schemas.py). Answered with the API's codes.

Callers: a direct invoker holds lambda:InvokeFunction, so it may name any caller; a queue or a
bus carries whatever anyone allowed to send there put in it, so their turns live in namespaces of
their own (``sqs``, ``eventbridge``).
"""

import json
import logging
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from agent import CallerMemory, Conversations, Deadline, InvalidRequest

from .callers import DIRECT_CALLER, EVENTBRIDGE_CALLER, SQS_CALLER
from .error_table import as_api_error, error_result
from .schemas import FIELD_HINTS, DirectCancel, DirectDelete, DirectHistory, DirectMemory, DirectUsage, hint_for
from .session_list_routes import DIRECT_ACTIONS, DirectSessions, direct_sessions
from .turn_requests import turn_request
from .turn_service import TurnRequest, TurnService
from .usage_routes import usage_body

logger = logging.getLogger(__name__)
EXPIRE_ACTION = "expire_idle_sessions"
NOT_AN_OBJECT = 'The turn must be a JSON object like {"session_id": "...", "message": "..."}.'


class Sources:
    def __init__(self, turns: TurnService, conversations: Conversations, memory: CallerMemory,
                 max_message_chars: int) -> None:
        self.turns, self.conversations, self.memory = turns, conversations, memory
        self.max_message_chars = max_message_chars

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
        conversations = self.conversations
        if not isinstance(event, dict):
            raise InvalidRequest(NOT_AN_OBJECT)
        if action in (None, "send_message"):
            fields = {k: v for k, v in event.items() if k != "action"}
            request = turn_request({**fields, "caller": event.get("caller", DIRECT_CALLER)}, self.max_message_chars)
            return self.turns.run(request, deadline)
        if action == "get_history":
            ask = validated(DirectHistory, event)
            page = conversations.history(ask.caller, ask.session_id, deadline, cursor=ask.cursor, limit=ask.limit)
            return {"session_id": page.session_id, "messages": [m.fields() for m in page.messages],
                    "next_cursor": page.next_cursor}
        if action == "delete_session":
            ask = validated(DirectDelete, event)
            conversations.delete(ask.caller, ask.session_id, deadline)
            return {"deleted": ask.session_id}
        if action in DIRECT_ACTIONS:
            return direct_sessions(conversations.store, validated(DirectSessions, event), deadline)
        if action in ("get_memory", "forget_fact", "forget_memory"):
            return self._memory(validated(DirectMemory, event), deadline)
        if action in ("get_usage", "cancel_turn"):
            return self._spend(action, event, deadline)
        raise InvalidRequest(f"Unknown action {action!r}; use send_message (the default), get_history, "
                             "delete_session, get_memory, forget_fact, forget_memory, list_sessions, get_session, "
                             "rename_session, get_usage, cancel_turn or expire_idle_sessions.")

    def _spend(self, action: str, event: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """get_usage: GET /usage's body; cancel_turn: DELETE .../turns/{turn_id}'s."""
        if action == "get_usage":
            return usage_body(self.turns.usage, validated(DirectUsage, event).caller, deadline)
        ask = validated(DirectCancel, event)
        return self.turns.cancel(ask.caller, ask.session_id, ask.turn_id, deadline)

    def _memory(self, ask: DirectMemory, deadline: Deadline) -> dict[str, Any]:
        memory = self.memory
        if ask.action == "forget_memory":
            memory.forget_everything(ask.caller, deadline)
        elif ask.action == "forget_fact":
            if ask.fact_id is None:
                raise InvalidRequest(FIELD_HINTS["fact_id"])
            memory.forget(ask.caller, ask.fact_id, deadline)
        return {"enabled": memory.enabled, "facts": [vars(f) for f in memory.facts(ask.caller, deadline)]}

    def expire_idle_sessions(self, deadline: Deadline) -> dict[str, Any]:
        deleted = self.conversations.expire_idle_sessions(deadline)
        return {"expired_sessions": len(deleted)}

    def sqs_batch(self, event: dict[str, Any], context: Any, deadline: Deadline) -> Mapping[str, Any]:
        """Failed records are reported back (partial batch response), so only they are retried, and
        reach the queue's DLQ if they keep failing. The SQS message id is the default idempotency
        key: a redelivered message replays its stored reply instead of appending the turn twice."""

        def turn(record: SQSRecord) -> dict[str, Any]:
            try:
                payload = json.loads(record.body)
            except ValueError:
                payload = None
            request = self._bus_turn(payload, SQS_CALLER, record.message_id, f"SQS message {record.message_id}")
            return self.turns.run(request, deadline)

        # All records failing is reported like some failing (each one retried, then to the DLQ).
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=turn, processor=processor, context=context)

    def eventbridge(self, event: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """``detail`` is the turn; the event id is the default idempotency key. Failures raise, so
        Lambda's async retries and the OnFailure destination apply."""
        bus_event = EventBridgeEvent(event)
        event_id = bus_event.get("id")
        request = self._bus_turn(bus_event.get("detail"), EVENTBRIDGE_CALLER, event_id, f"EventBridge event {event_id}")
        return self.turns.run(request, deadline)

    def _bus_turn(self, payload: Any, caller: str, default_key: str | None, what: str) -> TurnRequest:
        """A turn from a queue or a bus: they cannot pick a caller, since anyone allowed to send to
        them could then act as any user. Refused ones are logged: nobody is waiting for an answer."""
        try:
            if not isinstance(payload, dict):
                raise InvalidRequest(NOT_AN_OBJECT)
            if "caller" in payload:
                raise InvalidRequest('"caller" may only be set by a direct invocation.')
            key = payload.get("idempotency_key")
            return turn_request({**payload, "caller": caller, "idempotency_key": default_key if key is None else key},
                                self.max_message_chars)
        except InvalidRequest as error:
            refused = as_api_error(error)
            logger.warning("%s refused: %s %s", what, refused.code, refused.message)
            raise


def validated(model: Any, payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise InvalidRequest(hint_for(error)) from None
