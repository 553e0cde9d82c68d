"""The queue of long turns: WebSocket turns and `Prefer: respond-async` POSTs.

An HTTP API request must answer within 30 s; a worker invocation (TurnTimeout, up to 900 s) runs
these turns instead. The queue is SQS FIFO with one message group per session, so a session's
turns run in order, one at a time, and a message sent while a turn runs waits instead of being
refused. The turn id is the deduplication id: a retried send is not run twice.
"""

import hashlib

from botocore.exceptions import BotoCoreError, ClientError

from agent import Deadline, InvalidRequest, QueueUnavailable
from agent.aws_clients import AwsClients

from .schemas import QueuedTurn

# SQS takes a message of up to 256 KiB; a message of MAX_MESSAGE_CHARS characters may need more.
MAX_BODY_BYTES = 256 * 1024
NOT_CONFIGURED = ("Long turns need the turn queue (TURN_QUEUE_URL), which this deployment does not have; "
                  "send the message without Prefer: respond-async.")


class TurnQueue:
    def __init__(self, clients: AwsClients, url: str | None) -> None:
        self.clients = clients
        self.url = url

    def check(self, turn: QueuedTurn) -> str:
        """The turn's message body, once it is known that the queue can take it."""
        if not self.url:
            raise QueueUnavailable(NOT_CONFIGURED)
        body = turn.model_dump_json(exclude_none=True)
        size = len(body.encode("utf-8", "surrogatepass"))
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f'"message" takes {size} bytes to queue; the turn queue takes {MAX_BODY_BYTES}. '
                                 "Send a shorter message.")
        return body

    def send(self, turn: QueuedTurn, deadline: Deadline) -> None:
        body = self.check(turn)
        try:
            self.clients.client("sqs", deadline).send_message(
                QueueUrl=self.url, MessageBody=body,
                MessageGroupId=session_group(turn.caller, turn.session_id), MessageDeduplicationId=turn.turn_id,
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueUnavailable("The turn could not be queued; nothing was stored. Retry.") from error

    def feeds(self, event_source_arn: str) -> bool:
        """Whether an SQS record came from this queue (same account and name), not a user's own."""
        if not self.url or not isinstance(event_source_arn, str):
            return False
        return event_source_arn.split(":")[-2:] == self.url.rstrip("/").split("/")[-2:]


def session_group(caller: str, session_id: str) -> str:
    """The FIFO message group: one per session of a caller (an SQS group id is 128 characters at most)."""
    return hashlib.sha256(f"{caller}\n{session_id}".encode("utf-8", "surrogatepass")).hexdigest()
