"""The one request every event source is turned into, validated here and nowhere else."""

import re
from dataclasses import dataclass
from typing import Any

from agent import InvalidRequest

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True)
class TurnRequest:
    caller: str
    session_id: str
    message: str
    idempotency_key: str | None = None


def session_id_of(value: Any) -> str:
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise InvalidRequest(
            "session_id must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-', starting with a letter or digit."
        )
    return value


def message_of(value: Any, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest('"message" must be a non-empty string.')
    if len(value) > max_chars:
        raise InvalidRequest(f'"message" is {len(value)} characters long; the limit is {max_chars}.')
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
        raise InvalidRequest('"message" must be valid Unicode text.') from None
    return value


def idempotency_key_of(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest(
            "The idempotency key must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.' or ':'."
        )
    return value


def turn_request(caller: str, session_id: Any, body: Any, max_chars: int,
                 idempotency_key: Any = None) -> TurnRequest:
    """Validate one turn. ``body`` is the decoded JSON object carrying ``message``."""
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object like {"message": "..."}.')
    return TurnRequest(
        caller=caller,
        session_id=session_id_of(session_id),
        message=message_of(body.get("message"), max_chars),
        idempotency_key=idempotency_key_of(idempotency_key),
    )
