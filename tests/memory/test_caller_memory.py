"""MEMORY=on: facts a caller's agent keeps across that caller's sessions, and only that caller's."""

import json
import threading

from model_server import Reply

from tests.conftest import BUCKET, Api, bucket_keys

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def memory_api(env: dict[str, str], **more: str) -> Api:
    return Api({**env, "MEMORY": "on", **more})


def system_prompt(request: dict) -> str:
    return str(request["messages"][0]["content"]) if request["messages"][0]["role"] == "system" else ""


def test_a_name_given_in_session_a_is_recalled_in_session_b_and_not_by_another_caller(env, model_server):
    api = memory_api(env)
    assert api.post("session_a", "Hey, my name is Arindam.", caller=ALICE)[0] == 200
    offered = {tool["function"]["name"] for tool in model_server.requests[0]["tools"]}
    assert {"remember", "forget"} <= offered

    status, _, reply = api.post("session_b", "Do you remember my name?", caller=ALICE)
    assert status == 200 and "Arindam" in reply["reply"]
    assert "Hey, my name is Arindam." in system_prompt(model_server.requests[-1])  # verbatim

    status, _, reply = api.post("session_b", "Do you remember my name?", caller=BOB)
    assert status == 200 and "Arindam" not in reply["reply"]
    assert "Arindam" not in json.dumps(model_server.requests[-1])


def test_the_memory_api_lists_forgets_one_fact_and_forgets_everything(env, model_server):
    api = memory_api(env)
    api.post("a", "Hey, my name is Arindam.", caller=ALICE)
    api.post("a", "I like green tea.", caller=ALICE)
    status, _, memory = api.request("GET", "/memory", caller=ALICE)
    assert status == 200
    assert [f["text"] for f in memory["facts"]] == ["Hey, my name is Arindam.", "I like green tea."]
    assert all(set(f) == {"id", "text", "created_at", "session_id"} and f["session_id"] == "a" for f in memory["facts"])
    assert api.request("GET", "/memory", caller=BOB)[2] == {"enabled": True, "facts": []}

    tea = memory["facts"][1]["id"]
    assert api.request("DELETE", f"/memory/{tea}", caller=BOB)[0] == 404  # not Bob's to forget
    assert api.request("DELETE", f"/memory/{tea}", caller=ALICE)[0] == 204
    assert [f["text"] for f in api.request("GET", "/memory", caller=ALICE)[2]["facts"]] == ["Hey, my name is Arindam."]
    assert api.request("DELETE", f"/memory/{tea}", caller=ALICE)[2]["error"]["code"] == "fact_not_found"

    assert api.request("DELETE", "/memory", caller=ALICE)[0] == 204
    assert api.request("GET", "/memory", caller=ALICE)[2] == {"enabled": True, "facts": []}
    assert "Arindam" not in api.post("b", "Do you remember my name?", caller=ALICE)[2]["reply"]


def test_the_forget_tool_removes_a_fact(env, model_server):
    api = memory_api(env)
    api.post("a", "Hey, my name is Arindam.", caller=ALICE)
    api.post("a", "Forget my name.", caller=ALICE)
    forgot = [r for r in model_server.requests if any(
        call["function"]["name"] == "forget" for m in r["messages"] for call in m.get("tool_calls") or [])]
    assert forgot, "the model called forget"
    assert api.request("GET", "/memory", caller=ALICE)[2] == {"enabled": True, "facts": []}
    assert "Arindam" not in api.post("b", "Do you remember my name?", caller=ALICE)[2]["reply"]


def test_deleting_a_session_keeps_the_callers_facts(env, model_server):
    api = memory_api(env)
    api.post("a", "Hey, my name is Arindam.", caller=ALICE)
    assert api.delete("a", caller=ALICE)[0] == 204
    assert len(api.request("GET", "/memory", caller=ALICE)[2]["facts"]) == 1
    assert "Arindam" in api.post("a", "Do you remember my name?", caller=ALICE)[2]["reply"]


def test_the_oldest_facts_go_first_beyond_memory_max_facts(env, model_server):
    api = memory_api(env, MEMORY_MAX_FACTS="2")
    for fact in ["I like tea.", "I live in Pune.", "I work as a baker."]:
        api.post("a", fact, caller=ALICE)
    assert [f["text"] for f in api.request("GET", "/memory", caller=ALICE)[2]["facts"]] == [
        "I live in Pune.", "I work as a baker."]


def test_a_fact_too_long_for_every_prompt_is_refused_and_the_model_is_told_why(env, model_server):
    api = memory_api(env)
    model_server.queue(Reply.call_tool("remember", {"fact": "I like tea. " * 100}), Reply.say("Fine."))
    assert api.post("a", "Remember all of this.", caller=ALICE)[0] == 200
    tool_result = [m for m in model_server.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert "at most 500 characters" in str(tool_result["content"])
    assert api.request("GET", "/memory", caller=ALICE)[2] == {"enabled": True, "facts": []}


def test_a_failed_turn_remembers_nothing(env, model_server):
    api = memory_api(env)
    model_server.queue(Reply.call_tool("remember", {"fact": "My name is Arindam."}), Reply.error(500))
    assert api.post("a", "Hey, my name is Arindam.", caller=ALICE)[0] == 502
    assert api.request("GET", "/memory", caller=ALICE)[2] == {"enabled": True, "facts": []}


def test_concurrent_sessions_of_one_caller_both_keep_their_facts(env, model_server, s3):
    settings = {**env, "MEMORY": "on", "SESSION_BUCKET": BUCKET}
    model_server.delay = 0.3  # the two turns overlap, and commit one after the other
    # Two containers at once, as direct invocations: Powertools' HTTP resolver keeps the current
    # event per process (Lambda runs one request per process), so threads here must not share it.
    turns = [("a", "I like green tea."), ("b", "I live in Pune.")]
    threads = [threading.Thread(target=lambda s=s, f=f: Api(settings).invoke(
        {"session_id": s, "message": f, "caller": ALICE})) for s, f in turns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    texts = sorted(f["text"] for f in Api(settings).request("GET", "/memory", caller=ALICE)[2]["facts"])
    assert texts == ["I like green tea.", "I live in Pune."]
    assert sum(key.endswith("/memory.json") for key in bucket_keys(s3)) == 1


def test_memory_costs_at_most_one_extra_read_per_turn(env, model_server, s3):
    reads: dict[str, list[str]] = {}
    for memory in ("off", "on"):
        api = Api({**env, "MEMORY": memory, "SESSION_BUCKET": BUCKET})
        api.post(f"s_{memory}", "hello", caller=ALICE)
        calls: list[str] = []
        api.services.clients.client("s3").meta.events.register(
            "before-send.s3", lambda event_name, calls=calls, **_: calls.append(event_name.rsplit(".", 1)[-1]))
        api.post(f"s_{memory}", "Do you remember my name?", caller=ALICE)
        reads[memory] = [c for c in calls if c in ("GetObject", "ListObjectsV2", "HeadObject")]
    assert len(reads["off"]) == 1 and len(reads["on"]) == 2  # agent.json; + memory.json


def test_with_memory_off_nothing_changes(env, model_server, session_dir):
    api = Api(env)
    api.post("a", "Hey, my name is Arindam.")
    assert "tools" not in model_server.requests[0] or not {
        t["function"]["name"] for t in model_server.requests[0]["tools"]} & {"remember", "forget"}
    assert "remember about this user" not in system_prompt(model_server.requests[0])
    assert not list(session_dir.rglob("memory.json"))
    assert "Arindam" not in api.post("b", "Do you remember my name?")[2]["reply"]
