"""Frames to one WebSocket connection, posted through API Gateway's management API (@connections).

The protocol, per turn: one ``accepted``; zero or more ``delta`` whose texts concatenated equal the
reply; then exactly one ``reply`` (the POST reply's fields) or one ``error`` (the HTTP API's codes).
A ``restart`` says the deltas so far are void: an attempt failed on the store after streaming, and
the turn runs again (SQS redelivered it).

Every frame carries ``seq``: ``accepted`` is 0, the worker's frames count 1, 2, ... and a
``restart`` starts that count again (a new attempt, a new invocation). A post that botocore tries
again after a read timeout can reach the client twice: a client drops a frame of a turn whose seq
it has seen on that connection since the turn's last restart.

Frames leave through a sender thread fed by a queue (aws-samples/bedrock-chat's pattern): the
model's stream only appends to it and never waits on a post, however slow @connections is. Deltas
are coalesced to about one frame per 100 ms while text flows (the first goes at once, and text that
came while a post was slow goes in the next one), and every frame stays under API Gateway's 32 KB
frame limit. The turn's last frame (``reply`` or ``error``, or ``flush``) waits until everything is
posted, bounded by the invocation's deadline: Lambda freezes the process once the handler returns.
A client that has gone away (410) stops the sender, not the turn: the turn is stored, and
GET /messages shows it.
"""

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent import Deadline
from agent.aws_clients import AwsClients

from .schemas import ConnectionRef

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.1
IDLE_SECONDS = 1.0  # a sender with nothing to post waits this long for more before its thread ends
# API Gateway's frame limit is 32 KB; the frame's other fields need a little of it.
MAX_FRAME_BYTES = 32 * 1024
MAX_TEXT_BYTES = 28 * 1024
LAST_FRAMES = ("reply", "error")
# Past the deadline the last frame still gets one short post (AwsClients' minimal tier: 0.3 s),
# inside the answer margin the handler keeps before Lambda's timeout.
LAST_WORD_SECONDS = 0.5


def callback_url(request_context: dict[str, Any], configured: str | None, carried: str | None = None) -> str:
    """The management API endpoint of a connection: the configured one (WEBSOCKET_CALLBACK_URL),
    else the one a queued turn carries, else that of the API the event came from."""
    return configured or carried or f"https://{request_context['domainName']}/{request_context['stage']}"


