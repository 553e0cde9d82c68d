"""The other ways the function is invoked: directly (Lambda Invoke, Step Functions, another
function), from SQS, from EventBridge, and the expiry schedule. Each turns its event into the
same TurnRequest the HTTP API builds, and shares its validation and error codes.
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent import InvalidRequest

from .errors import as_api_error, error_body
from .observability import logger
from .requests import turn_request
from .turns import conversations, run_turn, seconds_left, settings

# The namespaces of callers that are not a signed-in HTTP user. Only a direct invoker (who holds
# lambda:InvokeFunction) may name another caller; a queue or a bus carries whatever anyone with
# sqs:SendMessage or events:PutEvents put there, so its turns live in a namespace of their own.
DIRECT_CALLER = "direct"
SQS_CALLER = "sqs"
EVENTBRIDGE_CALLER = "eventbridge"
EXPIRE_ACTION = "expire_idle_sessions"


def direct(event: Any) -> dict[str, Any]:
    """A direct invocation: the reply object, or ``{"error": {"code", "message", ...}}``."""
    if isinstance(event, dict) and event.get("action") == EXPIRE_ACTION:
        return expire_idle_sessions()
    try:
        return run_turn(_request(event, default_key=None, caller=_named_caller(event)))
    except Exception as error:
        return error_body(as_api_error(error))


def expire_idle_sessions() -> dict[str, Any]:
    """The scheduled sweep. It raises on failure, so the schedule's retries and alarms see it."""
    deleted = conversations.expire_idle_sessions(seconds_left=seconds_left())
    logger.info("expired idle sessions", extra={"deleted": len(deleted)})
    return {"expired_sessions": len(deleted)}


def sqs_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS: each record's body is a direct-invocation object. Failed records are reported back
    (partial batch response) so only they are retried, and reach the queue's DLQ if they keep
    failing. The SQS message id is the default idempotency key: a redelivered message replays
    its stored reply instead of appending the turn twice."""
    # All records failing is reported like some failing (each one retried, then to the DLQ).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=_sqs_record, processor=processor, context=context)


def _sqs_record(record: SQSRecord) -> dict[str, Any]:
    try:
        body = json.loads(record.body)
    except ValueError:
        raise InvalidRequest("The SQS message body must be a JSON object.") from None
    return run_turn(_request(body, default_key=record.message_id, caller=SQS_CALLER))


def eventbridge(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event whose ``detail`` is a direct-invocation object. The event id is the
    default idempotency key. Failures raise, so Lambda's async retries and DLQ apply."""
    return run_turn(_request(event.get("detail"), default_key=event.get("id"), caller=EVENTBRIDGE_CALLER))


def _named_caller(event: Any) -> str:
    caller = event.get("caller", DIRECT_CALLER) if isinstance(event, dict) else DIRECT_CALLER
    if not isinstance(caller, str) or not caller.strip() or len(caller) > 512:
        raise InvalidRequest('"caller" must be a non-empty string of at most 512 characters.')
    return caller


def _request(payload: Any, default_key: str | None, caller: str):
    if not isinstance(payload, dict):
        raise InvalidRequest('The event must be a JSON object like {"session_id": "...", "message": "..."}.')
    if caller != payload.get("caller", caller):
        raise InvalidRequest('"caller" may only be set by a direct invocation.')
    return turn_request(
        caller=caller,
        session_id=payload.get("session_id"),
        body=payload,
        max_chars=settings.max_message_chars,
        idempotency_key=payload.get("idempotency_key", default_key),
    )
