"""The roles against what the functions really call: the real handler runs against moto (S3, SQS,
Secrets Manager on the moto server), every AWS call it makes is recorded, and each must be allowed
by the role of the function that made it, on the resources the stack creates."""

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.template.stack import AGENT, EVENTS, WORKER, Stack, as_list, statements

# The IAM action each AWS API operation needs (AWS Service Authorization Reference). An operation
# missing here fails the test: add it, and grant it in template.yaml if the function needs it.
IAM_ACTION = {
    ("s3", "GetObject"): {"s3:GetObject"},
    ("s3", "HeadObject"): {"s3:GetObject"},
    ("s3", "PutObject"): {"s3:PutObject"},
    ("s3", "PutObjectTagging"): {"s3:PutObjectTagging"},
    ("s3", "DeleteObject"): {"s3:DeleteObject"},
    ("s3", "DeleteObjects"): {"s3:DeleteObject"},
    ("s3", "ListObjectsV2"): {"s3:ListBucket"},
    ("s3", "ListObjects"): {"s3:ListBucket"},
    ("sqs", "SendMessage"): {"sqs:SendMessage"},
    ("apigatewaymanagementapi", "PostToConnection"): {"execute-api:ManageConnections"},
    ("secretsmanager", "GetSecretValue"): {"secretsmanager:GetSecretValue"},
}


def actions_of(service: str, operation: str, params: dict) -> set[str]:
    actions = set(IAM_ACTION[(service, operation)])
    if (service, operation) == ("s3", "PutObject") and params.get("Tagging"):
        actions.add("s3:PutObjectTagging")  # a PutObject that carries tags needs both
    return actions


class Recorder:
    """Every AWS call made while `recording` is set, with its service, operation and parameters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.client import BaseClient

        self.calls: list[tuple[str, str, dict]] = []
        self.recording = False
        make_api_call = BaseClient.__dict__["_make_api_call"]  # private in botocore's stubs
        recorder = self

        def recorded(client: BaseClient, operation: str, params: dict) -> Any:
            if recorder.recording:
                recorder.calls.append((client.meta.service_model.service_name, operation, params))
            return make_api_call(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", recorded)

    def run(self, action: Any) -> tuple[Any, list[tuple[str, str, dict]]]:
        start = len(self.calls)
        self.recording = True
        try:
            return action(), self.calls[start:]
        finally:
            self.recording = False


@pytest.fixture
def deployed_like(env, moto_server, monkeypatch) -> Iterator[dict[str, Any]]:
    """The handler's AWS resources as the stack makes them (bucket, turn queue, key secret), on the
    moto server; the model key comes from the secret, as when deployed."""
    endpoint = moto_server.endpoint_url
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    bucket = f"sessions-{os.getpid()}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName=f"turns-{os.getpid()}.fifo",
                             Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secret = secrets.create_secret(Name=f"model-key-{os.getpid()}", SecretString="sk-from-secrets-manager")["ARN"]
    function_env = {**{k: v for k, v in env.items() if k != "MODEL_API_KEY"}, "SESSION_BUCKET": bucket,
                    "TURN_QUEUE_URL": queue, "MODEL_API_KEY_SECRET_ARN": secret,
                    # API Gateway's @connections endpoint, emulated by the same moto server
                    "WEBSOCKET_CALLBACK_URL": f"{endpoint}/prod"}
    yield {"bucket": bucket, "queue": queue, "secret": secret, "env": function_env}
    sqs.delete_queue(QueueUrl=queue)
    secrets.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)


def sqs_event(queue_url: str) -> dict | None:
    """The queued turns, as Lambda's SQS poller hands them to TurnWorkerFunction."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   MessageAttributeNames=["All"]).get("Messages", [])
    if not messages:
        return None
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": arn, "awsRegion": "us-east-1",
        "messageAttributes": {name: {"stringValue": v.get("StringValue"), "dataType": v["DataType"],
                                     "stringListValues": [], "binaryListValues": []}
                              for name, v in m.get("MessageAttributes", {}).items()},
    } for m in messages]}


