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
from .turns import conversations, run_turn, settings

DIRECT_CALLER = "direct"
EXPIRE_ACTION = "expire_idle_sessions"


def direct(event: Any) -> dict[str, Any]:
    """A direct invocation: the reply object, or ``{"error": {"code", "message", ...}}``."""
    try:
        if isinstance(event, dict) and event.get("action") == EXPIRE_ACTION:
            return expire_idle_sessions()
        return run_turn(_request(event, default_key=None))
    except Exception as error:
        return error_body(as_api_error(error))


def expire_idle_sessions() -> dict[str, Any]:
    deleted = conversations.expire_idle_sessions()
    logger.info("expired idle sessions", extra={"deleted": len(deleted)})
    return {"expired_sessions": len(deleted)}


def sqs_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS: each record's body is a direct-invocation object. Failed records are reported back
    (partial batch response) so only they are retried, and reach the queue's DLQ if they keep
    failing. The SQS message id is the default idempotency key: a redelivered message replays
    its stored reply instead of appending the turn twice."""
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=_sqs_record, processor=processor, context=context)


def _sqs_record(record: SQSRecord) -> dict[str, Any]:
    try:
        body = json.loads(record.body)
    except ValueError:
        raise InvalidRequest("The SQS message body must be a JSON object.") from None
    return run_turn(_request(body, default_key=record.message_id))


def eventbridge(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event whose ``detail`` is a direct-invocation object. The event id is the
    default idempotency key. Failures raise, so Lambda's async retries and DLQ apply."""
    result = run_turn(_request(event.get("detail"), default_key=event.get("id")))
    return result


def _request(payload: Any, default_key: str | None):
    if not isinstance(payload, dict):
        raise InvalidRequest('The event must be a JSON object like {"session_id": "...", "message": "..."}.')
    caller = payload.get("caller", DIRECT_CALLER)
    if not isinstance(caller, str) or not caller.strip() or len(caller) > 512:
        raise InvalidRequest('"caller" must be a non-empty string of at most 512 characters.')
    return turn_request(
        caller=caller,
        session_id=payload.get("session_id"),
        body=payload,
        max_chars=settings.max_message_chars,
        idempotency_key=payload.get("idempotency_key", default_key),
    )
