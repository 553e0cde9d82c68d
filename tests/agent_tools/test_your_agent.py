"""The user's agent through the real handler (in-process containers, the test model over HTTP):
AGENT_TOOLS modules, SYSTEM_PROMPT_FILE, task state across turns and a new container, GET
/sessions/{id}/state, and structured output from every way a turn arrives."""

import json
from pathlib import Path
from typing import Any

import pytest
from model_server import ModelServer, Reply

from agent.settings import SettingsError
from agent.structured_output import OUTPUT_TOOL_NAME
from tests.conftest import Api, stored_files

EXAMPLES = "agent_tools.orders,agent_tools.tasks"
DECISION = {
    "type": "object",
    "properties": {"decision": {"enum": ["approve", "reject"]}, "reason": {"type": "string", "minLength": 3}},
    "required": ["decision", "reason"],
    "additionalProperties": False,
}


@pytest.fixture
def tools_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "AGENT_TOOLS": EXAMPLES}


def offered(model_server: ModelServer, request_index: int = 0) -> list[str]:
    return [t["function"]["name"] for t in model_server.requests[request_index].get("tools") or []]


def test_the_modules_tools_are_offered_and_called_in_a_turn(tools_env: dict[str, str],
                                                            model_server: ModelServer) -> None:
    api = Api(tools_env)
    status, _, body = api.post("s1", "use get_order_status for order A-100")
    assert status == 200, body
    assert body["reply"] == "The tool returned: Order A-100: shipped on 2026-11-02, arriving 2026-11-05."
    assert offered(model_server) == ["current_time", "get_order_status", "add_task_step", "complete_task_step",
                                     "list_task_steps"]


def test_without_agent_tools_only_the_built_in_tool_is_offered(env: dict[str, str],
                                                               model_server: ModelServer) -> None:
    assert Api(env).post("s1", "use get_order_status for order A-100")[2]["reply"] == \
        "Noted: use get_order_status for order A-100"
    assert offered(model_server) == ["current_time"]