class Frames:
    """The frames of one turn (or one refusal) to one connection, in order."""

    def __init__(self, clients: AwsClients, connection: ConnectionRef, session_id: str | None, turn_id: str | None,
                 deadline: Deadline, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients, self.connection, self.deadline, self.clock = clients, connection, deadline, clock
        self.head = {"session_id": session_id, **({"turn_id": turn_id} if turn_id else {})}
        self.seq = 1  # 0 is "accepted"'s
        self.pending = ""  # deltas not yet in a frame
        self.outbox: deque[tuple[dict[str, Any], Deadline]] = deque()
        self.last_sent = float("-inf")
        self.posting = False
        self.gone = False  # the client went away, or the invocation stopped waiting: post nothing more
        self.finished = False
        self.sender: threading.Thread | None = None
        self.changed = threading.Condition()

    # ---- what the turn says ---------------------------------------------------------------------
    def accepted(self, deadline: Deadline | None = None) -> None:
        """Posted before this returns: the turn is queued only once the client has been told."""
        bounded = deadline or self.deadline
        self._queue({"type": "accepted", **self.head, "seq": 0}, bounded)
        self._wait_until_sent(bounded)

    def restart(self) -> None:
        """A new attempt's first frame (its own invocation, so its count starts again at 1)."""
        self._queue({"type": "restart", **self.head})

    def delta(self, text: str) -> None:
        """The model's stream calls this: it only hands the text to the sender."""
        with self.changed:
            if self.gone:
                return
            self.pending += text
            self._wake()

    def model_done(self) -> None:
        """The model wrote its last word: what is held back for coalescing goes now, beside the
        turn's commit, so that the reply frame does not wait for it after the commit."""
        with self.changed:
            if self.gone or not self.pending:
                return
            self._frame_pending()
            self._wake()

    def flush(self) -> None:
        """Post what was streamed now, not from a sender thawed in some later invocation."""
        self._wait_until_sent(self.deadline)

    def reply(self, body: dict[str, Any]) -> None:
        frame = {"type": "reply", "turn_id": self.head.get("turn_id"), **body}
        if len(_encoded({**frame, "seq": 0})) > MAX_FRAME_BYTES:
            # The deltas carried all of it; GET /sessions/{id}/turns/{turn_id} has it whole too.
            frame.update(reply=_fit(body["reply"], MAX_TEXT_BYTES), truncated=True)
        self._finish(frame)

    def error(self, error_body: dict[str, Any]) -> None:
        self._finish({"type": "error", **self.head, **error_body})

    def _finish(self, frame: dict[str, Any]) -> None:
        """A turn's one last frame: a second (the worker's, once the turn sent its reply as it was
        stored) is not posted."""
        with self.changed:
            if self.finished:
                return
            self.finished = True
        self._queue(frame)
        self._wait_until_sent(self.deadline)
        with self.changed:
            self.changed.notify_all()  # finished: the sender's thread ends once idle, without lingering

    # ---- the queue ------------------------------------------------------------------------------
    def _queue(self, frame: dict[str, Any], deadline: Deadline | None = None) -> None:
        with self.changed:
            if self.gone:
                return
            self._frame_pending()
            self.outbox.append((self._numbered(frame), deadline or self.deadline))
            self._wake()

    def _numbered(self, frame: dict[str, Any]) -> dict[str, Any]:
        if "seq" in frame:
            return frame
        self.seq += 1
        return {**frame, "seq": self.seq - 1}

    def _frame_pending(self) -> None:
        """The deltas so far into frames at the end of the queue, each under the frame limit."""
        while self.pending:
            text = _fit(self.pending, MAX_TEXT_BYTES)
            self.pending = self.pending[len(text):]
            self.outbox.append((self._numbered({"type": "delta", **self.head, "text": text}), self.deadline))

    def _wake(self) -> None:
        if self.sender is None and not self.gone:
            self.sender = threading.Thread(target=self._send, name="frames-sender", daemon=True)
            self.sender.start()
        self.changed.notify_all()

    def _wait_until_sent(self, deadline: Deadline) -> None:
        """Until every frame so far is posted, or the deadline. Past it, only a last frame (reply
        or error) is still tried, in one short attempt inside the handler's answer margin."""
        with self.changed:
            self._frame_pending()
            self._wake()
            if self._all_sent_by(deadline):
                return
            last = self.outbox[-1] if self.outbox and self.outbox[-1][0]["type"] in LAST_FRAMES else None
            self.outbox.clear()
            if last is not None:
                self.outbox.append(last)
                if self._all_sent_by(Deadline.after(LAST_WORD_SECONDS)):
                    return
            logger.warning("frames were still unposted at the deadline; GET /messages has the turn")
            self._stop()

    def _all_sent_by(self, deadline: Deadline) -> bool:
        """Waits (the lock held by the caller) until the queue is empty and nothing is being posted."""
        while (self.outbox or self.posting) and not self.gone:
            if deadline.expired():
                return False
            self.changed.wait(deadline.cap(IDLE_SECONDS))
        return True

    def _stop(self) -> None:
        self.gone = True
        self.outbox.clear()
        self.pending = ""
        self.changed.notify_all()

    # ---- the sender thread ----------------------------------------------------------------------
    def _send(self) -> None:
        while (item := self._next()) is not None:
            frame, deadline = item
            try:
                self._post(frame, deadline)
            finally:
                with self.changed:
                    self.posting = False
                    if frame["type"] == "delta":
                        self.last_sent = self.clock()
                    self.changed.notify_all()

    def _next(self) -> tuple[dict[str, Any], Deadline] | None:
        """The next frame to post, once it is due; None (and the thread ends) when idle."""
        with self.changed:
            idle_since = self.clock()
            while not self.gone:
                if self.outbox:
                    self.posting = True
                    return self.outbox.popleft()
                if self.pending:
                    due = self.last_sent + COALESCE_SECONDS - self.clock()
                    if due <= 0:
                        self._frame_pending()
                    else:
                        self.changed.wait(due)  # more text may come; a final frame frames it at once
                    idle_since = self.clock()
                    continue
                idle = self.clock() - idle_since
                if idle >= IDLE_SECONDS or self.finished:
                    break
                self.changed.wait(IDLE_SECONDS - idle)
            self.sender = None
            self.changed.notify_all()
            return None

    def _post(self, frame: dict[str, Any], deadline: Deadline) -> None:
        client = self.clients.client("apigatewaymanagementapi", deadline, endpoint_url=self.connection.endpoint)
        try:
            client.post_to_connection(ConnectionId=self.connection.id, Data=_encoded(frame))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "GoneException" or \
                    error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410:
                logger.info("the client disconnected; the turn goes on without frames")
                with self.changed:
                    self._stop()
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
