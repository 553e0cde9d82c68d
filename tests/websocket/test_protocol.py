"""The WebSocket protocol, exactly: accepted, deltas that concatenate to the reply, one reply or
one error; frames act for the connection's caller only; every frame fits API Gateway's 32 KB."""

import json

import pytest
from model_server import Reply

from tests.websocket.conftest import ALICE, BOB

SESSION = "user_arindam_convo_123"


def test_a_turn_streams_accepted_deltas_and_one_reply_that_is_stored(ws, aws, model_server):
    model_server.word_delay = 0.01
    assert ws.connect("c1") == {"statusCode": 200}
    assert ws.message("c1", SESSION, "Hey, my name is Arindam.") == {"statusCode": 200}
    accepted, = aws.frames("c1")
    assert accepted["type"] == "accepted" and accepted["session_id"] == SESSION
    assert accepted["turn_id"].startswith("t_")

    ws.run_worker()

    frames = aws.frames("c1")[1:]
    deltas, reply = frames[:-1], frames[-1]
    assert deltas and all(f["type"] == "delta" and f["turn_id"] == accepted["turn_id"] for f in deltas)
    assert all(f["text"] for f in deltas)  # no empty frame
    assert reply["type"] == "reply" and reply["turn_id"] == accepted["turn_id"]
    assert set(reply) == {"type", "turn_id", "session_id", "reply", "stop_reason", "usage", "message_count", "seq"}
    assert "".join(f["text"] for f in deltas) == reply["reply"]
    assert [f["seq"] for f in aws.frames("c1")] == list(range(len(frames) + 1))  # accepted is 0
    assert ws.api.texts(SESSION, caller=ALICE) == ["Hey, my name is Arindam.", reply["reply"]]


def test_deltas_are_coalesced_to_about_one_frame_per_100_ms(ws, aws, model_server):
    words = " ".join(f"word{n}" for n in range(60))
    model_server.queue(Reply.say(words, word_delay=0.01))  # ~0.6 s of streaming, 60 words
    ws.connect("c1")
    ws.message("c1", SESSION, "Count to sixty.")
    ws.run_worker()
    deltas = [f for f in aws.frames("c1") if f["type"] == "delta"]
    assert 3 <= len(deltas) <= 12, len(deltas)  # not one per word
    assert "".join(f["text"] for f in deltas) == words


def test_every_frame_fits_the_32_kb_limit_even_for_a_long_reply(ws, aws, model_server):
    # ~40 KB in 300 words: more than one frame (words differ: LiteLLM stops a model repeating itself)
    long_text = " ".join(f"{n:04d}-lorem-ipsum-dolor-sit-amet-🚀-consectetur-adipiscing-elit-sed-do-eiusmod-tempor-"
                         f"incididunt-ut-labore-et-dolore-magna-aliqua-{n:04d}" for n in range(300))
    model_server.queue(Reply.say(long_text))
    ws.connect("c1")
    ws.message("c1", SESSION, "Write a lot.")
    ws.run_worker()
    frames = aws.frames("c1")
    assert all(len(json.dumps(f, ensure_ascii=False).encode()) <= 32 * 1024 for f in frames)
    deltas = [f for f in frames if f["type"] == "delta"]
    assert "".join(f["text"] for f in deltas) == long_text
    assert frames[-1]["type"] == "reply" and frames[-1]["truncated"] is True
    assert ws.api.texts(SESSION, caller=ALICE)[1] == long_text  # stored whole


def test_a_frame_acts_for_the_connections_caller_and_no_other(ws, aws, model_server):
    ws.connect("alice-connection", caller=ALICE)
    ws.connect("bob-connection", caller=BOB)
    ws.message("alice-connection", "shared", "Hey, my name is Alice.")
    # Bob names Alice as the caller in his frame: ignored, he acts as himself.
    ws.message("bob-connection", "shared", "Do you remember my name?", caller=ALICE)
    ws.run_worker()
    bob_reply = aws.frames("bob-connection")[-1]
    assert bob_reply["type"] == "reply" and "Alice" not in bob_reply["reply"]
    alice_reply = aws.frames("alice-connection")[-1]["reply"]
    assert ws.api.texts("shared", caller=ALICE) == ["Hey, my name is Alice.", alice_reply]
    assert ws.api.texts("shared", caller=BOB)[0] == "Do you remember my name?"


