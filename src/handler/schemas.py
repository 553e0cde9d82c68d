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
    StringConstraints,
    ValidationError,
    ValidationInfo,
)

from agent import check_message
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
# (minLength is documented, not enforced here, so that an empty one gets the same sentence.)
MessageText = Annotated[str, Field(description="What the user says (at most MAX_MESSAGE_CHARS characters).",
                                   json_schema_extra={"minLength": 1})]

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


def _usable_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    # Raises OutputSchemaError (an InvalidRequest), let through as it is: it names the problem.
    return None if schema is None else check_output_schema(schema)


# A JSON Schema of type object; the reply's "output" satisfies it (agent/structured_output.py).
OutputSchema = Annotated[dict[str, Any] | None, Field(
    description=f"A JSON Schema (type object, at most {MAX_SCHEMA_BYTES} bytes): the reply then carries "
                '"output", an object the model produced that satisfies it.')]


class TurnIn(BaseModel):
    """A turn's fields, from every source: the one model they are all validated with
    (turn_requests.turn_request)."""

    message: Annotated[str, AfterValidator(_agent_takes)]
    caller: Caller
    session_id: SessionId
    idempotency_key: IdempotencyKey | None = None
    output_schema: Annotated[OutputSchema, AfterValidator(_usable_schema)] = None


# ---- requests --------------------------------------------------------------------------------
class MessageIn(BaseModel):
    """POST /sessions/{session_id}/messages."""

    # Checked, as every source's message, by TurnIn (turn_requests.py).

    message: MessageText
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


class QueuedTurn(MessageIn):
    """A turn on the turn queue, for a worker invocation. Only this function can send to that
    queue, so the caller in it is trusted."""

    caller: Caller
    session_id: SessionId
    turn_id: Annotated[str, StringConstraints(pattern=TURN_ID_PATTERN)]
    idempotency_key: IdempotencyKey | None = None
    connection: ConnectionRef | None = None


# ---- responses -------------------------------------------------------------------------------
class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class ReplyOut(BaseModel):
    session_id: str
    reply: str
    stop_reason: str = Field(description="end_turn, max_tokens (cut at max_tokens, still stored) or limit_turns")
    usage: Usage
    message_count: int = Field(description="Messages stored in the session after this turn")
    output: dict[str, Any] | None = Field(None, description="When output_schema was sent: the object, valid against it")


class MessageOut(BaseModel):
    index: int
    role: str
    text: str
    created_at: str


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


class TurnStatusOut(BaseModel):
    session_id: str
    turn_id: str
    status: Literal["queued", "running", "done", "failed"]
    reply: ReplyOut | None = Field(None, description="When done")
    error: ErrorDetail | None = Field(None, description="When failed")


class StateOut(BaseModel):
    session_id: str
    state: dict[str, Any] = Field(description="The agent's state as the last turn stored it (what tools keep)")


class FactOut(BaseModel):
    id: str
    text: str = Field(description="Exactly as the agent remembered it")
    created_at: str
    session_id: str = Field(description="The session it was learnt in")


class FactsOut(BaseModel):
    facts: list[FactOut]
