"""Every turn ends exactly once: a DELETE cancels the session's queued turns, a failed turn's key
runs again on every path, a dead-lettered turn is finalised, and a commit whose answer was lost
never lands behind the client's back."""

import json
import uuid

import boto3
from model_server import Reply

from tests.conftest import Api
from tests.fixtures.slow_s3 import SlowS3Proxy
from tests.websocket.conftest import ALICE
from twin.events import sqs_event

SESSION = "user_arindam_convo_123"
ASYNC = {"Prefer": "respond-async"}


def test_delete_cancels_the_queued_turns_and_nothing_recreates_the_session(ws, aws, model_server):
    location = ws.api.post(SESSION, "queued over HTTP", headers=ASYNC, caller=ALICE)[2]["location"]
    ws.connect("c1")
    ws.message("c1", SESSION, "queued over the WebSocket")
    assert ws.api.delete(SESSION, caller=ALICE)[0] == 204

    ws.run_worker()

    assert model_server.requests == []
    assert ws.api.history(SESSION, caller=ALICE)[0] == 404
    assert ws.api.request("GET", location, caller=ALICE)[0] == 404
    accepted, cancelled = aws.frames("c1")
    assert accepted["type"] == "accepted"
    assert cancelled["type"] == "error" and cancelled["error"]["code"] == "session_deleted"


def test_a_delete_after_the_worker_took_the_turn_still_wins(ws, aws, model_server, monkeypatch):
    """The worker marked the turn running (reading its record first: a message queued without
    it, by the version before), then the DELETE came, before the turn took the session."""
    from agent import Deadline
    from handler.turn_ledger import TurnLedger

    advance = TurnLedger.advance

    def then_delete(ledger, entry, status, *args, **kwargs):
        written = advance(ledger, entry, status, *args, **kwargs)
        if status == "running":
            ws.api.services.conversations.delete(ALICE, SESSION, Deadline.never())
        return written

    ws.api.post(SESSION, "first", caller=ALICE)
    location = ws.api.post(SESSION, "queued", headers=ASYNC, caller=ALICE)[2]["location"]
    monkeypatch.setattr(TurnLedger, "advance", then_delete)
    calls = len(model_server.requests)
    record = aws.take_turns()[0]
    record["body"] = json.dumps({k: v for k, v in json.loads(record["body"]).items() if k != "queued_as"})

    ws.api.invoke_worker(sqs_event([record], aws.queue_arn))

    assert len(model_server.requests) == calls  # the turn never ran
    assert ws.api.history(SESSION, caller=ALICE)[0] == 404
    assert ws.api.request("GET", location, caller=ALICE)[0] == 404


def test_a_delete_that_lands_as_the_worker_opens_the_session_wins(ws, aws, model_server, monkeypatch):
    """The worker marks the turn running in the round trip that takes the session's lease; a
    DELETE lands between the two. Nothing of the turn is stored, the session stays deleted and
    its record gone (the model may have been called: the reads beside the lease can predate the
    DELETE's; the commit, conditional on what was read, then stores nothing)."""
    import threading

    from agent import Deadline
    from agent.store.lease import Leases
    from handler.turn_ledger import TurnLedger

    advance, create, deleted = TurnLedger.advance, Leases.create, threading.Event()

    def then_delete(ledger, entry, status, *args, **kwargs):
        written = advance(ledger, entry, status, *args, **kwargs)
        if status == "running" and not deleted.is_set():
            ws.api.services.conversations.delete(ALICE, SESSION, Deadline.never())
            deleted.set()
        return written

    def after_the_delete(leases, objects, key, owner, deadline=None):
        if key.endswith(".lease") and not key.endswith("queueing.lease"):
            assert deleted.wait(10), "the DELETE never came"
        return create(leases, objects, key, owner, deadline)

    ws.api.post(SESSION, "first", caller=ALICE)
    location = ws.api.post(SESSION, "queued", headers=ASYNC, caller=ALICE)[2]["location"]
    monkeypatch.setattr(TurnLedger, "advance", then_delete)
    monkeypatch.setattr(Leases, "create", after_the_delete)

    ws.run_worker()
    monkeypatch.undo()

    assert deleted.is_set()
    assert ws.api.history(SESSION, caller=ALICE)[0] == 404
    assert ws.api.request("GET", location, caller=ALICE)[0] == 404


