"""Keys: where everything lives, relative to the store's root (an S3 prefix, or a directory).

    <caller>/session_<id>.lease                                   the lease, beside the folder
    <caller>/session_<id>/session.json                            Strands' Session
    <caller>/session_<id>/agents/agent_default/agent.json         SessionAgent + "_snapshot": the commit point
    <caller>/session_<id>/agents/agent_default/messages/message_<n>.json
    <caller>/session_<id>/records/<name>.json                     records that live and die with the session
    <caller>/<name>.json                                          caller documents (memory.json)
    .connections/<connection id>.json                             a WebSocket connection's caller
    .expiry-sweep-cursor                                          where an unfinished sweep resumes

Under a caller's segment this is Strands' own layout (S3SessionManager / FileSessionManager with
prefix / storage_dir = <root>/<caller>), so their stock managers read what we write and we read
what they wrote. This module is the one place that decides that a caller (an IAM ARN, a JWT
``sub``, ``local``) can never escape its namespace: every key is built here. Nothing else can be
taken for a session: only a session's folder and lease start with "session_<valid id>" and end
so; a segment never starts with "." (encoded), so ".connections" is no caller's.
"""

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import InvalidRequest

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
AGENT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# Longer segments are hashed: S3 keys stop at 1024 bytes and file names at 255.
_MAX_SEGMENT = 200
# Percent-encoding only ever emits "%" + two upper-case hex digits, so "%sha256-" cannot collide.
_HASHED = "%sha256-"

DOCUMENT_NAME = re.compile(r"[a-z][a-z_]{0,40}")
RECORD_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
CONNECTIONS = ".connections/"
SESSION_PREFIX = "session_"  # Strands' own prefixes (S3SessionManager / FileSessionManager)
LEASE_SUFFIX = ".lease"
MESSAGE_PREFIX = "message_"
# Where an unfinished expiry sweep resumes. A caller's segment never starts with "." (it is encoded).
SWEEP_CURSOR = ".expiry-sweep-cursor"


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


def caller_document(caller: str, name: str) -> str:
    """A small JSON document of the caller's, beside their sessions (e.g. memory.json)."""
    if not isinstance(name, str) or not DOCUMENT_NAME.fullmatch(name):
        raise InvalidRequest("a caller document's name must match ^[a-z][a-z_]{0,40}$")
    return f"{caller_segment(caller)}/{name}.json"


def parse_caller_document(key: str) -> tuple[str, str] | None:
    """(segment, name) for a caller document's key; None for anything else."""
    segment, slash, file = key.partition("/")
    name = file.removesuffix(".json")
    if slash and file.endswith(".json") and DOCUMENT_NAME.fullmatch(name) and not segment.startswith("."):
        return segment, name
    return None


def connection(connection_id: str) -> str:
    """API Gateway connection ids are base64-like ("=" and "/" included): encoded like a caller."""
    return f"{CONNECTIONS}{caller_segment(connection_id)}.json"


def check_session_id(session_id: str) -> str:
    """The handler validates session ids already; a second check keeps the store safe on its own."""
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise InvalidRequest("session_id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
    return session_id


@dataclass(frozen=True)
class SessionKeys:
    """The keys of one session: the caller's segment and the session id, both checked."""

    segment: str
    session_id: str

    @classmethod
    def of(cls, caller: str, session_id: str) -> "SessionKeys":
        return cls(caller_segment(caller), check_session_id(session_id))

    @property
    def label(self) -> str:
        """``caller/session_id``, as expire_idle reports it."""
        return f"{caller_from_segment(self.segment)}/{self.session_id}"

    @property
    def lease(self) -> str:
        """Beside the folder, so deleting the folder never drops a held lease."""
        return f"{self.segment}/{SESSION_PREFIX}{self.session_id}{LEASE_SUFFIX}"

    @property
    def queueing(self) -> str:
        """Held while a turn is announced and queued (see SessionStore.queueing); inside the folder,
        so it goes with the session."""
        return f"{self.folder}queueing.lease"

    @property
    def folder(self) -> str:
        return f"{self.segment}/{SESSION_PREFIX}{self.session_id}/"

    @property
    def session(self) -> str:
        return f"{self.folder}session.json"

    def agent_folder(self, agent_id: str) -> str:
        if not AGENT_ID.fullmatch(agent_id):
            raise InvalidRequest("agent_id must match ^[A-Za-z0-9_-]{1,128}$")
        return f"{self.folder}agents/agent_{agent_id}/"

    def agent(self, agent_id: str) -> str:
        return f"{self.agent_folder(agent_id)}agent.json"

    def messages(self, agent_id: str) -> str:
        return f"{self.agent_folder(agent_id)}messages/{MESSAGE_PREFIX}"

    def message(self, agent_id: str, message_id: int) -> str:
        return f"{self.messages(agent_id)}{int(message_id)}.json"

    def record(self, name: str) -> str:
        if not isinstance(name, str) or not RECORD_NAME.fullmatch(name):
            raise InvalidRequest("a record's name must match ^[A-Za-z0-9_.:-]{1,200}$")
        return f"{self.folder}records/{name}.json"

    def message_id(self, agent_id: str, key: str) -> int | None:
        """The id in a message key (as listed), or None for anything else."""
        number = key.removeprefix(self.messages(agent_id)).removesuffix(".json")
        return int(number) if key.startswith(self.messages(agent_id)) and number.isdigit() else None


def parse_session_key(key: str) -> tuple[SessionKeys, bool] | None:
    """(session, is_lease) for a key of a session's folder or its lease; None for anything else."""
    parts = key.split("/", 2)
    if len(parts) < 2 or not parts[1].startswith(SESSION_PREFIX):
        return None
    name = parts[1][len(SESSION_PREFIX) :]
    is_lease = len(parts) == 2
    if is_lease:
        if not name.endswith(LEASE_SUFFIX):
            return None
        name = name[: -len(LEASE_SUFFIX)]
    return (SessionKeys(parts[0], name), is_lease) if SESSION_ID.fullmatch(name) else None
