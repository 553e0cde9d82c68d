"""Lambda's SQS event source mappings for the turn queue and its dead-letter queue: receive a
message, invoke TurnWorkerFunction with it (the event names the queue it came from), delete it
when it succeeded.

As the template configures TurnQueueSource and TurnDeadLetterSource: batch size 1,
ReportBatchItemFailures, at most as many turns at once as the worker has containers. A failed
message (reported in batchItemFailures, or a function error) is received again after a short
delay, up to 3 receives (the turn queue's maxReceiveCount); then SQS moves it to the dead-letter
queue, whose mapping hands it to the worker again, which finalises the turn (failed,
turn_abandoned, one error frame). Deployed, a message would come back after the queue's
visibility timeout (TurnTimeout + 30 s); the twin keeps the delay short so a retry is seen while
you watch. The dead-letter queue has no dead-letter queue of its own: deployed, a message its
worker keeps failing is delivered again until the queue's retention (14 days) ends; the twin
stops after 3 receives there too, and says so.
"""

import asyncio
import contextlib
import json
from typing import Any

from .containers import Outcome, Pool
from .events import sqs_event
from .terminal import Terminal, short_turn_id
from .turn_queue import FifoQueue, Message

MAX_RECEIVES = 3
REDELIVERY_SECONDS = 2.0


class TurnPoller:
    def __init__(self, queue: FifoQueue, pool: Pool, queue_arn: str, terminal: Terminal,
                 redelivery_seconds: float = REDELIVERY_SECONDS, dead_letter_queue: FifoQueue | None = None) -> None:
        self.queue, self.pool, self.queue_arn, self.terminal = queue, pool, queue_arn, terminal
        self.redelivery_seconds = redelivery_seconds
        self.dead_letter_queue = dead_letter_queue  # None: this poller reads the dead-letter queue
        self.changed = asyncio.Event()
        self.slots = asyncio.Semaphore(pool.function.containers)
        self.dead_letters: list[Message] = []
        self.tasks: set[asyncio.Task] = set()
        queue.on_change = self.changed.set

    async def run(self) -> None:
        while True:
            await self.slots.acquire()
            message = await self._next()
            task = asyncio.create_task(self._deliver(message))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _next(self) -> Message:
        while True:
            self.changed.clear()
            message = self.queue.receive()
            if message is not None:
                return message
            with contextlib.suppress(TimeoutError):  # a delayed message became visible: receive again
                await asyncio.wait_for(self.changed.wait(), self.queue.seconds_to_next_visible())

    async def _deliver(self, message: Message) -> None:
        try:
            record = {"id": message.id, "body": message.body, "group": message.group, "md5": message.md5,
                      "receive_count": message.receives, "receipt": f"{message.id}#{message.receives}"}
            outcome = await self.pool.invoke(sqs_event([record], self.queue_arn))
            self._settle(message, outcome)
        finally:
            self.slots.release()

    def _settle(self, message: Message, outcome: Outcome) -> None:
        turn = _turn_of(message)
        what = f"turn {short_turn_id(turn['turn_id'])}" if "turn_id" in turn else f"message {message.id[:8]}…"
        if self.dead_letter_queue is None:
            what = f"dead-lettered {what}"
        reason = _failure(message, outcome)
        if reason is None:
            self.queue.delete(message)
            self.terminal.request(what, "done", outcome.seconds, turn.get("session_id"))
        elif message.receives >= MAX_RECEIVES:
            self.queue.delete(message)
            self.terminal.request(what, "failed", outcome.seconds, turn.get("session_id"),
                                  f"{reason}; received {message.receives} times: {self._dead_letter(message)}")
        else:
            self.queue.release(message, self.redelivery_seconds)
            self.terminal.request(what, "failed", outcome.seconds, turn.get("session_id"),
                                  f"{reason}; receive {message.receives} of {MAX_RECEIVES}, "
                                  f"again in {self.redelivery_seconds:g} s")


    def _dead_letter(self, message: Message) -> str:
        """What SQS does with a message received MAX_RECEIVES times, said for the terminal."""
        if self.dead_letter_queue is None:
            return "given up (deployed, it would be delivered again until the queue's retention ends)"
        self.dead_letters.append(message)
        self.dead_letter_queue.send(message.body, message.group, message.deduplication_id)
        return f"moved to the dead-letter queue ({len(self.dead_letters)} so far)"


def _failure(message: Message, outcome: Outcome) -> str | None:
    """Why the message counts as failed, as Lambda reads a partial batch response; None if it
    succeeded."""
    if outcome.failed:
        error = outcome.error or {}
        return f"{error.get('errorType')}: {error.get('errorMessage')}"
    result = outcome.result
    if result is None:
        return None
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if failures is None:
        return None
    if not isinstance(failures, list):
        return "malformed batchItemFailures"
    if any(isinstance(f, dict) and f.get("itemIdentifier") == message.id for f in failures):
        return "reported in batchItemFailures"
    if failures:  # an identifier that is not in the batch fails the whole batch
        return "batchItemFailures names another message"
    return None


def _turn_of(message: Message) -> dict[str, Any]:
    """The queued turn's ids, for the terminal line only."""
    try:
        body = json.loads(message.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
