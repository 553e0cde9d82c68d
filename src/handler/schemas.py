"""The shapes of what comes in and goes out, declared once (pydantic).

The HTTP routes validate with them (Powertools' data validation) and the OpenAPI document is
generated from them. Every turn, whichever its source (HTTP, sync or queued; a WebSocket
message; a direct invocation; SQS; EventBridge), becomes a `TurnRequest` through one model,
`TurnIn` (turn_requests.py): one set of rules for a message, one error for each way it can be
wrong, before anything is queued or written.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from agent import InvalidRequest, check_message
from agent.structured_output import MAX_SCHEMA_BYTES, check_output_schema

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
FACT_ID_PATTERN = r"^f_[0-9a-f]{8}$"
TURN_ID_PATTERN = r"^t_[0-9a-f]{32}$"

SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]
IdempotencyKey = Annotated[str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN)]
# A caller: an identity API Gateway verified, or one named by a trusted invoker (a direct
# invocation, the turn queue). An IAM ARN alone may take 600 characters (a 512-character path and a
# 64-character name); the store hashes a long one into its key.
MAX_CALLER_CHARS = 1024
Caller = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CALLER_CHARS)]
# A message as it arrives: a string. What makes it one the agent takes (not blank, at most
# MAX_MESSAGE_CHARS, valid Unicode text) is the agent's check_message, applied by TurnIn.
# (minLength and pattern are documented, not enforced here, so that an empty or blank one gets
# the same sentence. The pattern says "not blank": a character that is not whitespace.)
MessageText = Annotated[str, Field(description="What the user says (at most MAX_MESSAGE_CHARS characters, not blank).",
                                   json_schema_extra={"minLength": 1, "pattern": r"\S"})]

# What a client is told when a field is wrong, instead of pydantic's generic sentence.
FIELD_HINTS = {
    "session_id": "session_id must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-', starting with a letter or digit.",
    "idempotency-key": "The idempotency key must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.' or ':'.",
    "idempotency_key": "The idempotency key must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.' or ':'.",
    "message": '"message" must be a non-empty string of valid Unicode text.',
    "caller": f'"caller" must be a non-empty string of at most {MAX_CALLER_CHARS} characters.',
    "limit": '"limit" must be a whole number from 1 to 1000.',
    "fact_id": "fact_id must look like f_0123abcd.",
    "turn_id": "turn_id must look like t_ followed by 32 hex digits.",
    "interrupt_responses": '"interrupt_responses" must be a list of 1 to 20 answers like '
                           '{"id": "...", "approve": true, "reason": "..."}.',
    "id": '"id" of an interrupt response must be the id of a pending call (1-512 characters).',
    "approve": '"approve" must be true or false.',
    "reason": '"reason" must be a string of at most 2000 characters.',
    "output_schema": "output_schema must be a JSON Schema object, e.g. {\"type\": \"object\", \"properties\": {...}}.",
}


# The message's own problems, each named: the same sentence from every source.
MESSAGE_HINTS = {
    "missing": '"message" is missing: send the text for the agent as "message".',
    "string_type": '"message" must be a string.',
}


def hint(field: str, kind: str) -> str | None:
    """The sentence on what is wrong with a field (``kind``: pydantic's error type), if it has one."""
    if field == "message" and kind in MESSAGE_HINTS:
        return MESSAGE_HINTS[kind]
    return FIELD_HINTS.get(field)


def hint_for(error: ValidationError) -> str:
    """One sentence on the first thing wrong with a body: its field's hint, or pydantic's message."""
    first = error.errors()[0]
    field = str(first["loc"][-1]) if first["loc"] else ""
    detail = str(first.get("ctx", {}).get("error", "")) or first["msg"]
    return hint(field, first["type"]) or (f"{field}: {detail}" if field else detail)


# ---- a turn, from every source ----------------------------------------------------------------
LIMIT = "max_message_chars"  # TurnIn's validation context: the setting MAX_MESSAGE_CHARS


def _agent_takes(message: str, info: ValidationInfo) -> str:
    # Raises InvalidRequest, which pydantic lets through as it is: the agent's own sentence.
    return check_message(message, (info.context or {})[LIMIT])  # a KeyError: a caller forgot the limit


class InterruptResponseIn(BaseModel):
    """A person's answer to one tool call waiting for approval (its id from the paused reply)."""

    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    approve: StrictBool
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, description="Why it was denied: the tool's result the model reads")