def test_a_connection_that_never_connected_is_refused(ws, aws, model_server):
    ws.message("stranger", SESSION, "hello")
    frame, = aws.frames("stranger")
    assert frame["type"] == "error" and frame["error"]["code"] == "unauthenticated"
    assert aws.take_turns() == [] and model_server.requests == []


def test_a_disconnected_connection_is_unbound(ws, aws):
    ws.connect("c1")
    ws.disconnect("c1")
    ws.message("c1", SESSION, "hello")
    assert aws.frames("c1")[-1]["error"]["code"] == "unauthenticated"


def test_a_deployed_connect_without_identity_is_refused(ws_env, aws):
    from tests.conftest import Api
    from tests.websocket.conftest import WebSocketClient

    deployed = WebSocketClient(Api({**ws_env, "AWS_LAMBDA_FUNCTION_NAME": "AgentFunction"}), aws)
    assert deployed.connect("c1", caller=None) == {"statusCode": 401}
    assert deployed.connect("c2", caller=None, authorizer={"caller": "jwt:user-1"}) == {"statusCode": 200}
    forged = {"caller": "arn:aws:iam::1:user/forged"}
    assert deployed.connect("c3", caller=None, authorizer=forged) == {"statusCode": 401}


@pytest.mark.parametrize("body, route, code", [
    ("not json", "sendMessage", "invalid_json"),
    ({"action": "sendMessage", "session_id": "a.b", "message": "hi"}, "sendMessage", "invalid_request"),
    ({"action": "sendMessage", "session_id": SESSION, "message": ""}, "sendMessage", "invalid_request"),
    ({"action": "sendMessage", "session_id": SESSION, "message": "x" * 16001}, "sendMessage", "invalid_request"),
    ({"action": "sendMessage", "session_id": SESSION}, "sendMessage", "invalid_request"),
    ({"action": "shout", "session_id": SESSION, "message": "hi"}, "$default", "invalid_request"),
], ids=["not-json", "bad-session", "empty", "too-long", "no-message", "unknown-action"])
def test_bad_messages_get_one_error_frame_with_the_http_codes_and_queue_nothing(ws, aws, model_server, body, route,
                                                                                 code):
    ws.connect("c1")
    assert ws.send("c1", body, route=route) == {"statusCode": 200}
    frame, = aws.frames("c1")
    assert frame["type"] == "error" and frame["error"]["code"] == code and frame["error"]["message"]
    assert aws.take_turns() == [] and model_server.requests == []


def test_a_model_failure_ends_the_turn_with_an_error_frame_and_stores_nothing(ws, aws, model_server):
    ws.connect("c1")
    model_server.queue(Reply.error(500))
    ws.message("c1", SESSION, "hello")
    ws.run_worker()
    frames = aws.frames("c1")
    assert [f["type"] for f in frames] == ["accepted", "error"]
    assert frames[-1]["error"]["code"] == "model_error" and frames[-1]["turn_id"] == frames[0]["turn_id"]
    assert ws.api.history(SESSION, caller=ALICE)[0] == 404


def test_two_messages_back_to_back_both_complete_in_order(ws, aws, model_server):
    ws.connect("c1")
    ws.message("c1", SESSION, "first")
    ws.message("c1", SESSION, "second")
    ws.run_worker()
    replies = [f for f in aws.frames("c1") if f["type"] == "reply"]
    assert [r["reply"] for r in replies] == ["Noted: first", "Noted: second"]
    assert ws.api.texts(SESSION, caller=ALICE) == ["first", "Noted: first", "second", "Noted: second"]


