"""A session's history, one page at a time.

A page is bounded by count and by size, so that even a history of long messages is always
readable through Lambda (a response is at most 6 MB). The cursor is opaque to clients; it names
the session and the caller it was made for, so it cannot be replayed on another one.
"""

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import InvalidRequest

DEFAULT_PAGE_MESSAGES = 100
MAX_PAGE_MESSAGES = 1000
# Lambda's response limit is 6 MB (as returned: doubly encoded); the envelope needs a little of it.
MAX_PAGE_BYTES = 5_000_000


@dataclass(frozen=True)
class HistoryMessage:
    """A stored message as the client sees it. A tool round is two messages: the assistant's
    ``tool_calls`` (the text it said with them, if any), then role ``tool`` with ``tool_results``."""

    index: int
    role: str
    text: str
    created_at: str
    tool_calls: list[dict[str, Any]] | None = None  # {"id", "name", "input"}
    tool_results: list[dict[str, Any]] | None = None  # {"id", "status", "text"}

    def fields(self) -> dict[str, Any]:
        """As JSON shows it: the tool fields only on the messages of a tool round."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class HistoryPage:
    session_id: str
    messages: list[HistoryMessage]
    next_cursor: str | None


def message_of(stored: Any) -> HistoryMessage:
    """A stored Strands SessionMessage as the client sees it (redactions honoured)."""
    message = stored.to_message()
    calls = [{"id": use.get("toolUseId"), "name": use.get("name"), "input": use.get("input")}
             for use in _blocks(message, "toolUse")]
    results = [{"id": result.get("toolUseId"), "status": result.get("status"), "text": _result_text(result)}
               for result in _blocks(message, "toolResult")]
    # Strands stores a tool's result as a "user" message; the client sees it as the tool's.
    return HistoryMessage(index=stored.message_id, role="tool" if results else message["role"],
                          text=text_of(message), created_at=stored.created_at,
                          tool_calls=calls or None, tool_results=results or None)


def text_of(message: Any) -> str:
    return "".join(block["text"] for block in message["content"] if "text" in block)


def _blocks(message: Any, kind: str) -> list[dict[str, Any]]:
    return [block[kind] for block in message["content"] if isinstance(block.get(kind), dict)]


def _result_text(result: dict[str, Any]) -> str:
    """A tool result's content as text: its text blocks, and its JSON blocks as JSON."""
    parts = [part["text"] if "text" in part else json.dumps(part["json"], ensure_ascii=False)
             for part in result.get("content", []) if isinstance(part, dict) and ("text" in part or "json" in part)]
    return "\n".join(parts)


def within_bytes(messages: Iterable[HistoryMessage], max_bytes: int) -> list[HistoryMessage]:
    """The leading messages whose JSON fits ``max_bytes``; always at least one, so paging moves on."""
    kept: list[HistoryMessage] = []
    size = 0
    for message in messages:
        # As Lambda returns it: the page's JSON, as a string inside the response's JSON, both
        # ensure_ascii. An emoji costs 14 bytes, not 4; a '"' costs 4, not 1.
        size += len(json.dumps(json.dumps(message.fields()))) - 1
        if kept and size > max_bytes:
            break
        kept.append(message)
    return kept


def encode_cursor(caller: str, session_id: str, start: int) -> str:
    raw = json.dumps({"c": _caller_tag(caller), "s": session_id, "i": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, caller: str, session_id: str) -> int:
    """The index a cursor resumes at; InvalidRequest if it is malformed or another session's."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        start = data["i"]
        mine = data["c"] == _caller_tag(caller) and data["s"] == session_id
    except (ValueError, TypeError, KeyError):
        raise InvalidRequest("The cursor is not valid; use the next_cursor of a previous page.") from None
    if not mine or not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise InvalidRequest("The cursor belongs to another session or caller; use this session's next_cursor.")
    return start


def _caller_tag(caller: str) -> str:
    # A digest, not the caller itself: the cursor travels through clients and logs.
    return hashlib.sha256(caller.encode("utf-8", "surrogatepass")).hexdigest()[:16]
