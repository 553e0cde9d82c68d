"""How the test model uses tools it is offered, from the one request it was sent (see model_answers.py).

- ``named``: the latest message names a tool ("use get_order_status for order A-100").
- ``described``: it uses the words of a tool's name, past a leading verb ("what is the status of
  order A-100?" -> get_order_status; "list my task steps" -> list_task_steps).
- ``arguments``: each required parameter picked from the message: a number for an integer, an id
  (a word with a digit: A-100, 1234) for a string, else the text after the tool's name.
- ``fitting``: an object that fits a JSON Schema (Strands' structured output tool), strings from
  the text given, an enum's value the text mentions, numbers at their minimum.
"""

import re
from typing import Any

STRUCTURED_OUTPUT = "structured_output"
# Tools with answers of their own (model_answers.remember / forget), never picked by name here.
OWN_LOGIC = {"remember", "forget", STRUCTURED_OUTPUT}
VERBS = {"get", "list", "add", "set", "show", "find", "lookup", "complete", "update", "delete", "cancel", "create"}
ID = re.compile(r"\b[A-Za-z]*-?\d[\w-]*\b")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
LEAD_IN = re.compile(r"^\s*(?:to|for|with|on|about|that|:|,|-)\s+", re.IGNORECASE)


def named(text: str, specs: dict[str, Any]) -> str | None:
    """The offered tool whose exact name the text contains (the longest, if several)."""
    found = [name for name in specs if name not in OWN_LOGIC and re.search(rf"\b{re.escape(name)}\b", text)]
    return max(found, key=len) if found else None


def described(text: str, specs: dict[str, Any]) -> str | None:
    """The offered tool whose name's words all appear in the text (its verb too, if any tool's does)."""
    said = {_stem(w) for w in re.findall(r"[a-z]+", text.lower())}
    whole, nouns = [], []
    for name in specs:
        if name in OWN_LOGIC:
            continue
        parts = [_stem(p) for p in name.lower().split("_") if p]
        if parts and set(parts) <= said:
            whole.append(name)
        elif parts and parts[0] in VERBS and len(parts) > 1 and set(parts[1:]) <= said:
            nouns.append(name)
    candidates = whole or (nouns if len(nouns) == 1 else [])
    return candidates[0] if candidates else None


def arguments(spec: dict[str, Any], text: str, name: str) -> dict[str, Any]:
    parameters = spec.get("parameters") or {}
    properties = parameters.get("properties") or {}
    values: dict[str, Any] = {}
    for field in parameters.get("required") or []:
        kind = (properties.get(field) or {}).get("type")
        if kind in ("integer", "number"):
            number = NUMBER.search(text)
            values[field] = (int if kind == "integer" else float)(number.group()) if number else 1
        else:
            values[field] = _string_for(field, text, name)
    return values


def _string_for(field: str, text: str, name: str) -> str:
    ident = ID.search(text)
    if ident and (field.endswith("id") or field.endswith("_id") or len(ident.group()) < len(text) // 2):
        return ident.group()
    # "use add_task_step to book the flight", "add a task step: book the flight"
    after = text.split(name, 1)[1] if name in text else text.split(":", 1)[-1]
    return LEAD_IN.sub("", after).strip(" .!?") or text.strip()


def fitting(schema: dict[str, Any], text: str, root: dict[str, Any] | None = None) -> Any:
    """A value that satisfies ``schema`` (the keywords a structured output schema uses)."""
    root = root or schema
    if "$ref" in schema and str(schema["$ref"]).startswith("#/"):
        target: Any = root
        for part in str(schema["$ref"])[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return fitting(target, text, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return next((v for v in schema["enum"] if isinstance(v, str) and v.lower() in text.lower()), schema["enum"][0])
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return fitting(schema[key][0], text, root)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {field: fitting(properties[field], text, root) for field in properties}
    if kind == "array":
        return [fitting(schema.get("items") or {}, text, root) for _ in range(int(schema.get("minItems", 0)))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0))
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _fitting_string(schema, text)


def _fitting_string(schema: dict[str, Any], text: str) -> str:
    value = text.strip() or "ok"
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if high is not None:
        value = value[: int(high)]
    return value + "." * max(0, low - len(value))


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word
