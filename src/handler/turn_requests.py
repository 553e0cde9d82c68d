"""Every source's turn becomes a TurnRequest here, through the one model `schemas.TurnIn`.

HTTP (sync and `Prefer: respond-async`), a WebSocket sendMessage, a direct invocation, SQS and
EventBridge each name their fields (the caller is theirs to decide) and call `turn_request`: a
message that is missing, not a string, empty, blank, longer than MAX_MESSAGE_CHARS or not valid
Unicode text is refused with the same `invalid_request` sentence from every one of them, before
anything is queued or written. (A queued turn too large for SQS is refused by the turn queue,
also before anything is written.)
"""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agent import InvalidRequest

from .approvals import answers_of
from .schemas import LIMIT, TurnIn, hint_for
from .turn_service import TurnRequest


def turn_request(fields: Mapping[str, Any], max_message_chars: int) -> TurnRequest:
    """A source's turn fields as a TurnRequest, or InvalidRequest naming the first thing wrong."""
    try:
        turn = TurnIn.model_validate(fields, context={LIMIT: max_message_chars})
    except ValidationError as error:
        raise InvalidRequest(hint_for(error)) from None
    return TurnRequest(turn.caller, turn.session_id, turn.message or "", turn.idempotency_key,
                       answers_of(turn.interrupt_responses), turn.output_schema)
