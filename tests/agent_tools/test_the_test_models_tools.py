"""The bundled test model uses the tools it is offered (what `make dev` shows offline): the tool the
user names or describes, with arguments from the message, and Strands' structured output tool with
an object that fits its schema."""

from typing import Any

import jsonschema
import pytest
from model_answers import answer

ORDER = {"name": "get_order_status", "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                                                    "required": ["order_id"]}}
ADD = {"name": "add_task_step", "parameters": {"type": "object", "properties": {"text": {"type": "string"}},
                                               "required": ["text"]}}
COMPLETE = {"name": "complete_task_step", "parameters": {"type": "object", "properties": {"step": {"type": "integer"}},
                                                         "required": ["step"]}}
LIST = {"name": "list_task_steps", "parameters": {"type": "object", "properties": {}}}
TIME = {"name": "current_time", "parameters": {"type": "object", "properties": {}}}


def request(message: str, *tools: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": message}],
            "tools": [{"type": "function", "function": tool} for tool in tools]}


@pytest.mark.parametrize(("message", "call"), [
    ("use get_order_status for order A-100", ("get_order_status", {"order_id": "A-100"})),
    ("what is the status of order 1234?", ("get_order_status", {"order_id": "1234"})),
    ("add a task step: book the flight", ("add_task_step", {"text": "book the flight"})),
    ("use add_task_step to reserve the hotel", ("add_task_step", {"text": "reserve the hotel"})),
    ("complete task step 2", ("complete_task_step", {"step": 2})),
    ("list my task steps", ("list_task_steps", {})),
    ("what is the current time?", ("current_time", {})),
])
def test_a_tool_the_user_asks_for_is_called(message: str, call: tuple[str, dict[str, Any]]) -> None:
    assert answer(request(message, TIME, ORDER, ADD, COMPLETE, LIST)).tool == call


@pytest.mark.parametrize("message", ["take your time", "my task is hard", "hello"])
def test_other_messages_call_no_tool(message: str) -> None:
    said = answer(request(message, TIME, ORDER, ADD, COMPLETE, LIST))
    assert (said.tool, said.text) == (None, f"Noted: {message}")


SCHEMAS = [
    {"type": "object", "properties": {"decision": {"enum": ["approve", "reject"]}, "reason": {"type": "string",
                                                                                              "minLength": 40}},
     "required": ["decision", "reason"], "additionalProperties": False},
    {"type": "object", "$defs": {"money": {"type": "number", "minimum": 5}},
     "properties": {"refund": {"$ref": "#/$defs/money"}, "items": {"type": "array", "minItems": 2,
                                                                   "items": {"type": "integer"}},
                    "urgent": {"type": "boolean"}, "note": {"anyOf": [{"type": "string", "maxLength": 3}]}},
     "required": ["refund", "items", "urgent", "note"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_structured_output_is_answered_with_an_object_that_fits(schema: dict[str, Any]) -> None:
    said = answer(request("Reject the refund, please", TIME, {"name": "structured_output", "parameters": schema}))
    assert said.tool is not None and said.tool[0] == "structured_output"
    jsonschema.validate(said.tool[1], schema)
    if "decision" in said.tool[1]:
        assert said.tool[1]["decision"] == "reject"  # the value the message mentions
