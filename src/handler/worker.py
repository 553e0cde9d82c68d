"""The worker invocation: runs the turns of the turn queue (TurnWorkerFunction, timeout TurnTimeout).

Each turn streams its deltas to its WebSocket connection, if it has one, and ends with one reply
or error frame; its status record (GET /sessions/{id}/turns/{turn_id}) says how it ended. A turn
that fails for a reason a retry cannot fix (the model, the input) is consumed: its status says
"failed". One that failed because the store did is reported back to SQS, which redelivers it
(then its dead-letter queue).
"""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json

from agent import Deadline

from .frames import Frames, callback_url
from .schemas import QueuedTurn
from .turn_service import TurnFailed

if TYPE_CHECKING:
    from .composition import Services


class QueuedTurnRecord(SqsRecordModel):
    body: Json[QueuedTurn]  # type: ignore[assignment]


class Worker:
    def __init__(self, services: "Services") -> None:
        self.services = services

    def handle(self, event: dict[str, Any], context: Any, deadline: Deadline) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS, model=QueuedTurnRecord,
                                   raise_on_entire_batch_failure=False)
        dead = self.services.queue.is_dead_letter_queue(event["Records"][0].get("eventSourceARN"))
        step = self.dead_letter if dead else self.turn
        return process_partial_response(event=event, record_handler=lambda record: step(record.body, deadline),
                                        processor=processor, context=context)

    def dead_letter(self, turn: QueuedTurn, deadline: Deadline) -> None:
        """A turn that failed on every delivery: finalised (failed, turn_abandoned) and its one error frame."""
        error = self.services.turns.finalise(turn, deadline)
        if error is not None and turn.connection is not None:
            self._frames(turn, deadline).error(error.body())

    def turn(self, turn: QueuedTurn, deadline: Deadline) -> dict[str, Any] | None:
        frames = self._frames(turn, deadline) if turn.connection is not None else None
        try:
            reply = self.services.turns.run_queued(turn, deadline, frames.delta if frames else None,
                                                   frames.restart if frames else None)
        except TurnFailed as failed:  # final: its one error frame
            if frames:
                frames.error(failed.error.body())
            return None
        except BaseException:
            if frames:  # what was streamed goes now, not from a timer in some later invocation
                frames.flush()
            raise
        # Anything else (the store failing) goes back to SQS, which delivers the turn again: no
        # error frame, so the client still gets exactly one reply or error (after a "restart").
        if frames:
            frames.reply(reply)
        return reply

    def _frames(self, turn: QueuedTurn, deadline: Deadline) -> Frames:
        assert turn.connection is not None
        # The configured endpoint (this stack's WebSocket API) wins over the one the message
        # carries: whoever can send to the queue cannot point the worker's requests elsewhere.
        connection = turn.connection.model_copy(update={"endpoint": callback_url(
            {}, self.services.settings.websocket_callback_url, turn.connection.endpoint)})
        return Frames(self.services.clients, connection, turn.session_id, turn.turn_id, deadline)
