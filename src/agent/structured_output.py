"""Structured output: a caller's JSON Schema in, an object that satisfies it out.

A caller (a Step Functions state, an EventBridge rule's target) sends ``output_schema``, a JSON
Schema of type object, and wants back ``output``, an object it can branch on. Strands' structured
output takes a pydantic model class; rather than translate JSON Schema into pydantic types (lossy:
patterns, enums, ``additionalProperties``, ``oneOf``...), the model class built here carries the
caller's schema verbatim as its JSON schema and validates with ``jsonschema`` itself. So the tool
spec the model sees is the caller's schema (as Strands flattens it), an invalid attempt goes back
to the model with the schema's own complaint, and the object returned is checked against the full
schema once more before it leaves.

    schema = check_output_schema(request_body["output_schema"])    # OutputSchemaError -> 400
    result = agent(prompt, structured_output_model=output_model(schema))
    output = output_of(result.structured_output, schema)           # OutputInvalid -> 502
"""

import json
from collections import OrderedDict
from collections.abc import Iterator
from threading import Lock
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, model_validator

from .errors import InvalidRequest, OutputInvalid

MAX_SCHEMA_BYTES = 64 * 1024
# The name of the tool the model calls to answer; Strands names it after the model class.
OUTPUT_TOOL_NAME = "structured_output"
DEFAULT_DESCRIPTION = "Give your final answer as an object matching this schema."
# Model classes per distinct schema, for the container's life: a workflow sends the same schema on
# every call. Bounded, because each class stays in Strands' own per-class spec cache.
MODELS_KEPT = 64


class OutputSchemaError(InvalidRequest):
    """The caller's ``output_schema`` cannot be used; the message names the problem (a 400
    ``invalid_request``). Not a ValueError: pydantic lets it through a validator as it is."""


__all__ = ["MAX_SCHEMA_BYTES", "OUTPUT_TOOL_NAME", "OutputInvalid", "OutputSchemaError", "RequestedOutput",
           "check_output_schema", "output_model", "output_of", "requested_output"]


def check_output_schema(schema: Any) -> dict[str, Any]:
    """``schema`` if it is a usable output schema: a JSON Schema object of type object, at most
    64 KB as JSON, with only local ``$ref``s (a remote one would be fetched, or fail, per turn)."""
    if not isinstance(schema, dict):
        raise OutputSchemaError("output_schema must be a JSON object (a JSON Schema)")
    size = len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_SCHEMA_BYTES:
        raise OutputSchemaError(f"output_schema is {size} bytes as JSON; at most {MAX_SCHEMA_BYTES} are allowed")
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise OutputSchemaError(f"output_schema is not valid JSON Schema: {error.message}{_at(error.path)}") from None
    if schema.get("type") != "object":
        raise OutputSchemaError('output_schema must describe an object: give it "type": "object"')
    for where, ref in _refs(schema, ()):
        if not ref.startswith("#"):
            raise OutputSchemaError(f"output_schema may only use local $ref (#/...): {ref!r}{_at(where)}")
    return schema


def output_model(schema: dict[str, Any]) -> type[BaseModel]:
    """The pydantic class Strands' ``structured_output_model`` takes, for a checked schema."""
    key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    with _lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = _model_for(schema)
            while len(_models) > MODELS_KEPT:
                _models.popitem(last=False)
        _models.move_to_end(key)
        return model


def output_of(produced: BaseModel | None, schema: dict[str, Any]) -> dict[str, Any]:
    """The object the model produced, as JSON, if it satisfies ``schema``."""
    if produced is None:
        raise OutputInvalid("The model did not produce the structured output; nothing was stored.")
    value = produced.model_dump(mode="json")
    problem = _problem(value, schema)
    if problem:
        raise OutputInvalid(f"The model's output does not match output_schema ({problem}); nothing was stored.")
    return value


class RequestedOutput:
    """A turn's structured output: the model class Strands is given, and what the model produced."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.model = output_model(schema)
        self.produced: BaseModel | None = None

    def output(self) -> dict[str, Any]:
        """The object, checked against the schema (OutputInvalid otherwise)."""
        return output_of(self.produced, self.schema)


def requested_output(schema: Any) -> RequestedOutput | None:
    """None when no ``output_schema`` was sent; OutputSchemaError when it cannot be used."""
    return None if schema is None else RequestedOutput(check_output_schema(schema))


def _model_for(schema: dict[str, Any]) -> type[BaseModel]:
    frozen = json.loads(json.dumps(schema))  # the class keeps its own copy

    class Output(BaseModel):
        model_config = ConfigDict(extra="allow")

        @model_validator(mode="before")
        @classmethod
        def satisfies_schema(cls, value: Any) -> Any:
            problem = _problem(value, frozen)
            if problem:
                raise ValueError(problem)  # pydantic reports it; Strands sends it back to the model
            return value

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return json.loads(json.dumps(frozen))

    Output.__name__ = Output.__qualname__ = OUTPUT_TOOL_NAME
    Output.__doc__ = str(frozen.get("description") or DEFAULT_DESCRIPTION)
    return Output


def _problem(value: Any, schema: dict[str, Any]) -> str | None:
    """The first way ``value`` fails ``schema`` (deepest first), or None."""
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    return None if error is None else f"{error.message}{_at(error.path)}"


def _at(path: Any) -> str:
    parts = [str(part) for part in path]
    return f" at {'/'.join(parts)}" if parts else ""


def _refs(node: Any, where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, (*where, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, (*where, str(index)))


_models: "OrderedDict[str, type[BaseModel]]" = OrderedDict()
_lock = Lock()
