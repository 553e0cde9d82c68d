"""The queue of long turns: WebSocket turns and `Prefer: respond-async` POSTs.

An HTTP API request must answer within 30 s; a worker invocation (TurnTimeout, up to 900 s) runs
these turns instead. The queue is SQS FIFO with one message group per session, so a session's
turns run in order, one at a time, and a message sent while a turn runs waits instead of being
refused. The turn id and its attempt (turn_ledger.py) are the deduplication id: a retried send
is not run twice, and a failed turn queued again under its key is not taken for a duplicate.

Its dead-letter queue (the queue's RedrivePolicy) feeds the worker too: what reaches it is
finalised (TurnService.finalise). The worker asks the queue for it once per container, so no
setting names it.
"""

import hashlib
import json
import threading

from botocore.exceptions import BotoCoreError, ClientError

from agent import Deadline, InvalidRequest, QueueUnavailable
from agent.aws_clients import AwsClients

from .schemas import QueuedTurn

# SQS takes a message of up to 256 KiB; a message of MAX_MESSAGE_CHARS characters may need more.
MAX_BODY_BYTES = 256 * 1024
# Kept for the turn's record, which the message carries once it is written (QueuedTurn.queued_as).
RECORD_BYTES = 1024
NOT_CONFIGURED = ("Long turns need the turn queue (TURN_QUEUE_URL), which this deployment does not have; "
                  "send the message without Prefer: respond-async.")


class TurnQueue:
    def __init__(self, clients: AwsClients, url: str | None) -> None:
        self.clients = clients
        self.url = url
        self._dead_letter_arn: str | None = None
        self._looked_up = threading.Event()

    def check(self, turn: QueuedTurn) -> str:
        """The turn's message body, once it is known that the queue can take it."""
        if not self.url:
            raise QueueUnavailable(NOT_CONFIGURED)
        body = turn.model_dump_json(exclude_none=True)
        size = len(body.encode("utf-8", "surrogatepass")) + (0 if turn.queued_as else RECORD_BYTES)
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f'"message" takes {size} bytes to queue; the turn queue takes {MAX_BODY_BYTES}. '
                                 "Send a shorter message.")
        return body

    def send(self, turn: QueuedTurn, deadline: Deadline, attempt: str = "") -> None:
        body = self.check(turn)
        deduplication_id = f"{turn.turn_id}.{attempt}" if attempt else turn.turn_id
        try:
            self.clients.client("sqs", deadline).send_message(
                QueueUrl=self.url, MessageBody=body,
                MessageGroupId=session_group(turn.caller, turn.session_id), MessageDeduplicationId=deduplication_id,
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailable("The turn could not be queued; nothing was stored. Retry.") from error

    def feeds(self, event_source_arn: str) -> bool:
        """Whether an SQS record came from this queue or its dead-letter queue, not a user's own."""
        return self.is_turn_queue(event_source_arn) or self.is_dead_letter_queue(event_source_arn)

    def is_turn_queue(self, event_source_arn: str) -> bool:
        """Same account and name as TURN_QUEUE_URL."""
        if not self.url or not isinstance(event_source_arn, str):
            return False
        return event_source_arn.split(":")[-2:] == self.url.rstrip("/").split("/")[-2:]

    def is_dead_letter_queue(self, event_source_arn: str) -> bool:
        if not self.url or not isinstance(event_source_arn, str) or self.is_turn_queue(event_source_arn):
            return False
        return event_source_arn == self._dead_letters()

    def _dead_letters(self) -> str | None:
        """The dead-letter queue's ARN from the turn queue's RedrivePolicy; asked once per container
        (a function that may not ask, AgentFunction, has none: its SQS events are a user's)."""
        if not self._looked_up.is_set():
            try:
                attributes = self.clients.client("sqs", Deadline.after(3.0)).get_queue_attributes(
                    QueueUrl=self.url, AttributeNames=["RedrivePolicy"])["Attributes"]
                self._dead_letter_arn = json.loads(attributes.get("RedrivePolicy", "{}")).get("deadLetterTargetArn")
            except (BotoCoreError, ClientError, ValueError):
                self._dead_letter_arn = None
            self._looked_up.set()
        return self._dead_letter_arn


def session_group(caller: str, session_id: str) -> str:
    """The FIFO message group: one per session of a caller (an SQS group id is 128 characters at most)."""
    return hashlib.sha256(f"{caller}\n{session_id}".encode("utf-8", "surrogatepass")).hexdigest()