InterruptResponses = Annotated[list[InterruptResponseIn], Field(min_length=1, max_length=20)]


def _message_or_answers(data: Any) -> Any:
    """A turn is a message or the answers to its session's pending tool calls, never both; a
    request with neither gets the message's own sentences (missing, or null)."""
    if not isinstance(data, dict):
        return data
    if data.get("interrupt_responses") is not None:
        if data.get("message") is not None:
            raise InvalidRequest('Send either "message" or "interrupt_responses", not both.')
    elif "message" not in data:
        raise InvalidRequest(MESSAGE_HINTS["missing"])
    elif data["message"] is None:
        raise InvalidRequest(MESSAGE_HINTS["string_type"])
    return data


def _one_of_not_null(schema: dict[str, Any], *fields: str) -> None:
    """The JSON Schema of a body that takes exactly one of ``fields``, none of them null (pydantic
    writes an optional field as "anyOf [..., null]")."""
    for name in fields:
        declared = schema["properties"][name]
        kinds = [kind for kind in declared.pop("anyOf", []) if kind.get("type") != "null"]
        if len(kinds) == 1:
            declared.update(kinds[0])
        declared.pop("default", None)
    schema["oneOf"] = [{"required": [name]} for name in fields]


def _usable_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    # Raises OutputSchemaError (an InvalidRequest), let through as it is: it names the problem.
    return None if schema is None else check_output_schema(schema)


# A JSON Schema of type object; the reply's "output" satisfies it (agent/structured_output.py).
OutputSchema = Annotated[dict[str, Any] | None, Field(
    description=f"A JSON Schema (type object, at most {MAX_SCHEMA_BYTES} bytes): the reply then carries "
                '"output", an object the model produced that satisfies it.',
    json_schema_extra={"required": ["type"], "properties": {"type": {"const": "object"}}})]


class TurnIn(BaseModel):
    """A turn's fields, from every source: the one model they are all validated with
    (turn_requests.turn_request)."""

    message: Annotated[str, AfterValidator(_agent_takes)] | None = None
    caller: Caller
    session_id: SessionId
    idempotency_key: IdempotencyKey | None = None
    interrupt_responses: InterruptResponses | None = None
    output_schema: Annotated[OutputSchema, AfterValidator(_usable_schema)] = None

    _one_of = model_validator(mode="before")(_message_or_answers)


# ---- requests --------------------------------------------------------------------------------
class MessageIn(BaseModel):
    """POST /sessions/{session_id}/messages: a message, or the answers to pending tool calls."""

    # Checked, as every source's message, by TurnIn (turn_requests.py); the document says that
    # exactly one of the two is sent, and not as null.
    model_config = ConfigDict(
        json_schema_extra=lambda schema: _one_of_not_null(schema, "message", "interrupt_responses"))

    message: MessageText | None = None
    interrupt_responses: InterruptResponses | None = Field(
        None, description="Instead of a message: answers to the session's tool calls waiting for approval")
    output_schema: OutputSchema = None


class DirectHistory(BaseModel):
    action: Literal["get_history"]
    session_id: SessionId
    caller: Caller = "direct"
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


class DirectDelete(BaseModel):
    action: Literal["delete_session"]
    session_id: SessionId
    caller: Caller = "direct"


class DirectMemory(BaseModel):
    action: Literal["get_memory", "forget_fact", "forget_memory"]
    caller: Caller = "direct"
    fact_id: Annotated[str, StringConstraints(pattern=FACT_ID_PATTERN)] | None = None


class ConnectionRef(BaseModel):
    """Where a queued turn's frames go: a WebSocket connection and its management endpoint."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class QueuedRecord(BaseModel):
    """A queued turn's ledger record as its sender wrote it (turn_ledger.py)."""

    document: dict[str, Any]
    etag: str


class QueuedTurn(MessageIn):
    """A turn on the turn queue, for a worker invocation. Only this function can send to that
    queue, so the caller in it is trusted."""

    caller: Caller
    session_id: SessionId
    turn_id: Annotated[str, StringConstraints(pattern=TURN_ID_PATTERN)]
    idempotency_key: IdempotencyKey | None = None
    connection: ConnectionRef | None = None
    # The worker marks the record "running" over this ETag in the round trip that opens the
    # session, instead of reading it first; a changed record sends it the long way.
    queued_as: QueuedRecord | None = None


