"""The twin's AWS APIs as boto3 sees them (the management API and the SQS queue answer as AWS
does, down to the error codes botocore raises), route selection on the WebSocket API, and the
queue's retries and dead-letter queue."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.polling import until_async
from tests.twin.conftest import Socket, run, session_id
from twin import environment

pytestmark = pytest.mark.slow


def management_api(twin):
    return boto3.client("apigatewaymanagementapi", endpoint_url=f"{twin.url}/_aws/connections", region_name="us-east-1")


def sqs(twin):
    return boto3.client("sqs", endpoint_url=f"{twin.url}/_aws/sqs", region_name="us-east-1")


def test_the_management_api_answers_as_api_gateway_does(twin):
    client = management_api(twin)

    async def scenario(http):
        known = set(twin.connections.calls)
        async with http.ws_connect(twin.ws_url) as ws:
            await until_async(lambda: _opened(twin, known), timeout=5)
            connection_id, = set(twin.connections.live) - known
            client.post_to_connection(ConnectionId=connection_id, Data=b'{"hello": "world"}')
            assert json.loads((await ws.receive(timeout=5)).data) == {"hello": "world"}
            found = client.get_connection(ConnectionId=connection_id)
            assert found["Identity"]["SourceIp"] == "127.0.0.1" and found["ConnectedAt"] <= found["LastActiveAt"]
            with pytest.raises(ClientError) as too_large:
                client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
            assert too_large.value.response["Error"]["Code"] == "PayloadTooLargeException"
            client.delete_connection(ConnectionId=connection_id)  # the server closes it
            assert (await ws.receive(timeout=5)).type.name in ("CLOSE", "CLOSED", "CLOSING")
        return connection_id

    connection_id = run(scenario)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"too late")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId="NeverConnected=")
    assert twin.connections.calls[connection_id].gone == 1


async def _opened(twin, known):
    return set(twin.connections.live) - known


def test_send_message_is_checked_by_botocore_and_deduplicated_per_group(twin):
    client = sqs(twin)
    url = environment.queue_url(twin.url)
    body = json.dumps({"probe": "ünïcode body"})  # botocore checks MD5OfMessageBody of the bytes
    first = client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g1", MessageDeduplicationId="d1")
    again = client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g1", MessageDeduplicationId="d1")
    other_group = client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g2", MessageDeduplicationId="d1")
    assert first["MessageId"] == again["MessageId"] != other_group["MessageId"]
    assert int(other_group["SequenceNumber"]) > int(first["SequenceNumber"])
    with pytest.raises(client.exceptions.QueueDoesNotExist):
        client.send_message(QueueUrl=url.replace("turns.fifo", "other.fifo"), MessageBody=body, MessageGroupId="g",
                            MessageDeduplicationId="d")
    with pytest.raises(ClientError) as unsupported:
        client.receive_message(QueueUrl=url)
    assert unsupported.value.response["Error"]["Code"] == "UnsupportedOperation"


def test_a_message_the_worker_cannot_run_is_retried_then_dead_lettered(twin):
    """Not a turn: the worker reports it in batchItemFailures, three receives, then the DLQ."""
    sent = sqs(twin).send_message(QueueUrl=environment.queue_url(twin.url), MessageBody='{"not": "a turn"}',
                                  MessageGroupId=session_id(), MessageDeduplicationId="bad-1")

    async def dead_lettered(_):
        async def check():
            return [m for m in twin.poller.dead_letters if m.id == sent["MessageId"]]
        return await until_async(check, timeout=20)

    message, = run(dead_lettered)
    assert message.receives == 3
    assert any(f"message {sent['MessageId'][:8]}" in line and "moved to the dead-letter queue" in line
               for line in twin.terminal.lines)


@pytest.mark.parametrize("body, code", [
    ("not json", "invalid_json"),
    ('{"action": "shout", "session_id": "s", "message": "hi"}', "invalid_request"),
    ('{"action": "sendMessage", "session_id": "s"}', "invalid_request"),
])
def test_route_selection_on_the_action_field(twin, body, code):
    async def scenario(http):
        async with http.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await ws.send_str(body)
            return await socket.frame(timeout=10)

    frame = run(scenario)
    assert frame["type"] == "error" and frame["error"]["code"] == code
