"""Frames to one WebSocket connection, posted through API Gateway's management API (@connections).

The protocol, per turn: one ``accepted``; zero or more ``delta`` whose texts concatenated equal the
reply; then exactly one ``reply`` (the POST reply's fields) or one ``error`` (the HTTP API's codes).
A ``restart`` says the deltas so far are void: an attempt failed on the store after streaming, and
the turn runs again (SQS redelivered it).
Deltas are coalesced to about one frame per 100 ms while text flows (the first goes at once), and
every frame stays under API Gateway's 32 KB frame limit. A client that has gone away does not stop
the turn: frames stop, the turn is stored, and GET /messages shows it.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent import Deadline
from agent.aws_clients import AwsClients

from .schemas import ConnectionRef

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.1
# API Gateway's frame limit is 32 KB; the frame's other fields need a little of it.
MAX_FRAME_BYTES = 32 * 1024
MAX_TEXT_BYTES = 28 * 1024


def callback_url(request_context: dict[str, Any], configured: str | None, carried: str | None = None) -> str:
    """The management API endpoint of a connection: the configured one (WEBSOCKET_CALLBACK_URL),
    else the one a queued turn carries, else that of the API the event came from."""
    return configured or carried or f"https://{request_context['domainName']}/{request_context['stage']}"


class Frames:
    def __init__(self, clients: AwsClients, connection: ConnectionRef, session_id: str, turn_id: str | None,
                 deadline: Deadline, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients, self.connection, self.deadline, self.clock = clients, connection, deadline, clock
        self.head = {"session_id": session_id, **({"turn_id": turn_id} if turn_id else {})}
        self.pending = ""
        self.last_sent = float("-inf")
        self.gone = False
        self.timer: threading.Timer | None = None
        self.lock = threading.RLock()  # frames go out in order, from the turn and from the timer

    def accepted(self, deadline: Deadline | None = None) -> None:
        self._post({"type": "accepted", **self.head}, deadline)

    def restart(self) -> None:
        self._post({"type": "restart", **self.head})

    def delta(self, text: str) -> None:
        with self.lock:
            self.pending += text
            due = self.last_sent + COALESCE_SECONDS - self.clock()
            if due <= 0:
                self._send_pending()
            elif self.timer is None:
                self.timer = threading.Timer(due, self.flush)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        with self.lock:
            self._send_pending()

    def reply(self, body: dict[str, Any]) -> None:
        frame = {"type": "reply", "turn_id": self.head.get("turn_id"), **body}
        if len(_encoded(frame)) > MAX_FRAME_BYTES:
            # The deltas carried all of it; GET /sessions/{id}/turns/{turn_id} has it whole too.
            frame.update(reply=_fit(body["reply"], MAX_TEXT_BYTES), truncated=True)
        self._finish(frame)

    def error(self, error_body: dict[str, Any]) -> None:
        self._finish({"type": "error", **self.head, **error_body})

    def _finish(self, frame: dict[str, Any]) -> None:
        with self.lock:
            self._send_pending()
            self._post(frame)

    def _send_pending(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        while self.pending:
            text = _fit(self.pending, MAX_TEXT_BYTES)
            self.pending = self.pending[len(text):]
            self._post({"type": "delta", **self.head, "text": text})
        self.last_sent = self.clock()

    def _post(self, frame: dict[str, Any], deadline: Deadline | None = None) -> None:
        with self.lock:
            if self.gone:
                return
            client = self.clients.client("apigatewaymanagementapi", deadline or self.deadline,
                                         endpoint_url=self.connection.endpoint)
            try:
                client.post_to_connection(ConnectionId=self.connection.id, Data=_encoded(frame))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "GoneException" or \
                        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410:
                    logger.info("the client disconnected; the turn goes on without frames")
                    self.gone = True
                else:
                    logger.warning("a frame could not be posted: %s", error)
            except BotoCoreError as error:
                logger.warning("a frame could not be posted: %s", error)


def _encoded(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fit(text: str, max_bytes: int) -> str:
    """The longest head of ``text`` whose JSON string form fits ``max_bytes`` (at least one character)."""
    if len(text) * 6 <= max_bytes:  # no character takes more than 6 bytes in JSON ("\u001f")
        return text
    fits, longest = 1, len(text)  # a head's size grows with its length: search for the longest
    while fits < longest:
        middle = (fits + longest + 1) // 2
        if len(json.dumps(text[:middle], ensure_ascii=False).encode("utf-8")) - 2 <= max_bytes:
            fits = middle
        else:
            longest = middle - 1
    return text[:fits]