# ---- responses -------------------------------------------------------------------------------
class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class PendingCallOut(BaseModel):
    """A tool call waiting for a person's approval."""

    id: str = Field(description="Give it back in interrupt_responses")
    tool: str
    input: Any = Field(description="The arguments the model gave the tool")
    reason: str


class ReplyOut(BaseModel):
    session_id: str
    reply: str
    stop_reason: str = Field(description="end_turn, max_tokens (cut at max_tokens, still stored), limit_turns, "
                             "or interrupt (tool calls wait for approval: see interrupts)")
    usage: Usage
    message_count: int = Field(description="Messages stored in the session after this turn")
    interrupts: list[PendingCallOut] | None = Field(
        None, description='stop_reason "interrupt": the tool calls waiting for approval (absent otherwise)')

    output: dict[str, Any] | None = Field(None, description="When output_schema was sent: the object, valid against it")

    @model_serializer(mode="wrap")
    def _without_absent_fields(self, serialize: Any) -> Any:
        body = serialize(self)
        for optional in ("interrupts", "output"):
            if isinstance(body, dict) and body.get(optional) is None:
                body.pop(optional, None)
        return body


class ToolCallOut(BaseModel):
    id: str | None
    name: str | None
    input: Any = Field(description="The arguments the model called the tool with (JSON)")


class ToolResultOut(BaseModel):
    id: str | None = Field(description="The id of the tool call it answers")
    status: str | None = Field(description="success or error")
    text: str = Field(description="What the tool returned, as text")


def _absent(value: Any) -> bool:
    return value is None


class MessageOut(BaseModel):
    index: int
    role: Literal["user", "assistant", "tool"] = Field(
        description="tool: a tool's results (tool_results), answering the assistant's tool_calls before it")
    text: str = Field(description="The message's text; empty for a tool call without words, or a tool result")
    created_at: str
    tool_calls: list[ToolCallOut] | None = Field(None, exclude_if=_absent,
                                                 description="The tools the assistant called (only when it did)")
    tool_results: list[ToolResultOut] | None = Field(None, exclude_if=_absent,
                                                     description="What the tools returned (role tool only)")


class HistoryOut(BaseModel):
    session_id: str
    messages: list[MessageOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class AcceptedTurnOut(BaseModel):
    """202 to POST /messages with `Prefer: respond-async`."""

    session_id: str
    turn_id: str
    status: Literal["queued"]
    location: str = Field(description="GET it for the turn's status and reply")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str
    retry_after: int | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class GatewayRefusalOut(BaseModel):
    """What API Gateway itself answers when it refuses a request before the function."""

    message: str


class RefusedOut(RootModel[ErrorOut | GatewayRefusalOut]):
    """A refusal by API Gateway (``{"message"}``) or by the function (``{"error"}``)."""


class TurnStatusOut(BaseModel):
    session_id: str
    turn_id: str
    status: Literal["queued", "running", "done", "failed", "cancelling", "cancelled"]
    reply: ReplyOut | None = Field(None, description="When done")
    error: ErrorDetail | None = Field(None, description="When failed or cancelled")


class StateOut(BaseModel):
    session_id: str
    state: dict[str, Any] = Field(description="The agent's state as the last turn stored it (what tools keep)")


class FactOut(BaseModel):
    id: str
    text: str = Field(description="Exactly as the agent remembered it")
    created_at: str
    session_id: str = Field(description="The session it was learnt in")


class FactsOut(BaseModel):
    enabled: bool = Field(description="Whether the agent remembers facts (MEMORY=on); with it off it learns none, "
                          "and facts kept before stay listed until forgotten")
    facts: list[FactOut]


class UsageOut(BaseModel):
    """GET /usage: the calling caller's tokens today (UTC), counted as each turn is stored."""

    day: str = Field(description="The UTC day counted, YYYY-MM-DD")
    input_tokens: int
    output_tokens: int
    turns: int = Field(description="Turns stored today")
    daily_token_budget: int | None = Field(description="CALLER_DAILY_TOKENS; null: unlimited")


class DirectUsage(BaseModel):
    action: Literal["get_usage"]
    caller: Caller = "direct"


class DirectCancel(BaseModel):
    action: Literal["cancel_turn"]
    session_id: SessionId
    turn_id: Annotated[str, StringConstraints(pattern=TURN_ID_PATTERN)]
    caller: Caller = "direct"
