"""Structured output: a caller's JSON Schema is checked (a clear message naming the problem), the
model is asked for it through Strands' structured output, and the object it produced is returned
only if it satisfies the schema."""

import json
from typing import Any

import pytest
from model_server import ModelServer, Reply
from strands import Agent
from strands.models.litellm import LiteLLMModel
from strands.types.exceptions import StructuredOutputException

from agent.structured_output import (
    MAX_SCHEMA_BYTES,
    OUTPUT_TOOL_NAME,
    OutputInvalid,
    OutputSchemaError,
    check_output_schema,
    output_model,
    output_of,
)

DECISION = {
    "type": "object",
    "description": "Whether to approve the refund.",
    "properties": {
        "decision": {"enum": ["approve", "reject"]},
        "reason": {"type": "string", "minLength": 3},
        "amount": {"type": "number", "minimum": 0},
    },
    "required": ["decision", "reason"],
    "additionalProperties": False,
}


def ask(model_server: ModelServer, schema: dict[str, Any]) -> Any:
    model = LiteLLMModel(client_args={"api_key": "sk-test-key", "api_base": model_server.base_url},
                         model_id="openai/test-model")
    agent = Agent(model=model, callback_handler=None)
    return agent("Refund order A-100?", structured_output_model=output_model(check_output_schema(schema)))


def test_the_object_the_model_produced_comes_back_as_json(model_server: ModelServer) -> None:
    model_server.queue(Reply.call_tool(OUTPUT_TOOL_NAME, {"decision": "approve", "reason": "late", "amount": 12.5}))
    result = ask(model_server, DECISION)
    assert output_of(result.structured_output, DECISION) == {"decision": "approve", "reason": "late", "amount": 12.5}
    offered = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    parameters = offered[OUTPUT_TOOL_NAME]["parameters"]
    assert parameters["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert parameters["required"] == ["decision", "reason"]
    assert "Whether to approve the refund." in offered[OUTPUT_TOOL_NAME]["description"]


def test_a_wrong_attempt_goes_back_to_the_model_with_the_schemas_complaint(model_server: ModelServer) -> None:
    model_server.queue(Reply.call_tool(OUTPUT_TOOL_NAME, {"decision": "maybe", "reason": "unsure"}),
                       Reply.call_tool(OUTPUT_TOOL_NAME, {"decision": "reject", "reason": "too late"}))
    result = ask(model_server, DECISION)
    assert output_of(result.structured_output, DECISION) == {"decision": "reject", "reason": "too late"}
    told = json.dumps(model_server.requests[1]["messages"][-1])
    assert "'maybe' is not one of ['approve', 'reject'] at decision" in told


def test_a_model_that_never_satisfies_the_schema_fails_the_turn(model_server: ModelServer) -> None:
    # (then text: the test model's own answer would fit the schema)
    model_server.queue(*[Reply.call_tool(OUTPUT_TOOL_NAME, {"decision": "maybe", "reason": "?"})] * 8,
                       *[Reply.say("I cannot decide that.")] * 2)
    with pytest.raises(StructuredOutputException):
        ask(model_server, DECISION)


def test_an_object_outside_the_schema_is_output_invalid() -> None:
    model = output_model(DECISION)
    produced = model.model_construct(decision="approve", reason="ok", extra="not allowed")  # skips validation
    with pytest.raises(OutputInvalid, match="Additional properties are not allowed"):
        output_of(produced, DECISION)
    with pytest.raises(OutputInvalid, match="did not produce"):
        output_of(None, DECISION)


def test_one_model_class_per_distinct_schema() -> None:
    same = json.loads(json.dumps(DECISION))
    assert output_model(same) is output_model(DECISION)
    assert output_model({**DECISION, "required": ["decision"]}) is not output_model(DECISION)


@pytest.mark.parametrize(("schema", "problem"), [
    ([], "output_schema must be a JSON object (a JSON Schema)"),
    ({"type": "objekt"}, "output_schema is not valid JSON Schema: 'objekt' is not valid under any of the given "
                         "schemas at type"),
    ({"type": "object", "properties": {"n": {"type": "number", "minimum": "zero"}}},
     "output_schema is not valid JSON Schema: 'zero' is not of type 'number' at properties/n/minimum"),
    ({"type": "object", "required": "name"},
     "output_schema is not valid JSON Schema: 'name' is not of type 'array' at required"),
    ({"type": "array", "items": {"type": "string"}}, 'output_schema must describe an object: give it "type": "object"'),
    ({"properties": {"a": {"type": "string"}}}, 'output_schema must describe an object: give it "type": "object"'),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
     "output_schema may only use local $ref (#/...): 'https://example.com/a.json' at properties/a"),
])
def test_an_unusable_schema_is_refused_naming_the_problem(schema: Any, problem: str) -> None:
    with pytest.raises(OutputSchemaError) as caught:
        check_output_schema(schema)
    assert str(caught.value) == problem


def test_a_schema_over_64_kb_is_refused() -> None:
    big = {"type": "object", "description": "x" * MAX_SCHEMA_BYTES}
    with pytest.raises(OutputSchemaError, match=r"output_schema is \d+ bytes as JSON; at most 65536 are allowed"):
        check_output_schema(big)
    fits = {"type": "object", "description": "x" * (MAX_SCHEMA_BYTES - 100)}
    assert check_output_schema(fits) is fits


def test_local_refs_are_followed_when_checking_the_output() -> None:
    schema = {"type": "object", "$defs": {"money": {"type": "number", "minimum": 0}},
              "properties": {"refund": {"$ref": "#/$defs/money"}}, "required": ["refund"]}
    model = output_model(check_output_schema(schema))
    assert output_of(model(refund=3), schema) == {"refund": 3}
    with pytest.raises(ValueError, match="-1 is less than the minimum of 0 at refund"):
        model(refund=-1)
