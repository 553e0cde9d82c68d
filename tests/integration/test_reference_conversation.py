"""The lesson's reference behaviour, through the real handler, LiteLLM over HTTP and a real store."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, BUCKET, bucket_keys, child_environment

SESSION = "user_arindam_convo_123"


def invoke_in_fresh_process(tmp_path: Path, body: dict, **env: str) -> dict:
    """Run one HTTP API event through tools/invoke.py in a new Python process (a cold container)."""
    event_file = tmp_path / "event.json"
    event = json.loads((ROOT / "events" / "post_message.json").read_text())
    event.update(body=json.dumps(body), rawPath=f"/sessions/{SESSION}/messages",
                 pathParameters={"session_id": SESSION})
    event["requestContext"]["http"]["path"] = f"/sessions/{SESSION}/messages"
    event["requestContext"].pop("authorizer", None)  # the local caller, as in make dev
    event_file.write_text(json.dumps(event))
    done = subprocess.run([sys.executable, "tools/invoke.py", str(event_file)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=child_environment(**env))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout[done.stdout.index("{\n"):])
    return {"status": result["statusCode"], "body": json.loads(result["body"])}


def test_turn_two_in_a_fresh_process_remembers_turn_one_on_files(api, model_env, session_dir, tmp_path):
    status, _, first = api.post(SESSION, "Hey, my name is Arindam.")
    assert status == 200 and first["session_id"] == SESSION and first["message_count"] == 2

    second = invoke_in_fresh_process(tmp_path, {"message": "Do you remember my name?"})

    assert second["status"] == 200
    assert "Arindam" in second["body"]["reply"]
    assert model_env.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]
    assert second["body"]["message_count"] == 4


def test_turn_two_in_a_fresh_process_remembers_turn_one_on_s3(s3_api, model_env, s3_bucket, tmp_path):
    status, _, _ = s3_api.post(SESSION, "Hey, my name is Arindam.")
    assert status == 200
    assert any(key.endswith(f"session_{SESSION}/session.json") for key in bucket_keys(s3_bucket))

    second = invoke_in_fresh_process(tmp_path, {"message": "Do you remember my name?"})

    assert second["status"] == 200 and "Arindam" in second["body"]["reply"]
    assert model_env.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]


def test_reply_shape_and_history(api):
    status, _, reply = api.post(SESSION, "Hey, my name is Arindam.")
    assert status == 200
    assert set(reply) == {"session_id", "reply", "stop_reason", "usage", "message_count"}
    assert reply["stop_reason"] == "end_turn"
    assert reply["usage"]["input_tokens"] > 0 and reply["usage"]["output_tokens"] > 0

    status, _, history = api.history(SESSION)
    assert status == 200 and history["session_id"] == SESSION
    assert [(m["index"], m["role"], m["text"]) for m in history["messages"]] == [
        (0, "user", "Hey, my name is Arindam."),
        (1, "assistant", reply["reply"]),
    ]
    assert all(m["created_at"] for m in history["messages"])


def test_long_conversation_reaches_the_model_whole(api, model_env):
    for fact in ["My favorite color is blue.", "I work as a software engineer.", "I have a dog named Max."]:
        assert api.post("about_me", fact)[0] == 200
    status, _, reply = api.post("about_me", "What do you know about me?")
    assert status == 200
    for fact in ["blue", "software engineer", "Max"]:
        assert fact in reply["reply"]
    assert model_env.user_texts(-1) == [
        "My favorite color is blue.", "I work as a software engineer.", "I have a dog named Max.",
        "What do you know about me?",
    ]


def test_history_window_limits_what_reaches_the_model(model_env, session_dir, monkeypatch):
    from tests.conftest import Api, load_handler

    monkeypatch.setenv("HISTORY_WINDOW", "4")
    api = Api(load_handler())
    for n in range(4):
        assert api.post("windowed", f"fact number {n}")[0] == 200
    texts = model_env.user_texts(-1)
    assert texts[-1] == "fact number 3" and "fact number 0" not in texts
    # The window limits what the model sees, not what is kept.
    assert len(api.history("windowed")[2]["messages"]) == 8


@pytest.mark.parametrize("store", ["files", "s3"])
def test_sessions_stay_independent(store, request, model_env):
    api = request.getfixturevalue("api" if store == "files" else "s3_api")
    api.post("trip_planning_session", "I want to visit Japan in April.")
    api.post("python_learning_session", "Teach me list comprehensions.")
    api.post("trip_planning_session", "What should I pack?")
    assert model_env.user_texts(-1) == ["I want to visit Japan in April.", "What should I pack?"]
    api.post("python_learning_session", "And generators?")
    assert model_env.user_texts(-1) == ["Teach me list comprehensions.", "And generators?"]


@pytest.mark.parametrize("store", ["files", "s3"])
def test_delete_then_the_session_starts_fresh(store, request, model_env):
    api = request.getfixturevalue("api" if store == "files" else "s3_api")
    api.post(SESSION, "Hey, my name is Arindam.")
    status, _, body = api.delete(SESSION)
    assert status == 204 and body is None
    assert api.history(SESSION)[0] == 404
    assert api.delete(SESSION)[0] == 404

    status, _, reply = api.post(SESSION, "Do you remember my name?")
    assert status == 200 and "Arindam" not in reply["reply"] and reply["message_count"] == 2
    assert model_env.user_texts(-1) == ["Do you remember my name?"]


def test_two_callers_with_the_same_session_id_never_meet(s3_api, model_env, s3_bucket):
    alice = "arn:aws:iam::123456789012:user/alice"
    bob = "arn:aws:sts::123456789012:assumed-role/Agents/bob"
    s3_api.post("shared", "Hey, my name is Alice.", caller=alice)
    status, _, reply = s3_api.post("shared", "Do you remember my name?", caller=bob)
    assert status == 200 and "Alice" not in reply["reply"]
    assert model_env.user_texts(-1) == ["Do you remember my name?"]
    assert [m["text"] for m in s3_api.history("shared", caller=alice)[2]["messages"]][0] == "Hey, my name is Alice."
    assert s3_api.history("shared")[0] == 404  # the local caller has no such session
    assert s3_api.delete("shared", caller=bob)[0] == 204
    assert s3_api.history("shared", caller=alice)[0] == 200
    # Each caller is one path segment of its own, whatever characters its identity has.
    assert all(key.count("/session_shared/") == 1 for key in bucket_keys(s3_bucket))


def test_session_of_a_jwt_subject_is_its_own(api, model_env):
    from tests.conftest import http_api_event, LambdaContext

    def post(sub: str, message: str) -> dict:
        event = http_api_event("POST", "/sessions/chat/messages", {"content-type": "application/json"},
                               json.dumps({"message": message}).encode(), "127.0.0.1")
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": sub}, "scopes": None}}
        return api.lambda_handler(event, LambdaContext())

    post("user-1", "Hey, my name is Ada.")
    assert "Ada" not in json.loads(post("user-2", "Do you remember my name?")["body"])["reply"]
    assert "Ada" in json.loads(post("user-1", "Do you remember my name?")["body"])["reply"]
