"""The worker: runs the turns of the turn queue (TurnWorkerFunction, timeout TurnTimeout; its
Lambda handler is worker_app.py).

Each turn streams its deltas to its WebSocket connection, if it has one, and ends with one reply
or error frame; its status record (GET /sessions/{id}/turns/{turn_id}) says how it ended. A turn
that fails for a reason a retry cannot fix (the model, the input) is consumed: its status says
"failed". One that failed because the store did is reported back to SQS, which redelivers it
(then its dead-letter queue).
"""

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json

from agent import Deadline
from agent.aws_clients import AwsClients

from .deadlines import deadline_of
from .frames import Frames, callback_url
from .observability import Observability, observed
from .schemas import QueuedTurn
from .turn_service import TurnFailed, TurnService


class QueuedTurnRecord(SqsRecordModel):
    body: Json[QueuedTurn]


class Worker:
    def __init__(self, turns: TurnService, clients: AwsClients, configured_callback_url: str | None) -> None:
        self.turns, self.clients, self.configured_callback_url = turns, clients, configured_callback_url

    def handle(self, event: dict[str, Any], context: Any, deadline: Deadline) -> Mapping[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS, model=QueuedTurnRecord,
                                   raise_on_entire_batch_failure=False)
        dead = self.turns.queue.is_dead_letter_queue(event["Records"][0].get("eventSourceARN"))
        step = self.dead_letter if dead else self.turn
        return process_partial_response(event=event, record_handler=lambda record: step(record.body, deadline),
                                        processor=processor, context=context)

    def dead_letter(self, turn: QueuedTurn, deadline: Deadline) -> None:
        """A turn that failed on every delivery: finalised (failed, turn_abandoned) and its one error frame."""
        error = self.turns.finalise(turn, deadline)
        if error is not None and turn.connection is not None:
            self._frames(turn, deadline).error(error.body())

    def turn(self, turn: QueuedTurn, deadline: Deadline) -> dict[str, Any] | None:
        frames = self._frames(turn, deadline) if turn.connection is not None else None
        try:
            reply = self.turns.run_queued(turn, deadline, frames.delta if frames else None,
                                          frames.restart if frames else None, frames.reply if frames else None,
                                          frames.model_done if frames else None)
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
            frames.reply(reply)  # a replayed reply; one the turn stored went out with its commit
        return reply

    def _frames(self, turn: QueuedTurn, deadline: Deadline) -> Frames:
        assert turn.connection is not None
        # The configured endpoint (this stack's WebSocket API) wins over the one the message
        # carries: whoever can send to the queue cannot point the worker's requests elsewhere.
        connection = turn.connection.model_copy(update={"endpoint": callback_url(
            {}, self.configured_callback_url, turn.connection.endpoint)})
        return Frames(self.clients, connection, turn.session_id, turn.turn_id, deadline)


def worker_handler(worker: Worker, observe: Observability) -> Callable[[Any, Any], Any]:
    """TurnWorkerFunction's Lambda handler (worker_app.py). Failures raise or are reported per
    record (partial batch response): SQS redelivers them, then moves them to the dead-letter queue."""
    return observed(observe, lambda event, context: worker.handle(event, context, deadline_of(context)))