def test_a_failed_queued_turn_runs_again_with_its_key(ws, aws, model_server):
    key = {**ASYNC, "Idempotency-Key": "order-42"}
    model_server.queue(Reply.error(500))
    first = ws.api.post(SESSION, "hello", headers=key)[2]
    ws.run_worker()
    assert ws.api.request("GET", first["location"])[2]["status"] == "failed"

    again = ws.api.post(SESSION, "hello", headers=key)
    ws.run_worker()

    assert again[0] == 202 and again[2]["turn_id"] == first["turn_id"]
    turn = ws.api.request("GET", first["location"])[2]
    assert turn["status"] == "done" and turn["reply"]["reply"] == "Noted: hello"
    assert ws.api.texts(SESSION) == ["hello", "Noted: hello"]


def test_a_failed_websocket_turn_runs_again_with_its_key(ws, aws, model_server):
    ws.connect("c1")
    model_server.queue(Reply.error(500))
    ws.message("c1", SESSION, "hello", idempotency_key="order-42")
    ws.run_worker()
    ws.message("c1", SESSION, "hello", idempotency_key="order-42")
    ws.run_worker()

    kinds = [f["type"] for f in aws.frames("c1") if f["type"] != "delta"]
    assert kinds == ["accepted", "error", "accepted", "reply"]
    assert ws.api.texts(SESSION, caller=ALICE) == ["hello", "Noted: hello"]


def test_a_dead_lettered_turn_is_failed_and_its_client_gets_one_error_frame(ws, aws, model_server, monkeypatch):
    from agent.store.file_objects import FileObjects

    dead_letters = aws.sqs.create_queue(QueueName="turns-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dead_arn = aws.sqs.get_queue_attributes(QueueUrl=dead_letters,
                                            AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dead_arn, "maxReceiveCount": "3"})})
    put_if_absent = FileObjects.put_if_absent

    def store_down_at_commit(objects, key, body):
        if key.endswith("/agent.json"):
            raise OSError("disk gone")
        return put_if_absent(objects, key, body)

    ws.connect("c1")
    ws.message("c1", SESSION, "hello")
    record, = aws.take_turns()
    location = f"/sessions/{SESSION}/turns/{json.loads(record['body'])['turn_id']}"
    with monkeypatch.context() as outage:
        outage.setattr(FileObjects, "put_if_absent", store_down_at_commit)
        for _ in range(3):  # every delivery fails; SQS then moves the message to the dead-letter queue
            assert ws.api.invoke_worker(sqs_event([record], aws.queue_arn))["batchItemFailures"]
    assert ws.api.request("GET", location, caller=ALICE)[2]["status"] == "running"

    assert ws.api.invoke_worker(sqs_event([record], dead_arn)) == {"batchItemFailures": []}
    ws.api.invoke_worker(sqs_event([record], dead_arn))  # delivered twice: still one error frame

    turn = ws.api.request("GET", location, caller=ALICE)[2]
    assert turn["status"] == "failed" and turn["error"]["code"] == "turn_abandoned"
    errors = [f for f in aws.frames("c1") if f["type"] == "error"]
    assert len(errors) == 1 and errors[0]["error"]["code"] == "turn_abandoned"
    assert aws.frames("c1")[-1]["type"] == "error"


def test_a_commit_answer_lost_past_the_read_back_is_resolved_and_never_stored_twice(moto_server, env, monkeypatch):
    bucket = f"held-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    commits: list[str] = []

    def first_commit_of_the_keyed_turn(method: str, path: str) -> bool:
        if method == "PUT" and path.split("?")[0].endswith("/agent.json") and len(commits) < 2:
            commits.append(path)
            return len(commits) == 2  # the first turn commits; the keyed turn's commit is held
        return False

    with SlowS3Proxy(moto_server.endpoint_url, hold=first_commit_of_the_keyed_turn) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        api = Api({**env, "SESSION_BUCKET": bucket})
        key = {"Idempotency-Key": "order-42"}
        assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200

        status, _, body = api.post(SESSION, "Do you remember my name?", headers=key, timeout=6.0)
        assert proxy.held, "the keyed turn's commit was not held"
        assert status == 503 and body["error"]["code"] == "store_unavailable"

        assert proxy.apply_held() == [412]  # the held write arrives: its condition no longer holds
        assert api.texts(SESSION) == ["Hey, my name is Arindam.", "Noted: Hey, my name is Arindam."]
        status, _, reply = api.post(SESSION, "Do you remember my name?", headers=key)
        again = api.post(SESSION, "Do you remember my name?", headers=key)

    assert status == 200 and reply["message_count"] == 4 and again[2] == reply
    assert api.texts(SESSION)[::2] == ["Hey, my name is Arindam.", "Do you remember my name?"]
