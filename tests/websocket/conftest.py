"""WebSocket and queued turns through the real handler: API Gateway's events, SQS FIFO and the
management API emulated by moto (in-process)."""

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

from tests.conftest import BOTO3_SESSION, Api
from twin.events import sqs_event, websocket_event

DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


class Aws:
    def __init__(self) -> None:
        self.sqs = BOTO3_SESSION.client("sqs", region_name="us-east-1")
        self.queue_url = self.sqs.create_queue(QueueName="turns.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def frames(self, connection_id: str) -> list[dict[str, Any]]:
        """Every frame posted to a connection, in order (moto keeps them as one byte string, under the
        id as it was in the URL: an API Gateway id ends in '=', which botocore sends as %3D)."""
        connections = apigatewaymanagementapi_backends["123456789012"]["us-east-1"].connections
        data = connections[connection_id if connection_id in connections else quote(connection_id, safe="")].data
        text, frames, decoder = data.decode("utf-8"), [], json.JSONDecoder()
        while text:
            frame, end = decoder.raw_decode(text)
            frames.append(frame)
            text = text[end:]
        return frames

    def posts(self, connection_id: str) -> int:
        return len(self.frames(connection_id))

    def take_turns(self, limit: int = 10) -> list[dict]:
        """What a worker would receive, as SQS records, in queue order."""
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=limit,
                                            AttributeNames=["All"]).get("Messages", [])
        for message in received:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [{"id": m["MessageId"], "body": m["Body"], "group": m["Attributes"]["MessageGroupId"]} for m in received]


class WebSocketClient:
    """API Gateway's side of the WebSocket API, calling the handler as it would."""

    def __init__(self, api: Api, aws: Aws) -> None:
        self.api, self.aws = api, aws

    def connect(self, connection_id: str, caller: str | None = ALICE, **kwargs: Any) -> dict:
        identity = {"userArn": caller, "accountId": "123456789012"} if caller else {}
        return self.api.invoke(websocket_event("$connect", connection_id, domain=DOMAIN, identity=identity, **kwargs))

    def disconnect(self, connection_id: str) -> dict:
        return self.api.invoke(websocket_event("$disconnect", connection_id, domain=DOMAIN))

    def send(self, connection_id: str, body: Any, route: str = "sendMessage") -> dict:
        raw = body if isinstance(body, str) else json.dumps(body)
        return self.api.invoke(websocket_event(route, connection_id, raw, domain=DOMAIN))

    def message(self, connection_id: str, session_id: str, text: str, **extra: Any) -> dict:
        return self.send(connection_id, {"action": "sendMessage", "session_id": session_id, "message": text, **extra})

    def run_worker(self, timeout: float = 300.0) -> list[Any]:
        """One worker invocation per queued turn (batch size 1), in queue order."""
        return [self.api.invoke_worker(sqs_event([record], self.aws.queue_arn), timeout=timeout)
                for record in self.aws.take_turns()]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


@pytest.fixture
def ws_env(env: dict[str, str], aws: Aws) -> dict[str, str]:
    return {**env, "TURN_QUEUE_URL": aws.queue_url}


@pytest.fixture
def ws(ws_env: dict[str, str], aws: Aws) -> WebSocketClient:
    return WebSocketClient(Api(ws_env), aws)
