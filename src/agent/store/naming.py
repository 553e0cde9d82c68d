"""Where a session lives: one safe path segment per caller, and the session id checked again.

Both the S3 keys and the file paths are built from these two pieces, so this is the one place
that decides that a caller (an IAM ARN, a JWT ``sub``, ``local``) can never escape its namespace.
"""

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import InvalidRequest

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# Longer segments are hashed: S3 keys stop at 1024 bytes and file names at 255.
_MAX_SEGMENT = 200
# Percent-encoding only ever emits "%" + two upper-case hex digits, so "%sha256-" cannot collide.
_HASHED = "%sha256-"

SESSION_DIR_PREFIX = "session_"  # Strands' own prefix (S3SessionManager / FileSessionManager)
LEASE_SUFFIX = ".lease"


def caller_segment(caller: str) -> str:
    """Percent-encode everything but [A-Za-z0-9_-] (dots included, so "." and ".." stay inert)."""
    if not isinstance(caller, str) or not caller:
        raise ValueError("caller must be a non-empty string")
    encoded = "".join(
        char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode("utf-8")) for char in caller
    )
    if len(encoded) > _MAX_SEGMENT:
        return _HASHED + hashlib.sha256(caller.encode("utf-8")).hexdigest()
    return encoded


def caller_from_segment(segment: str) -> str:
    """The caller a segment was made from (a hashed segment is returned as it is)."""
    return segment if segment.startswith(_HASHED) else unquote(segment, errors="strict")


def check_session_id(session_id: str) -> str:
    """The handler validates session ids already; a second check keeps the store safe on its own."""
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise InvalidRequest("session_id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
    return session_id


@dataclass(frozen=True)
class SessionName:
    """A session as the store addresses it: the caller's segment and the session id."""

    segment: str
    session_id: str

    @classmethod
    def of(cls, caller: str, session_id: str) -> "SessionName":
        return cls(caller_segment(caller), check_session_id(session_id))

    @property
    def caller(self) -> str:
        return caller_from_segment(self.segment)

    @property
    def label(self) -> str:
        """``caller/session_id``, as expire_idle reports it."""
        return f"{self.caller}/{self.session_id}"

    @property
    def lease_name(self) -> str:
        """The lease sits beside the session's folder, so deleting the folder never drops a held lease."""
        return f"{SESSION_DIR_PREFIX}{self.session_id}{LEASE_SUFFIX}"


def parse_entry(name: str) -> tuple[str, bool] | None:
    """Split a folder entry of a caller into (session_id, is_lease); None for anything else."""
    if not name.startswith(SESSION_DIR_PREFIX):
        return None
    rest = name[len(SESSION_DIR_PREFIX) :]
    is_lease = rest.endswith(LEASE_SUFFIX)
    if is_lease:
        rest = rest[: -len(LEASE_SUFFIX)]
    return (rest, is_lease) if SESSION_ID.fullmatch(rest) else None
