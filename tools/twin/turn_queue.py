"""The turn queue: SQS FIFO as the template configures TurnQueue, and the two calls the function
makes to it in SQS's JSON protocol: SendMessage, and GetQueueAttributes for its RedrivePolicy
(which names the dead-letter queue, so that the worker knows a dead-lettered turn when it gets one).

botocore posts every SQS call to its endpoint (AWS_ENDPOINT_URL_SQS, ``<twin>/_aws/sqs``), with
the queue's URL in the JSON body and the operation in ``X-Amz-Target``. The answer carries the
body's MD5, which botocore checks.

The semantics the handler relies on: a message group (one per session) has at most one message
in flight, and its messages are received in the order they were sent; groups run in parallel;
a MessageDeduplicationId seen in the last 5 minutes, in the same group (DeduplicationScope
messageGroup), is accepted and dropped.
"""

import hashlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

PATH = "/_aws/sqs"
DEDUPLICATION_SECONDS = 300.0
MAX_BODY_BYTES = 1024 * 1024  # SQS's message size limit


@dataclass
class Message:
    id: str
    body: str
    group: str
    deduplication_id: str
    sequence_number: int
    md5: str
    receives: int = 0
    visible_at: float = 0.0


class FifoQueue:
    def __init__(self, name: str, on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic, redrive_policy: dict | None = None) -> None:
        self.name = name
        self.redrive_policy = redrive_policy  # {"deadLetterTargetArn", "maxReceiveCount"}, as SQS reports it
        self.on_change = on_change
        self.clock = clock
        self.groups: dict[str, deque[Message]] = {}
        self.in_flight: set[str] = set()  # groups whose head has been received and not yet deleted
        self.sent: dict[tuple[str, str], tuple[float, Message]] = {}
        self.sequence = 10_000_000_000_000_000_000

    def send(self, body: str, group: str, deduplication_id: str) -> Message:
        now = self.clock()
        self.sent = {key: value for key, value in self.sent.items() if now - value[0] < DEDUPLICATION_SECONDS}
        earlier = self.sent.get((group, deduplication_id))
        if earlier is not None:
            return earlier[1]  # accepted, not queued again
        self.sequence += 1
        message = Message(str(uuid.uuid4()), body, group, deduplication_id, self.sequence, md5_of(body))
        self.sent[(group, deduplication_id)] = (now, message)
        self.groups.setdefault(group, deque()).append(message)
        self.on_change()
        return message

    def receive(self) -> Message | None:
        """The oldest message at the head of a group with nothing in flight, now in flight."""
        now = self.clock()
        heads = [queue[0] for group, queue in self.groups.items()
                 if queue and group not in self.in_flight and queue[0].visible_at <= now]
        if not heads:
            return None
        message = min(heads, key=lambda m: m.sequence_number)
        message.receives += 1
        self.in_flight.add(message.group)
        return message

    def delete(self, message: Message) -> None:
        queue = self.groups.get(message.group)
        if queue and queue[0] is message:
            queue.popleft()
            if not queue:
                del self.groups[message.group]
        self.in_flight.discard(message.group)
        self.on_change()

    def release(self, message: Message, delay: float) -> None:
        """Visible again after ``delay``, still at its group's head (the group waits for it)."""
        message.visible_at = self.clock() + delay
        self.in_flight.discard(message.group)
        self.on_change()

    def seconds_to_next_visible(self) -> float | None:
        waiting = [q[0].visible_at for g, q in self.groups.items() if q and g not in self.in_flight]
        return max(0.0, min(waiting) - self.clock()) if waiting else None

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.groups.values())


def md5_of(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()  # noqa: S324 (SQS's checksum, not security)


class SqsApi:
    """SendMessage and GetQueueAttributes, in SQS's JSON protocol, on the turn queue (the dead-letter
    queue is the twin's alone: only its event source mapping reads it)."""

    def __init__(self, queue: FifoQueue, queue_url: str) -> None:
        self.queue = queue
        self.queue_url = queue_url

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.call)
        app.router.add_post(PATH + "/", self.call)

    async def call(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        try:
            params = json.loads(await request.read() or b"{}")
        except ValueError:
            return _error(400, "InvalidParameterValue", "The request body is not JSON.")
        operation = target.rsplit(".", 1)[-1] if target.startswith("AmazonSQS.") else ""
        if operation not in ("SendMessage", "GetQueueAttributes"):
            return _error(400, "UnsupportedOperation", "The twin's queue supports SendMessage and GetQueueAttributes "
                                                       f"only, not {operation or target or '(none)'}.")
        if not isinstance(params, dict) or params.get("QueueUrl", "").rstrip("/").split("/")[-1] != self.queue.name:
            return _error(400, "QueueDoesNotExist", "The specified queue does not exist.",
                          "AWS.SimpleQueueService.NonExistentQueue;Sender")
        return self.send_message(params) if operation == "SendMessage" else self.get_queue_attributes(params)

    def get_queue_attributes(self, params: dict) -> web.Response:
        """The attributes asked for that the twin keeps: RedrivePolicy (a JSON string, as SQS gives it)."""
        names = params.get("AttributeNames") or []
        attributes = {}
        if self.queue.redrive_policy is not None and ("RedrivePolicy" in names or "All" in names):
            attributes["RedrivePolicy"] = json.dumps(self.queue.redrive_policy)
        return web.json_response({"Attributes": attributes}, content_type="application/x-amz-json-1.0")

    def send_message(self, params: dict) -> web.Response:
        body, group, deduplication_id = (params.get(k)
                                         for k in ("MessageBody", "MessageGroupId", "MessageDeduplicationId"))
        if not isinstance(body, str) or not body:
            return _error(400, "MissingParameter", "The request must contain the parameter MessageBody.")
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            return _error(400, "InvalidParameterValue", f"One or more parameters are invalid. Reason: Message must be "
                                                        f"shorter than {MAX_BODY_BYTES} bytes.")
        if not isinstance(group, str) or not group:
            return _error(400, "MissingParameter", "The request must contain the parameter MessageGroupId.")
        if not isinstance(deduplication_id, str) or not deduplication_id:
            return _error(400, "InvalidParameterValue", "The queue should either have ContentBasedDeduplication "
                                                        "enabled or MessageDeduplicationId provided explicitly")
        message = self.queue.send(body, group, deduplication_id)
        return web.json_response({"MessageId": message.id, "MD5OfMessageBody": message.md5,
                                  "SequenceNumber": str(message.sequence_number)},
                                 content_type="application/x-amz-json-1.0")


def _error(status: int, code: str, message: str, query_error: str | None = None) -> web.Response:
    # botocore reads the code from __type (after the '#'); in query-compatible mode from the header.
    headers = {"x-amzn-query-error": query_error or f"{code};Sender"}
    return web.Response(status=status, text=json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}),
                        content_type="application/x-amz-json-1.0", headers=headers)
