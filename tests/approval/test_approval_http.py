"""Approval over HTTP, through the real handler: a call of an approval tool pauses the turn and is
stored; the answer comes in another request, to another container built from the same store,
and the turn goes on from where it stopped. The tool records its calls, so "nothing ran before
approval" is observed, not assumed; the test model records what it was sent."""

import json
from pathlib import Path
from typing import Any

from model_server import ModelServer, Reply

from tests.approval.acting_tools import cancelled, order_id
from tests.conftest import Api

SESSION = "refunds"


def answer(api: Api, session_id: str, *responses: dict[str, Any], **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return api.request("POST", f"/sessions/{session_id}/messages", {"interrupt_responses": list(responses)}, **kwargs)


def pause(api: Api, model_server: ModelServer, order: str, session_id: str = SESSION) -> dict[str, Any]:
    """A turn whose model calls cancel_order: the 200 body of the paused turn."""
    model_server.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    status, _, body = api.post(session_id, f"Please cancel order {order}.")
    assert status == 200, body
    return body


def stored_agent(session_dir: Path, session_id: str = SESSION) -> dict[str, Any]:
    found = [p for p in session_dir.rglob("agent.json") if session_id in str(p)]
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def test_a_call_that_needs_approval_pauses_the_turn_and_is_stored_without_running(
        approval_env: dict[str, str], model_server: ModelServer, session_dir: Path) -> None:
    order = order_id()
    body = pause(Api(approval_env), model_server, order)

    assert body["stop_reason"] == "interrupt" and body["reply"] == ""
    pending, = body["interrupts"]
    assert set(pending) == {"id", "tool", "input", "reason"}
    assert pending["tool"] == "cancel_order" and pending["input"] == {"order_id": order}
    assert cancelled(order) == 0  # nothing ran
    assert len(model_server.requests) == 1  # and the model was not asked to go on without a result
    interrupt_state = stored_agent(session_dir)["_internal_state"]["interrupt_state"]
    assert interrupt_state["activated"] is True and pending["id"] in interrupt_state["interrupts"]


def test_an_approval_in_a_new_container_runs_the_tool_and_the_reply_has_its_result(
        approval_env: dict[str, str], model_server: ModelServer) -> None:
    order = order_id()
    pending, = pause(Api(approval_env), model_server, order)["interrupts"]

    restarted = Api(approval_env)  # a new container: nothing in memory, the same store
    status, _, body = answer(restarted, SESSION, {"id": pending["id"], "approve": True})

    assert status == 200, body
    assert cancelled(order) == 1
    assert body["stop_reason"] == "end_turn" and "interrupts" not in body
    assert f"Order {order} is cancelled" in body["reply"]
    # The model was not asked again for the call: the turn went on from the stored one.
    assert len(model_server.requests) == 2
    assert [m["role"] for m in model_server.requests[1]["messages"]] == ["system", "user", "assistant", "tool"]
    assert restarted.texts(SESSION)[0] == f"Please cancel order {order}."
    assert restarted.texts(SESSION)[-1] == body["reply"]


def test_a_denial_reaches_the_model_as_the_tools_result_and_the_tool_never_runs(
        approval_env: dict[str, str], model_server: ModelServer) -> None:
    order = order_id()
    api = Api(approval_env)
    pending, = pause(api, model_server, order)["interrupts"]

    status, _, body = answer(Api(approval_env), SESSION,
                             {"id": pending["id"], "approve": False, "reason": "The customer changed their mind."})

    assert status == 200, body
    assert cancelled(order) == 0
    tool_result, = [m for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_result["content"] == "A person denied this call: The customer changed their mind."
    assert body["reply"] == "The tool returned: A person denied this call: The customer changed their mind."


def test_a_new_message_while_a_call_waits_is_409_naming_it_and_changes_nothing(
        approval_env: dict[str, str], model_server: ModelServer, session_dir: Path) -> None:
    api = Api(approval_env)
    pending, = pause(api, model_server, order_id())["interrupts"]
    before = stored_agent(session_dir)

    status, _, body = api.post(SESSION, "Never mind, what time is it?")

    assert status == 409, body
    assert body["error"]["code"] == "approval_pending" and pending["id"] in body["error"]["message"]
    assert stored_agent(session_dir) == before
    assert len(model_server.requests) == 1


def test_an_unknown_or_already_answered_id_is_400_and_runs_nothing(
        approval_env: dict[str, str], model_server: ModelServer, session_dir: Path) -> None:
    api, order = Api(approval_env), order_id()
    pending, = pause(api, model_server, order)["interrupts"]
    before = stored_agent(session_dir)

    status, _, body = answer(api, SESSION, {"id": "v1:before_tool_call:nope", "approve": True})
    assert status == 400 and body["error"]["code"] == "invalid_request", body
    assert "nope" in body["error"]["message"]
    assert stored_agent(session_dir) == before and cancelled(order) == 0

    assert answer(api, SESSION, {"id": pending["id"], "approve": True})[0] == 200
    status, _, body = answer(api, SESSION, {"id": pending["id"], "approve": True})  # answered already
    assert status == 400 and body["error"]["code"] == "invalid_request", body
    assert cancelled(order) == 1


def test_answers_to_a_session_with_nothing_pending_are_400(approval_env: dict[str, str]) -> None:
    status, _, body = answer(Api(approval_env), "never-paused", {"id": "x", "approve": True})
    assert status == 400 and body["error"]["code"] == "invalid_request", body


def test_an_answer_retried_with_its_idempotency_key_replays_the_reply_and_runs_the_tool_once(
        approval_env: dict[str, str], model_server: ModelServer) -> None:
    api, order = Api(approval_env), order_id()
    pending, = pause(api, model_server, order)["interrupts"]
    approve = {"id": pending["id"], "approve": True}

    first = answer(api, SESSION, approve, headers={"idempotency-key": "approve-1"})
    again = answer(Api(approval_env), SESSION, approve, headers={"idempotency-key": "approve-1"})
    other = answer(api, SESSION, {**approve, "approve": False}, headers={"idempotency-key": "approve-1"})

    assert first[0] == again[0] == 200 and first[2] == again[2]
    assert cancelled(order) == 1
    assert other[0] == 422 and other[2]["error"]["code"] == "idempotency_key_reused"


def test_malformed_answers_are_400_with_a_sentence(approval_env: dict[str, str], model_server: ModelServer) -> None:
    api = Api(approval_env)
    cases = [
        ({"interrupt_responses": []}, "interrupt_responses"),
        ({"interrupt_responses": [{"id": "x", "approve": "yes"}]}, '"approve" must be true or false.'),
        ({"interrupt_responses": [{"id": "x"}]}, '"approve" must be true or false.'),
        ({"interrupt_responses": [{"id": "x", "approve": True}], "message": "hi"}, "not both"),
        ({"interrupt_responses": [{"id": "x", "approve": True}, {"id": "x", "approve": False}]}, "appears twice"),
    ]
    for body, said in cases:
        status, _, answer_body = api.request("POST", f"/sessions/{SESSION}/messages", body)
        assert status == 400, (body, answer_body)
        assert said in answer_body["error"]["message"], (body, answer_body)
    assert model_server.requests == []


def test_a_tool_not_named_runs_without_asking(approval_env: dict[str, str], model_server: ModelServer) -> None:
    model_server.queue(Reply.call_tool("current_time", {}))
    status, _, body = Api(approval_env).post("clock", "What time is it?")
    assert status == 200 and body["stop_reason"] == "end_turn" and "interrupts" not in body
    assert body["reply"].startswith("The tool returned: 20")


def test_a_star_makes_every_tool_wait(env: dict[str, str], model_server: ModelServer) -> None:
    model_server.queue(Reply.call_tool("current_time", {}))
    status, _, body = Api({**env, "APPROVAL_TOOLS": "*"}).post("clock", "What time is it?")
    assert status == 200 and body["stop_reason"] == "interrupt"
    assert [c["tool"] for c in body["interrupts"]] == ["current_time"]
