"""The turn ledger: one record per turn, in the session's folder, for every path a turn takes.

    <caller>/session_<id>/records/turn-<turn_id>.json
    {"turn_id", "status", "message": sha256 of the message, "attempt", "created_at", "updated_at",
     "expires_at" (epoch seconds or null), "reply" (done) | "error" (failed)}

    queued ──▶ running ──▶ done      the reply, replayed to a retry with the same key until expires_at
       │          │    └─▶ failed    the error; forgotten: the key's next request runs the turn again
       └──────────┴──────▶ (gone)    deleted with its session: a queued turn is cancelled
       │          └──▶ cancelling ──▶ cancelled   DELETE .../turns/{id}: the running turn stops, stores nothing
       └─────────────────────────────▶ cancelled   ...and a queued one never runs

A cancelled turn is final like a failed one (its key's next request runs the turn again); a
"cancelling" one is still running: its worker reads the record every TurnStop.poll_seconds.

A turn with an idempotency key has the id turn_id_for(key), so every retry, whatever its path
(HTTP, WebSocket, direct, SQS, EventBridge), finds the same record; a turn without one that can be
followed (queued) gets a random id. A synchronous turn without a key writes no record: nothing
could ever ask for it. Every change is a compare-and-swap on the record's ETag, so a record
deleted with its session stays deleted, and two requests with one key never both claim it.

Why not Powertools' idempotency: it keeps a key's record only while a function runs or after it
succeeded, deletes it on failure, and has no queued state or status to read back, so queued turns
needed records of their own beside it. This ledger is those records, for every turn.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent import Deadline, SessionBusy
from agent.store import SessionRecords

from .error_table import ApiError

Doc = dict[str, Any]
IN_PROGRESS_RETRY_AFTER = 5
_ATTEMPTS = 4  # a claim can lose a race to a DELETE or to a request with the same key, a few times
CANCELLED = ApiError(409, "turn_cancelled", "The turn was cancelled; nothing of it was stored.")
STOPPING = ("cancelling", "cancelled")  # a turn asked to stop
KEY_REUSED = ApiError(422, "idempotency_key_reused", "This idempotency key was already used with a different message.")


@dataclass(frozen=True)
class Entry:
    """A turn's record as read or written: its document, and the ETag that proves it unchanged."""

    document: Doc
    etag: str

    @property
    def status(self) -> str:
        return str(self.document.get("status"))

    @property
    def turn_id(self) -> str:
        return str(self.document["turn_id"])

    def over(self, now: float | None = None) -> bool:
        """Past its expiry: a done turn no longer replayed, a running one whose invocation died."""
        expires_at = self.document.get("expires_at")
        return expires_at is not None and float(expires_at) <= (time.time() if now is None else now)


class TurnLedger:
    """The turn records of one session (agent.store.SessionRecords underneath)."""

    def __init__(self, records: SessionRecords) -> None:
        self.records = records

    def get(self, turn_id: str) -> Entry | None:
        found = self.records.get(record_name(turn_id))
        return None if found is None else Entry(*found)

    def claim(self, turn_id: str, message: str, status: str, expires_at: float | None) -> tuple[Entry, bool]:
        """(entry, True): the turn is ours to run, recorded with ``status``. (entry, False): a
        request with this key is queued, running or done: the caller answers from it. A failed
        turn, or one past its expiry, is claimed again; the same key with another message is 422."""
        name, digest = record_name(turn_id), message_digest(message)
        for attempt in range(_ATTEMPTS):
            document = {"turn_id": turn_id, "status": status, "message": digest, "attempt": secrets.token_hex(4),
                        "created_at": _now(), "expires_at": expires_at}
            # A new key is the usual case: create first, read only when there is a record already.
            found = None if attempt == 0 else self.get(turn_id)
            if found is not None and not (found.status in ("failed", "cancelled") or found.over()):
                if found.document.get("message") != digest:
                    raise KEY_REUSED
                return found, False
            etag = self.records.create(name, document) if found is None else \
                self.records.replace(name, document, found.etag)
            if etag is not None:
                return Entry(document, etag), True
        raise SessionBusy("Another request with this idempotency key is starting; retry.", retry_after=1)

    def advance(self, entry: Entry, status: str, expires_at: float | None = None, **fields: Any) -> Entry | None:
        """The turn's next state, over the record as ``entry`` has it and only over it: None when it
        changed or was deleted with its session since (then it stays as it is)."""
        document = {k: v for k, v in entry.document.items() if k not in ("reply", "error")}
        document.update(status=status, updated_at=_now(), expires_at=expires_at, **fields)
        etag = self.records.replace(record_name(entry.turn_id), document, entry.etag)
        return None if etag is None else Entry(document, etag)

    def cancel(self, turn_id: str) -> Entry | None:
        """Ask the turn to stop: a queued one is cancelled at once (it never runs), a running one
        is "cancelling" (its worker stops it and records "cancelled"); an ended one stays as it is.
        None when there is no such turn."""
        for _ in range(_ATTEMPTS):
            entry = self.get(turn_id)
            if entry is None or entry.status not in ("queued", "running"):
                return entry
            status = "cancelled" if entry.status == "queued" else "cancelling"
            fields = {"error": CANCELLED.body()["error"]} if status == "cancelled" else {}
            changed = self.advance(entry, status, entry.document.get("expires_at"), **fields)
            if changed is not None:
                return changed
        raise SessionBusy("The turn's record keeps changing; retry.", retry_after=1)

    def forget(self, entry: Entry) -> None:
        """A turn that was never queued (the queue refused it): as if it had not been asked."""
        if self.get(entry.turn_id) == entry:
            self.records.delete(record_name(entry.turn_id))


def in_progress() -> SessionBusy:
    return SessionBusy("A request with this idempotency key is still running; retry later.",
                       retry_after=IN_PROGRESS_RETRY_AFTER)


def running_until(deadline: Deadline) -> float:
    """A running record's expiry: when its invocation has certainly ended."""
    remaining = deadline.remaining()
    return time.time() + (900.0 if remaining == float("inf") else remaining) + 1.0


def record_name(turn_id: str) -> str:
    return f"turn-{turn_id}"


def message_digest(message: str) -> str:
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()


def new_turn_id(caller: str, session_id: str, idempotency_key: str | None) -> str:
    """A turn's id; derived from the idempotency key when there is one (every retry finds it)."""
    if idempotency_key is None:
        return "t_" + secrets.token_hex(16)
    key = f"{caller}\n{session_id}\n{idempotency_key}"
    return "t_" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _now() -> str:
    return datetime.now(UTC).isoformat()
