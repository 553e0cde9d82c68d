"""MODEL_PARAMS checked against what LiteLLM accepts for the provider, types included: a
misspelled key or a wrong-typed value stops start-up with one line, instead of being sent (or
silently dropped) on every turn.

    check_model_params("openai/gpt-4o-mini", {"temprature": 0.3})
    # SettingsError: MODEL_PARAMS has 'temprature', which openai/gpt-4o-mini does not take; did you mean 'temperature'?
"""

import difflib
import inspect
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

import litellm
from pydantic import TypeAdapter, ValidationError

from ..settings import SettingsError

# Passed through by LiteLLM to the provider whatever it lists: a request's extra JSON, its own
# switch for parameters a provider lacks, and the sampling knob Anthropic, Bedrock and Vertex take.
PASSED_THROUGH = {"extra_body", "drop_params", "top_k"}
# Set by the agent itself on every call: a value here would fight it.
SET_BY_THE_AGENT = {"stream", "stream_options", "tools", "tool_choice", "functions", "function_call", "max_retries"}
TYPE_NAMES = {float: "a number", int: "a whole number", bool: "true or false", str: "a string", list: "a list",
              dict: "a JSON object"}


def check_model_params(model_id: str, params: Mapping[str, Any]) -> None:
    """SettingsError naming the first key of ``params`` that LiteLLM would not take for ``model_id``."""
    try:
        model, provider = litellm.get_llm_provider(model_id)[:2]
    except Exception:  # an unknown provider is the provider's check to name
        return
    known = set(litellm.get_supported_openai_params(model=model, custom_llm_provider=provider) or ()) | PASSED_THROUGH
    for key, value in params.items():
        if key in SET_BY_THE_AGENT:
            raise SettingsError(f"MODEL_PARAMS sets {key!r}, which the agent sets itself on every call; remove it.")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known - SET_BY_THE_AGENT), n=1)
            takes = ", ".join(sorted(known - SET_BY_THE_AGENT))
            hint = f"; did you mean {close[0]!r}?" if close else f"; it takes {takes}."
            raise SettingsError(f"MODEL_PARAMS has {key!r}, which {model_id} does not take{hint}")
        expected = _expected_type(key)
        if expected is not None and not _fits(expected, value):
            raise SettingsError(f"MODEL_PARAMS {key} must be {_described(expected)}, not {value!r}.")


@cache
def _expected_type(key: str) -> Any:
    """The type LiteLLM's completion() declares for ``key`` (None: not declared)."""
    parameter = inspect.signature(litellm.completion).parameters.get(key)
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return None
    return parameter.annotation


def _fits(expected: Any, value: Any) -> bool:
    try:
        TypeAdapter(expected).validate_python(value, strict=True)
    except ValidationError:
        return False
    except Exception:  # a type pydantic cannot check (a forward reference): LiteLLM will
        return True
    return True


def _described(expected: Any) -> str:
    """``float | None`` as "a number", ``Literal['low', 'high']`` as "one of 'low', 'high'"."""
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        parts = [_described(arg) for arg in typing.get_args(expected) if arg is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if typing.get_origin(expected) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(expected))
    return TYPE_NAMES.get(typing.get_origin(expected) or expected, "the type LiteLLM expects")