@pytest.mark.parametrize(("modules", "message"), [
    ("agent_tools.ordres", "AGENT_TOOLS: module 'agent_tools.ordres' could not be imported: "
                           "ModuleNotFoundError: No module named 'agent_tools.ordres'"),
    ("agent_tools", "AGENT_TOOLS: module 'agent_tools' defines no tool (decorate a function with @strands.tool)"),
])
def test_a_module_that_cannot_be_used_stops_start_up_in_one_line(env: dict[str, str], modules: str,
                                                                 message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Api({**env, "AGENT_TOOLS": modules})
    assert str(caught.value) == message


def test_the_prompt_file_is_the_system_prompt(env: dict[str, str], model_server: ModelServer,
                                              tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("You are the order desk of Example Shop.\n")
    Api({**env, "SYSTEM_PROMPT_FILE": str(prompt)}).post("s1", "hello")
    system = [m for m in model_server.requests[0]["messages"] if m["role"] == "system"]
    assert "You are the order desk of Example Shop." in json.dumps(system)


@pytest.mark.parametrize(("extra", "message"), [
    ({"SYSTEM_PROMPT_FILE": "agent_tools/no-such-prompt.md"}, "SYSTEM_PROMPT_FILE 'agent_tools/no-such-prompt.md' "
                                                              "cannot be read (No such file or directory)"),
    ({"SYSTEM_PROMPT_FILE": "agent_tools/orders.py", "SYSTEM_PROMPT": "Be brief."},
     "Set SYSTEM_PROMPT or SYSTEM_PROMPT_FILE, not both."),
])
def test_an_unusable_prompt_setting_stops_start_up(env: dict[str, str], extra: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Api({**env, **extra})


# ---- task state -------------------------------------------------------------------------------

def test_a_task_list_lives_in_the_sessions_state_across_turns_and_containers(tools_env: dict[str, str]) -> None:
    first = Api(tools_env)
    first.post("trip", "add a task step: book the flight")
    first.post("trip", "use add_task_step to reserve the hotel")

    second = Api(tools_env)  # a new container: nothing in memory
    status, _, body = second.request("GET", "/sessions/trip/state")
    assert status == 200
    assert body == {"session_id": "trip", "state": {"task_steps": [
        {"step": 1, "text": "book the flight", "done": False},
        {"step": 2, "text": "reserve the hotel", "done": False}]}}
    assert "1. [x] book the flight\n2. [ ] reserve the hotel" in second.post("trip", "complete task step 1")[2]["reply"]
    assert Api(tools_env).request("GET", "/sessions/trip/state")[2]["state"]["task_steps"][0]["done"] is True


def test_the_state_of_a_session_without_one_is_empty_and_of_none_is_404(api: Api) -> None:
    api.post("s1", "hello")
    assert api.request("GET", "/sessions/s1/state") == (200, {"Content-Type": "application/json"},
                                                        {"session_id": "s1", "state": {}})
    status, _, body = api.request("GET", "/sessions/nobody/state")
    assert (status, body["error"]["code"]) == (404, "session_not_found")
    assert api.request("GET", "/sessions/s1/state", caller="arn:aws:iam::123456789012:user/other")[0] == 404


# ---- structured output ------------------------------------------------------------------------

def post_for_output(api: Api, session_id: str, message: str, schema: Any) -> tuple[int, Any]:
    status, _, body = api.request("POST", f"/sessions/{session_id}/messages",
                                  {"message": message, "output_schema": schema})
    return status, body


def test_the_reply_carries_an_object_valid_against_the_schema(api: Api, model_server: ModelServer,
                                                              session_dir: Path) -> None:
    status, body = post_for_output(api, "refunds", "Reject the refund of A-100: it arrived late", DECISION)
    assert status == 200, body
    assert body["output"] == {"decision": "reject", "reason": "Reject the refund of A-100: it arrived late"}
    parameters = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    assert parameters[OUTPUT_TOOL_NAME]["parameters"]["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert api.texts("refunds")[0] == "Reject the refund of A-100: it arrived late"  # the turn is stored
    assert "output" not in api.post("refunds", "thanks")[2]  # only when asked for


def test_a_tool_result_can_feed_the_output(tools_env: dict[str, str]) -> None:
    schema = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
    status, body = post_for_output(Api(tools_env), "s1", "what is the status of order A-102?", schema)
    assert (status, body["output"]) == (200, {"status": "Order A-102: delivered on 2026-10-28."})


@pytest.mark.parametrize(("schema", "problem"), [
    ({"type": "objekt"}, "output_schema is not valid JSON Schema: 'objekt' is not valid under any of the given "
                         "schemas at type"),
    ({"type": "array"}, 'output_schema must describe an object: give it "type": "object"'),
    ("an object please", "output_schema must be a JSON Schema object"),
])
def test_a_bad_schema_is_400_and_nothing_is_stored(api: Api, model_server: ModelServer, session_dir: Path,
                                                   schema: Any, problem: str) -> None:
    status, body = post_for_output(api, "s1", "hello", schema)
    assert status == 400
    assert body["error"]["code"] == "invalid_request" and body["error"]["message"].startswith(problem)
    assert model_server.requests == [] and stored_files(session_dir) == []


def test_a_model_that_cannot_produce_the_object_is_502_and_nothing_is_stored(api: Api, model_server: ModelServer,
                                                                            session_dir: Path) -> None:
    api.post("s1", "hello")
    before = stored_files(session_dir), api.texts("s1")
    model_server.queue(*[Reply.call_tool(OUTPUT_TOOL_NAME, {"decision": "maybe", "reason": "?"})] * 10)
    status, body = post_for_output(api, "s1", "Refund A-100?", DECISION)
    assert status == 502, body
    assert body["error"]["code"] == "output_invalid"
    assert "nothing was stored" in body["error"]["message"]
    assert (stored_files(session_dir), api.texts("s1")) == before


def test_a_direct_invocation_gets_the_output_too(api: Api) -> None:
    result = api.invoke({"session_id": "flow-1", "message": "approve it, the parcel was lost",
                         "output_schema": DECISION})
    assert result["output"] == {"decision": "approve", "reason": "approve it, the parcel was lost"}
    refused = api.invoke({"session_id": "flow-1", "message": "x", "output_schema": {"type": "object", "required": 1}})
    assert refused["error"]["code"] == "invalid_request"
