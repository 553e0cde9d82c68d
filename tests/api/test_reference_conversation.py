"""The lesson's reference behaviour, through the real handler, LiteLLM over HTTP and a real store."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Api, child_environment

SESSION = "user_arindam_convo_123"


def invoke_in_fresh_process(tmp_path: Path, body: dict, env: dict[str, str]) -> dict:
    """One HTTP API event through tools/invoke.py in a new Python process (a cold container)."""
    event_file = tmp_path / "event.json"
    event = json.loads((ROOT / "events" / "post_message.json").read_text())
    event.update(body=json.dumps(body), rawPath=f"/sessions/{SESSION}/messages", pathParameters={"session_id": SESSION})
    event["requestContext"]["http"]["path"] = f"/sessions/{SESSION}/messages"
    event["requestContext"].pop("authorizer", None)  # the local caller, as in make dev
    event_file.write_text(json.dumps(event))
    done = subprocess.run([sys.executable, "tools/invoke.py", str(event_file)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=child_environment(**env))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout[done.stdout.index("{\n"):])
    return {"status": result["statusCode"], "body": json.loads(result["body"])}


@pytest.mark.slow
def test_turn_two_in_a_fresh_process_remembers_turn_one(api, env, model_server, tmp_path):
    status, _, first = api.post(SESSION, "Hey, my name is Arindam.")
    assert status == 200 and first["session_id"] == SESSION and first["message_count"] == 2

    second = invoke_in_fresh_process(tmp_path, {"message": "Do you remember my name?"}, env)

    assert second["status"] == 200
    assert "Arindam" in second["body"]["reply"]
    assert model_server.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]
    assert second["body"]["message_count"] == 4


def test_turn_two_in_a_new_container_remembers_turn_one(any_api, model_server):
    assert any_api.post(SESSION, "Hey, my name is Arindam.")[0] == 200

    fresh = Api(any_api.env)  # nothing in memory: only the store links the two turns
    status, _, reply = fresh.post(SESSION, "Do you remember my name?")

    assert status == 200 and "Arindam" in reply["reply"]
    assert model_server.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]


def test_reply_shape_and_history(api):
    status, _, reply = api.post(SESSION, "Hey, my name is Arindam.")
    assert status == 200
    assert set(reply) == {"session_id", "reply", "stop_reason", "usage", "message_count"}
    assert reply["stop_reason"] == "end_turn"
    assert reply["usage"]["input_tokens"] > 0 and reply["usage"]["output_tokens"] > 0

    status, _, history = api.history(SESSION)
    assert status == 200 and history["session_id"] == SESSION and history["next_cursor"] is None
    assert [(m["index"], m["role"], m["text"]) for m in history["messages"]] == [
        (0, "user", "Hey, my name is Arindam."),
        (1, "assistant", reply["reply"]),
    ]
    assert all(m["created_at"] for m in history["messages"])


def test_long_conversation_reaches_the_model_whole(api, model_server):
    for fact in ["My favorite color is blue.", "I work as a software engineer.", "I have a dog named Max."]:
        assert api.post("about_me", fact)[0] == 200
    status, _, reply = api.post("about_me", "What do you know about me?")
    assert status == 200
    for fact in ["blue", "software engineer", "Max"]:
        assert fact in reply["reply"]
    assert model_server.user_texts(-1) == [
        "My favorite color is blue.", "I work as a software engineer.", "I have a dog named Max.",
        "What do you know about me?",
    ]


def test_window_policy_limits_what_reaches_the_model_not_what_is_kept(env, model_server):
    api = Api({**env, "HISTORY_WINDOW": "4", "HISTORY_POLICY": "window"})
    for n in range(4):
        assert api.post("windowed", f"fact number {n}")[0] == 200
    texts = model_server.user_texts(-1)
    assert texts[-1] == "fact number 3" and "fact number 0" not in texts
    assert len(api.history("windowed")[2]["messages"]) == 8


def test_sessions_stay_independent(any_api, model_server):
    any_api.post("trip_planning_session", "I want to visit Japan in April.")
    any_api.post("python_learning_session", "Teach me list comprehensions.")
    any_api.post("trip_planning_session", "What should I pack?")
    assert model_server.user_texts(-1) == ["I want to visit Japan in April.", "What should I pack?"]
    any_api.post("python_learning_session", "And generators?")
    assert model_server.user_texts(-1) == ["Teach me list comprehensions.", "And generators?"]


def test_delete_then_the_session_starts_fresh(any_api, model_server):
    any_api.post(SESSION, "Hey, my name is Arindam.")
    status, _, body = any_api.delete(SESSION)
    assert status == 204 and body is None
    assert any_api.history(SESSION)[0] == 404
    assert any_api.delete(SESSION)[0] == 404

    status, _, reply = any_api.post(SESSION, "Do you remember my name?")
    assert status == 200 and "Arindam" not in reply["reply"] and reply["message_count"] == 2
    assert model_server.user_texts(-1) == ["Do you remember my name?"]


def test_two_callers_with_the_same_session_id_never_meet(s3_api, model_server, s3):
    from tests.conftest import bucket_keys

    alice = "arn:aws:iam::123456789012:user/alice"
    bob = "arn:aws:sts::123456789012:assumed-role/Agents/bob"
    s3_api.post("shared", "Hey, my name is Alice.", caller=alice)
    status, _, reply = s3_api.post("shared", "Do you remember my name?", caller=bob)
    assert status == 200 and "Alice" not in reply["reply"]
    assert model_server.user_texts(-1) == ["Do you remember my name?"]
    assert s3_api.texts("shared", caller=alice)[0] == "Hey, my name is Alice."
    assert s3_api.history("shared")[0] == 404  # the local caller has no such session
    assert s3_api.delete("shared", caller=bob)[0] == 204
    assert s3_api.history("shared", caller=alice)[0] == 200
    # Each caller is one path segment of its own, whatever characters its identity has.
    assert all(key.count("/session_shared/") == 1 for key in bucket_keys(s3) if "session_shared/" in key)


def test_a_jwt_subject_has_sessions_of_its_own(api):
    from tests.conftest import LambdaContext, http_api_event

    def post(sub: str, message: str) -> dict:
        event = http_api_event("POST", "/sessions/chat/messages", {"content-type": "application/json"},
                               json.dumps({"message": message}).encode(), "127.0.0.1")
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}, "scopes": None}}
        return json.loads(api.lambda_handler(event, LambdaContext())["body"])

    post("user-1", "Hey, my name is Ada.")
    assert "Ada" not in post("user-2", "Do you remember my name?")["reply"]
    assert "Ada" in post("user-1", "Do you remember my name?")["reply"]
