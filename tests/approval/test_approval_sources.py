"""The same approval flow over the WebSocket (the reply frame carries the pending calls; the
answer is a sendMessage with interrupt_responses, run by a worker), over a direct invocation, and
as an async turn (its status done with them)."""

from typing import Any

from model_server import ModelServer, Reply

from tests.approval.acting_tools import cancelled, order_id
from tests.conftest import Api
from tests.websocket.conftest import ALICE, Aws, WebSocketClient, aws  # noqa: F401  (aws: a fixture here too)

SESSION = "orders"


def frames_of_turn(cloud: Aws, connection_id: str, turn_id: str) -> list[dict[str, Any]]:
    return [f for f in cloud.frames(connection_id) if f.get("turn_id") == turn_id]


def test_over_the_websocket_the_reply_frame_names_the_call_and_an_answer_resumes_it(
        approval_env: dict[str, str], aws: Aws, model_server: ModelServer) -> None:  # noqa: F811
    order = order_id()
    ws = WebSocketClient(Api({**approval_env, "TURN_QUEUE_URL": aws.queue_url}), aws)
    ws.connect("c1")
    model_server.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    ws.message("c1", SESSION, f"Cancel {order}, please.")
    ws.run_worker()
    paused = aws.frames("c1")[-1]
    assert paused["type"] == "reply" and paused["stop_reason"] == "interrupt", paused
    pending, = paused["interrupts"]
    assert pending["tool"] == "cancel_order" and pending["input"] == {"order_id": order}
    assert cancelled(order) == 0

    ws.message("c1", SESSION, "Hello?")  # a message while it waits
    ws.run_worker()
    refused = aws.frames("c1")[-1]
    assert refused["type"] == "error" and refused["error"]["code"] == "approval_pending", refused

    restarted = WebSocketClient(Api({**approval_env, "TURN_QUEUE_URL": aws.queue_url}), aws)  # a new container
    restarted.send("c1", {"action": "sendMessage", "session_id": SESSION,
                          "interrupt_responses": [{"id": pending["id"], "approve": True}]})
    accepted = aws.frames("c1")[-1]
    assert accepted["type"] == "accepted"
    restarted.run_worker()
    frames = frames_of_turn(aws, "c1", accepted["turn_id"])
    reply = frames[-1]
    assert reply["type"] == "reply" and reply["stop_reason"] == "end_turn" and "interrupts" not in reply
    assert f"Order {order} is cancelled" in reply["reply"]
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == reply["reply"]  # streamed
    assert cancelled(order) == 1
    assert restarted.api.texts(SESSION, caller=ALICE)[-1] == reply["reply"]


def test_over_a_direct_invocation_the_result_names_the_call_and_an_answer_resumes_it(
        approval_env: dict[str, str], model_server: ModelServer) -> None:
    order = order_id()
    model_server.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    paused = Api(approval_env).invoke({"session_id": SESSION, "caller": "ops", "message": f"Cancel {order}."})
    assert paused["stop_reason"] == "interrupt", paused
    pending, = paused["interrupts"]
    assert cancelled(order) == 0

    restarted = Api(approval_env)
    refused = restarted.invoke({"session_id": SESSION, "caller": "ops", "message": "Status?"})
    assert refused["error"]["code"] == "approval_pending" and pending["id"] in refused["error"]["message"]
    stale = restarted.invoke({"session_id": SESSION, "caller": "ops",
                              "interrupt_responses": [{"id": pending["id"] + "x", "approve": True}]})
    assert stale["error"]["code"] == "invalid_request"

    denied = restarted.invoke({"session_id": SESSION, "caller": "ops", "interrupt_responses": [
        {"id": pending["id"], "approve": False, "reason": "Refunds need a manager."}]})
    assert denied["stop_reason"] == "end_turn", denied
    assert denied["reply"] == "The tool returned: A person denied this call: Refunds need a manager."
    assert cancelled(order) == 0


def test_an_async_turn_is_done_with_the_pending_calls_and_an_async_answer_resumes_it(
        approval_env: dict[str, str], aws: Aws, model_server: ModelServer) -> None:  # noqa: F811
    order = order_id()
    ws = WebSocketClient(Api({**approval_env, "TURN_QUEUE_URL": aws.queue_url}), aws)
    api, prefer = ws.api, {"Prefer": "respond-async"}
    model_server.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    status, _, accepted = api.post(SESSION, f"Cancel {order}.", headers=prefer)
    assert status == 202, accepted
    ws.run_worker()
    status, _, turn = api.request("GET", accepted["location"])
    assert status == 200 and turn["status"] == "done", turn
    assert turn["reply"]["stop_reason"] == "interrupt"
    pending, = turn["reply"]["interrupts"]

    status, _, accepted = api.request("POST", f"/sessions/{SESSION}/messages",
                                      {"interrupt_responses": [{"id": pending["id"], "approve": True}]},
                                      headers=prefer)
    assert status == 202, accepted
    assert cancelled(order) == 0  # queued, not run
    ws.run_worker()
    status, _, turn = api.request("GET", accepted["location"])
    assert turn["status"] == "done" and f"Order {order} is cancelled" in turn["reply"]["reply"], turn
    assert cancelled(order) == 1