def assert_allowed(stack: Stack, function: str, calls: list, deployed_like: dict) -> None:
    allowed = {action for statement in statements(stack, function) for action in as_list(statement["Action"])}
    used = {(service, operation) for service, operation, _ in calls}
    unknown = used - set(IAM_ACTION)
    assert not unknown, f"add these operations to IAM_ACTION (and to the role if needed): {unknown}"
    needed = {action for service, operation, params in calls for action in actions_of(service, operation, params)}
    assert needed <= allowed, f"{function} calls what its role does not allow: {needed - allowed}"
    prefix = stack.parameters["SessionPrefix"] + "/"
    for service, operation, params in calls:
        if service == "s3":
            assert params["Bucket"] == deployed_like["bucket"]
            deleted = params.get("Delete", {}).get("Objects", [])
            keys = [params["Key"]] if "Key" in params else [o["Key"] for o in deleted]
            assert all(key.startswith(prefix) for key in keys), (operation, keys)
            assert params.get("Prefix", prefix).startswith(prefix), (operation, params)
        elif service == "sqs":
            assert params["QueueUrl"] == deployed_like["queue"], "turns go to TurnQueue only"
        elif service == "secretsmanager":
            assert params["SecretId"] == deployed_like["secret"]


@pytest.mark.slow
def test_the_functions_call_only_what_their_roles_grant(transformed: dict, deployed_like: dict, monkeypatch) -> None:
    from tests.conftest import Api
    from twin.events import websocket_event

    recorder = Recorder(monkeypatch)
    stack = Stack(transformed, ModelId="openai/test-model", ModelApiKeySecretArn=deployed_like["secret"])
    session = "user_arindam_convo_123"
    api: Api

    def as_agent() -> None:
        nonlocal api
        api = Api(deployed_like["env"])  # init (model, clients, the key's secret) is the function's too
        assert api.post(session, "Hey, my name is Arindam.", headers={"Idempotency-Key": "turn-1"})[0] == 200
        # a long turn: queued for the worker by a handler that supports it, answered at once otherwise
        assert api.post(session, "Do you remember my name?", headers={"Prefer": "respond-async"})[0] in (200, 202)
        assert api.history(session)[0] == 200
        domain = "abc123.execute-api.us-east-1.amazonaws.com"
        identity = {"userArn": "arn:aws:iam::123456789012:user/alice"}
        connect = websocket_event("$connect", "c1", identity=identity, domain=domain, stage="prod")
        assert api.invoke(connect) == {"statusCode": 200}
        body = json.dumps({"action": "sendMessage", "session_id": session, "message": "And now?"})
        message = websocket_event("sendMessage", "c1", body, domain=domain, stage="prod")
        assert api.invoke(message) == {"statusCode": 200}

    _, agent_calls = recorder.run(as_agent)
    assert {("s3", "PutObject"), ("secretsmanager", "GetSecretValue"), ("sqs", "SendMessage"),
            ("apigatewaymanagementapi", "PostToConnection")} <= {(s, o) for s, o, _ in agent_calls}
    assert_allowed(stack, AGENT, agent_calls, deployed_like)

    queued = sqs_event(deployed_like["queue"])  # the async POST's turn and the WebSocket's
    assert queued is not None and len(queued["Records"]) == 2
    result, worker_calls = recorder.run(lambda: api.invoke_worker(queued, timeout=300))
    assert not (result or {}).get("batchItemFailures"), result
    assert ("apigatewaymanagementapi", "PostToConnection") in {(s, o) for s, o, _ in worker_calls}
    assert_allowed(stack, WORKER, worker_calls, deployed_like)

    def sweep_and_delete() -> None:
        assert "expired_sessions" in api.invoke(json.loads((EVENTS / "expire_idle_sessions.json").read_text()))
        assert api.delete(session)[0] == 204

    _, cleanup_calls = recorder.run(sweep_and_delete)
    assert_allowed(stack, AGENT, cleanup_calls, deployed_like)
