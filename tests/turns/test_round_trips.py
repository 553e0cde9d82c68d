"""A turn's sequential round trips to AWS: what its latency is made of, whatever S3's own speed.

Every request the function's clients send (S3, SQS, the management API) is held for DELAY before
it goes, as if it crossed a network, and noted with when it started and ended. A request depends
on an earlier one when it started after that one ended; a turn's round trips are the longest such
chain. A synchronous turn takes 3 (the lease and the session's reads; the commit; the release,
beside the list entry, the tokens and the turn's record); a WebSocket turn 6 from its message to
its reply frame, the queue hop included (the turn's record and the queueing lease; "accepted";
SendMessage; the worker's lease, reads and record; the commit; the reply frame).
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from model_server import ModelServer, Reply

from tests.conftest import BOTO3_SESSION, Api
from tests.websocket.conftest import ALICE, Aws, WebSocketClient
from twin.events import sqs_event

DELAY = 0.1  # far longer than a thread takes to start: requests sent together overlap


@dataclass
class Request:
    name: str  # service.Operation
    started: float
    ended: float = float("inf")


class DelayedAws:
    """Holds each request of the boto3 session's clients for DELAY and notes it."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._open: dict[int, Request] = {}

    def before(self, event_name: str, context: dict[str, Any], **_: Any) -> None:
        request = Request(event_name.split(".", 1)[1], time.perf_counter())
        self.requests.append(request)
        self._open[id(context)] = request
        time.sleep(DELAY)  # the request's way there and back: the time a round trip costs

    def after(self, context: dict[str, Any], **_: Any) -> None:
        request = self._open.pop(id(context), None)
        if request is not None:
            request.ended = time.perf_counter()

    def between(self, start: float, end: float) -> list[Request]:
        return [r for r in self.requests if start <= r.started and r.ended <= end]

    @staticmethod
    def round_trips(requests: list[Request], last: Request | None = None) -> int:
        """The longest chain of requests, each started after the one before it ended (to ``last``)."""
        depth: dict[int, int] = {}
        for request in sorted(requests, key=lambda r: r.started):
            before = [depth[id(r)] for r in requests if id(r) in depth and r.ended <= request.started]
            depth[id(request)] = 1 + max(before, default=0)
        return depth[id(last)] if last is not None else max(depth.values(), default=0)


@pytest.fixture
def delayed() -> Iterator[DelayedAws]:
    aws = DelayedAws()
    # On the session: every client made from it after this (the Api below makes its own) sends through it.
    BOTO3_SESSION.events.register("before-call", aws.before)
    BOTO3_SESSION.events.register("after-call", aws.after)
    yield aws
    BOTO3_SESSION.events.unregister("before-call", aws.before)
    BOTO3_SESSION.events.unregister("after-call", aws.after)


@pytest.fixture
def s3_env(ws_env: dict[str, str], aws: Aws) -> dict[str, str]:
    s3 = BOTO3_SESSION.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="round-trips")
    return {**ws_env, "SESSION_BUCKET": "round-trips", "SESSION_DIR": ""}


def test_a_synchronous_turn_takes_three_round_trips(delayed: DelayedAws, s3_env: dict[str, str],
                                                    model_server: ModelServer) -> None:
    api = Api(s3_env)
    assert api.post("s1", "Hey, my name is Arindam.", caller=ALICE)[0] == 200
    started = time.perf_counter()
    status, _, body = api.post("s1", "Do you remember my name?", caller=ALICE,
                               headers={"Idempotency-Key": "k-2"})
    ended = time.perf_counter()
    assert status == 200 and "Arindam" in body["reply"]
    turn = delayed.between(started, ended)
    assert delayed.round_trips(turn) == 3, [r.name for r in turn]
    names = [r.name for r in turn]
    assert names.count("s3.PutObject") >= 5  # the lease, 2 messages, agent.json, the turn's record...


def test_a_websocket_turn_reaches_its_reply_frame_in_six_round_trips(
        delayed: DelayedAws, s3_env: dict[str, str], aws: Aws, model_server: ModelServer) -> None:
    ws = WebSocketClient(Api(s3_env), aws)
    assert ws.connect("c1==")["statusCode"] == 200
    ws.message("c1==", "s1", "Hey, my name is Arindam.")
    ws.run_worker()

    # One word, one chunk of the stream, one delta frame: posted beside the commit. (A reply that
    # streams faster than a frame is posted has its first delta in flight when the rest comes; the
    # rest then goes in one more frame before the reply: 7.)
    model_server.queue(Reply.say("Arindam."))
    sent = time.perf_counter()
    ws.message("c1==", "s1", "Do you remember my name?")
    queued = time.perf_counter()
    delivered = aws.take_turns()  # SQS's poller, not the function: its requests are not the turn's
    invoked = time.perf_counter()
    ws.api.invoke_worker(sqs_event(delivered, aws.queue_arn))
    done = time.perf_counter()

    frames = ws.aws.frames("c1==")
    assert [f["type"] for f in frames[-2:]] == ["delta", "reply"] and "Arindam" in frames[-1]["reply"]
    sending = delayed.between(sent, queued)
    send = next(r for r in sending if r.name == "sqs.SendMessage")
    working = delayed.between(invoked, done)
    reply = [r for r in working if r.name == "apigatewaymanagementapi.PostToConnection"][-1]
    # The AgentFunction's requests up to SendMessage (its queueing lease's release comes after:
    # the worker does not wait for it), then the worker's up to the reply frame.
    to_queue, to_reply = delayed.round_trips(sending, send), delayed.round_trips(working, reply)
    assert (to_queue, to_reply) == (3, 3), ([r.name for r in sending], [r.name for r in working])
