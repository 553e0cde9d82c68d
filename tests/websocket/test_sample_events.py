"""The WebSocket API's sample events (events/websocket_*.json, what `make invoke` runs) through
the handler, with the management API and the turn queue emulated by moto."""

import json

from tests.conftest import ROOT
from twin.events import sqs_event

SAMPLES = ROOT / "events"
ARINDAM = "arn:aws:iam::123456789012:user/arindam"  # the IAM identity of the $connect sample


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"websocket_{name}.json").read_text())


def test_the_samples_connect_send_a_message_and_disconnect(ws, aws):
    connect, message, disconnect = sample("connect"), sample("send_message"), sample("disconnect")
    connection_id = connect["requestContext"]["connectionId"]
    assert message["requestContext"]["connectionId"] == disconnect["requestContext"]["connectionId"] == connection_id

    assert ws.api.invoke(connect) == {"statusCode": 200}
    assert ws.api.invoke(message) == {"statusCode": 200}
    record, = aws.take_turns()
    assert ws.api.invoke_worker(sqs_event([record], aws.queue_arn)) == {"batchItemFailures": []}
    frames = aws.frames(connection_id)
    assert [frames[0]["type"], frames[-1]["type"]] == ["accepted", "reply"]
    assert ws.api.texts("user_arindam_convo_123", caller=ARINDAM) == ["Hey, my name is Arindam.", frames[-1]["reply"]]

    assert ws.api.invoke(disconnect) == {"statusCode": 200}
    ws.api.invoke(message)  # the connection is no longer bound to a caller
    assert aws.frames(connection_id)[-1]["error"]["code"] == "unauthenticated"