def test_a_redelivered_turn_replays_instead_of_running_twice(ws, aws, model_server):
    from twin.events import sqs_event

    ws.connect("c1")
    ws.message("c1", SESSION, "hello")
    record, = aws.take_turns()
    ws.api.invoke_worker(sqs_event([record], aws.queue_arn))
    calls = len(model_server.requests)
    ws.api.invoke_worker(sqs_event([record], aws.queue_arn))  # SQS delivers it again
    assert len(model_server.requests) == calls
    assert len(ws.api.texts(SESSION, caller=ALICE)) == 2


def test_a_worker_whose_store_fails_sends_no_frame_and_the_redelivery_answers_once(ws, aws, model_server,
                                                                                  monkeypatch):
    """A store failure is not the turn's end: SQS delivers it again, and only then does the client
    get its one reply, after a "restart" that voids what the failed attempt streamed."""
    from agent.store.file_objects import FileObjects
    from twin.events import sqs_event

    put_if_absent = FileObjects.put_if_absent

    def fail_the_commit_once(objects, key, body):  # the turn's commit point: agent.json, new
        if key.endswith("/agent.json"):
            monkeypatch.setattr(FileObjects, "put_if_absent", put_if_absent)
            raise OSError("disk gone")
        return put_if_absent(objects, key, body)

    monkeypatch.setattr(FileObjects, "put_if_absent", fail_the_commit_once)
    ws.connect("c1")
    ws.message("c1", SESSION, "hello")
    record, = aws.take_turns()
    result = ws.api.invoke_worker(sqs_event([record], aws.queue_arn))
    assert result == {"batchItemFailures": [{"itemIdentifier": record["id"]}]}  # SQS will deliver it again
    assert "error" not in [f["type"] for f in aws.frames("c1")]
    assert ws.api.texts(SESSION, caller=ALICE) == []  # nothing of the turn was stored
    first_attempt = len(aws.frames("c1"))

    assert ws.api.invoke_worker(sqs_event([record], aws.queue_arn)) == {"batchItemFailures": []}
    frames = aws.frames("c1")[first_attempt:]
    assert frames[0]["type"] == "restart"  # the deltas streamed by the failed attempt are void
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "Noted: hello"
    assert [f["type"] for f in frames if f["type"] != "delta"] == ["restart", "reply"]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))  # a new attempt counts again from 1
    assert frames[-1]["reply"] == "Noted: hello"
    assert ws.api.texts(SESSION, caller=ALICE) == ["hello", "Noted: hello"]


def test_the_same_key_with_another_message_gets_a_422_frame_and_queues_nothing_more(ws, aws, model_server):
    ws.connect("c1")
    ws.message("c1", SESSION, "hello", idempotency_key="order-42")
    ws.message("c1", SESSION, "something else", idempotency_key="order-42")
    accepted, refused = aws.frames("c1")
    assert accepted["type"] == "accepted"
    assert refused["type"] == "error" and refused["error"]["code"] == "idempotency_key_reused"
    assert "turn_id" not in refused  # not the end of the turn the client follows
    assert [json.loads(t["body"])["message"] for t in aws.take_turns()] == ["hello"]


def test_frames_go_to_the_configured_api_whatever_a_queued_turn_says(ws_env, aws, model_server):
    """Whoever can send to the queue cannot point the worker's signed requests elsewhere."""
    from tests.conftest import Api
    from tests.websocket.conftest import DOMAIN, WebSocketClient
    from twin.events import sqs_event

    ws = WebSocketClient(Api({**ws_env, "WEBSOCKET_CALLBACK_URL": f"https://{DOMAIN}/prod"}), aws)
    ws.connect("c1")
    ws.message("c1", SESSION, "hello")
    record, = aws.take_turns()
    body = json.loads(record["body"])
    body["connection"]["endpoint"] = "https://127.0.0.1:9/prod"  # nothing listens there
    ws.api.invoke_worker(sqs_event([{**record, "body": json.dumps(body)}], aws.queue_arn))
    assert [f["type"] for f in aws.frames("c1") if f["type"] != "delta"] == ["accepted", "reply"]

