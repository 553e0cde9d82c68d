"""The shapes of what comes in and goes out, declared once (pydantic).

The HTTP routes validate with them (Powertools' data validation) and the OpenAPI document is
generated from them; direct invocations, SQS and EventBridge payloads, WebSocket messages and
queued turns are validated by the same field types, so every source shares the same rules.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
FACT_ID_PATTERN = r"^f_[0-9a-f]{8}$"
TURN_ID_PATTERN = r"^t_[0-9a-f]{32}$"

SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]
IdempotencyKey = Annotated[str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN)]
# A caller named by a trusted invoker (a direct invocation, the turn queue); lone surrogates are
# refused by pydantic's str validation.
Caller = Annotated[str, StringConstraints(min_length=1, max_length=512)]
# Non-empty; the length limit (MAX_MESSAGE_CHARS) is the agent's, applied to every source alike.
MessageText = Annotated[str, Field(min_length=1, description="What the user says.")]

# What a client is told when a field is wrong, instead of pydantic's generic sentence.
FIELD_HINTS = {
    "session_id": "session_id must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-', starting with a letter or digit.",
    "idempotency-key": "The idempotency key must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.' or ':'.",
    "idempotency_key": "The idempotency key must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.' or ':'.",
    "message": '"message" must be a non-empty string of valid Unicode text.',
    "caller": '"caller" must be a non-empty string of at most 512 characters.',
    "limit": '"limit" must be a whole number from 1 to 1000.',
    "fact_id": "fact_id must look like f_0123abcd.",
    "turn_id": "turn_id must look like t_ followed by 32 hex digits.",
}


def hint_for(error: ValidationError) -> str:
    """One sentence on the first thing wrong with a body: its field's hint, or pydantic's message."""
    first = error.errors()[0]
    field = str(first["loc"][-1]) if first["loc"] else ""
    message = str(first.get("ctx", {}).get("error", "")) or first["msg"]
    return FIELD_HINTS.get(field) or (f"{field}: {message}" if field else message)


# ---- requests --------------------------------------------------------------------------------
class MessageIn(BaseModel):
    """POST /sessions/{session_id}/messages."""

    message: MessageText

    @field_validator("message")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class TurnPayload(MessageIn):
    """A turn from a queue or a bus (SQS, EventBridge): they cannot pick a caller, since anyone
    allowed to send to them could then act as any user."""

    session_id: SessionId
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="before")
    @classmethod
    def names_no_caller(cls, data: Any) -> Any:
        if isinstance(data, dict) and "caller" in data:
            raise ValueError('"caller" may only be set by a direct invocation.')
        return data


class DirectTurn(MessageIn):
    """A direct invocation (Lambda Invoke, Step Functions): the invoker holds
    lambda:InvokeFunction, so it may act for a caller."""

    session_id: SessionId
    caller: Caller = "direct"
    idempotency_key: IdempotencyKey | None = None


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


class SendMessage(MessageIn):
    """A WebSocket message: {"action": "sendMessage", "session_id", "message", "idempotency_key"?}."""

    action: Literal["sendMessage"]
    session_id: SessionId
    idempotency_key: IdempotencyKey | None = None


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


class FactOut(BaseModel):
    id: str
    text: str = Field(description="Exactly as the agent remembered it")
    created_at: str
    session_id: str = Field(description="The session it was learnt in")


class FactsOut(BaseModel):
    facts: list[FactOut]
