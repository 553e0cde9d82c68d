"""The shipped example tools, called by a Strands agent through LiteLLM and the test model: the
order status, and a task list kept in agent.state that survives a restart (a new agent restored
from the same stored session, as the next turn in another container is)."""

from pathlib import Path

import pytest
from model_server import ModelServer, Reply
from strands import Agent
from strands.models.litellm import LiteLLMModel
from strands.session.file_session_manager import FileSessionManager

from agent_tools import orders, tasks
from agent_tools.tasks import STATE_KEY


def test_model(model_server: ModelServer) -> LiteLLMModel:
    return LiteLLMModel(client_args={"api_key": "sk-test-key", "api_base": model_server.base_url},
                        model_id="openai/test-model")


test_model.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def agent(model_server: ModelServer, session_dir: Path | None = None, session_id: str = "s1") -> Agent:
    manager = FileSessionManager(session_id=session_id, storage_dir=str(session_dir)) if session_dir else None
    return Agent(model=test_model(model_server), callback_handler=None, session_manager=manager,
                 tools=[orders.get_order_status, tasks.add_task_step, tasks.complete_task_step,
                        tasks.list_task_steps])


def test_the_order_tool_answers_from_its_data(model_server: ModelServer) -> None:
    model_server.queue(Reply.call_tool("get_order_status", {"order_id": "a-100"}))
    reply = str(agent(model_server)("Where is my order A-100?"))
    assert "Order A-100: shipped on 2026-11-02, arriving 2026-11-05." in reply
    offered = [t["function"]["name"] for t in model_server.requests[0]["tools"]]
    assert "get_order_status" in offered


def test_an_unknown_order_is_said_so(model_server: ModelServer) -> None:
    model_server.queue(Reply.call_tool("get_order_status", {"order_id": "Z-9"}))
    assert "There is no order Z-9." in str(agent(model_server)("Where is Z-9?"))


def test_a_task_list_survives_a_restart(model_server: ModelServer, tmp_path: Path) -> None:
    first = agent(model_server, tmp_path)
    model_server.queue(Reply.call_tool("add_task_step", {"text": "Book the flight"}))
    first("Plan my trip: first book the flight")
    model_server.queue(Reply.call_tool("add_task_step", {"text": "Reserve the hotel"}))
    first("then reserve the hotel")

    # A new container: nothing in memory, the session read back from storage.
    second = agent(model_server, tmp_path)
    assert second.state.get(STATE_KEY) == [{"step": 1, "text": "Book the flight", "done": False},
                                           {"step": 2, "text": "Reserve the hotel", "done": False}]
    model_server.queue(Reply.call_tool("complete_task_step", {"step": 1}))
    reply = str(second("I booked the flight"))
    assert "1. [x] Book the flight" in reply and "2. [ ] Reserve the hotel" in reply

    third = agent(model_server, tmp_path)
    model_server.queue(Reply.call_tool("list_task_steps", {}))
    assert "1. [x] Book the flight\n2. [ ] Reserve the hotel" in str(third("where was I?"))


def test_task_lists_of_two_sessions_are_apart(model_server: ModelServer, tmp_path: Path) -> None:
    model_server.queue(Reply.call_tool("add_task_step", {"text": "Write the report"}))
    agent(model_server, tmp_path, "work")("add: write the report")
    model_server.queue(Reply.call_tool("list_task_steps", {}))
    assert "The task list is empty." in str(agent(model_server, tmp_path, "home")("what is on my list?"))


@pytest.mark.parametrize("step", [0, 3])
def test_completing_a_step_that_does_not_exist_changes_nothing(model_server: ModelServer, tmp_path: Path,
                                                               step: int) -> None:
    first = agent(model_server, tmp_path)
    model_server.queue(Reply.call_tool("add_task_step", {"text": "One"}))
    first("add one")
    model_server.queue(Reply.call_tool("complete_task_step", {"step": step}))
    assert f"There is no step {step}; the list has 1 steps." in str(first(f"done with step {step}"))
    assert agent(model_server, tmp_path).state.get(STATE_KEY) == [{"step": 1, "text": "One", "done": False}]
