"""The worker invocation: runs the turns of the turn queue (TurnWorkerFunction, timeout TurnTimeout).

Each turn streams its deltas to its WebSocket connection, if it has one, and ends with one reply
or error frame; its status record (GET /sessions/{id}/turns/{turn_id}) says how it ended. A turn
that fails for a reason a retry cannot fix (the model, the input) is consumed: its status says
"failed". One that could not even record that (the store is down) is reported back to SQS, which
redelivers it (then its dead-letter queue).
"""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json

from agent import AgentError, Deadline, StoreUnavailable

from .error_table import as_api_error
from .frames import Frames
from .schemas import QueuedTurn

if TYPE_CHECKING:
    from .composition import Services


class QueuedTurnRecord(SqsRecordModel):
    body: Json[QueuedTurn]  # type: ignore[assignment]


class Worker:
    def __init__(self, services: "Services") -> None:
        self.services = services

    def handle(self, event: dict[str, Any], context: Any, deadline: Deadline) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS, model=QueuedTurnRecord, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=lambda record: self.turn(record.body, deadline),
                                        processor=processor, context=context)

    def turn(self, turn: QueuedTurn, deadline: Deadline) -> dict[str, Any] | None:
        frames = None
        if turn.connection is not None:
            frames = Frames(self.services.clients, turn.connection, turn.session_id, turn.turn_id, deadline)
        try:
            reply = self.services.turns.run_queued(turn, deadline, frames.delta if frames else None)
        except Exception as error:
            if frames:
                frames.error(as_api_error(error).body())
            if isinstance(error, StoreUnavailable) or not isinstance(error, AgentError):
                raise  # SQS redelivers it
            return None
        if frames:
            frames.reply(reply)
        return reply
