"""Expiry: idle sessions go whole, never in parts; so do what outlives them.

An S3 lifecycle rule ages each object on its own and would cut the oldest messages out of a live
session; the sweep judges a session by its newest object (its lease included) instead. It lists
the whole store in key order, once, and re-checks each candidate under the session's lease, so a
turn that starts meanwhile either blocks the deletion or follows it. It also deletes:

- a caller document (memory.json) last changed before the TTL, once its caller has no session
  left (checked again, then deleted with delete_if_match, so a change made meanwhile survives);
- a connection binding older than a day (API Gateway connections last two hours at most).

A large store is swept over several runs: the listing stops at half the time given and the next
run resumes after the last key listed (the cursor object ``.expiry-sweep-cursor``); deleting stops
when the time is up, the next run listing the same range again. Every run deletes at least one
thing it finds idle, so each run makes progress.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..deadline import Deadline
from ..errors import SessionBusy
from .failures import store_errors
from .keys import CONNECTIONS, SESSION_PREFIX, SWEEP_CURSOR, SessionKeys, parse_caller_document, parse_session_key
from .objects import ObjectStore

if TYPE_CHECKING:
    from .sessions import SessionStore

logger = logging.getLogger(__name__)
CONNECTION_TTL = timedelta(days=1)


@dataclass
class Listing:
    """What one listing found after the cursor, and where it stopped (None: at the end)."""

    sessions: dict[SessionKeys, datetime] = field(default_factory=dict)  # newest object of each
    documents: list[str] = field(default_factory=list)  # caller documents unchanged since the cutoff
    connections: list[str] = field(default_factory=list)  # bindings older than CONNECTION_TTL
    last_key: str | None = None


def expire_idle(store: "SessionStore", now: datetime, deadline: Deadline) -> list[str]:
    """Delete whole idle sessions; ``caller/session_id`` of each one deleted."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    cutoff = now - timedelta(days=store.settings.session_ttl_days)
    objects = store.objects.within(deadline)
    with store_errors("listing sessions"):
        stored_cursor = objects.get(SWEEP_CURSOR)
        cursor = stored_cursor.body.decode() or None if stored_cursor else None
        found = survey(objects, cursor, deadline, cutoff, now - CONNECTION_TTL)
    deleted: list[str] = []
    others = 0  # documents and connections deleted

    def out_of_time() -> bool:  # but never before the run has deleted something
        return bool(deleted or others) and deadline.expired()

    finished = True
    for keys in sorted(found.sessions, key=lambda k: (k.segment, k.session_id)):
        if out_of_time():
            finished = False
            break
        if found.sessions[keys] < cutoff and expire(store, objects, keys, cutoff):
            deleted.append(keys.label)
    with store_errors("expiring caller documents and connections"):
        for key in found.documents:
            if out_of_time():
                finished = False
                break
            others += expire_document(objects, key, cutoff)
        if found.connections and out_of_time():
            finished = False
        elif found.connections:
            objects.delete(found.connections)
            logger.info("deleted %d old connection bindings", len(found.connections))
            others += len(found.connections)
        resume = found.last_key if finished else cursor
        if resume is None:
            objects.delete([SWEEP_CURSOR])
        else:
            objects.put(SWEEP_CURSOR, resume.encode())
    return deleted


def survey(objects: ObjectStore, cursor: str | None, deadline: Deadline, cutoff: datetime,
           connection_cutoff: datetime) -> Listing:
    found, started = Listing(), deadline.remaining()
    for listed in objects.list("", start_after=cursor):
        session, document = parse_session_key(listed.key), parse_caller_document(listed.key)
        if session is not None:
            keys = session[0]
            found.sessions[keys] = max(listed.last_modified, found.sessions.get(keys, listed.last_modified))
        elif document is not None and listed.last_modified < cutoff:
            found.documents.append(listed.key)
        elif listed.key.startswith(CONNECTIONS) and listed.last_modified < connection_cutoff:
            found.connections.append(listed.key)
        if deadline.at is not None and deadline.remaining() <= started / 2:
            found.last_key = listed.key
            break
    return found


def expire(store: "SessionStore", objects: ObjectStore, keys: SessionKeys, cutoff: datetime) -> bool:
    """Delete the session if it is still idle, under its lease; False if busy or used since."""
    try:
        with store.leased(keys, objects), store_errors("expiring a session"):
            stored = list(objects.list(keys.folder))
            if not stored or max(o.last_modified for o in stored) >= cutoff:
                return False  # only a stale lease (now released), or used since the listing
            objects.delete([o.key for o in stored])
    except SessionBusy:
        return False
    logger.info("expired idle session %s", keys.label)
    return True


def expire_document(objects: ObjectStore, key: str, cutoff: datetime) -> bool:
    """Delete a caller document unchanged since the cutoff whose caller has no session left."""
    segment = key.split("/", 1)[0]
    if any(parse_session_key(o.key) for o in objects.list(f"{segment}/{SESSION_PREFIX}")):
        return False
    current = objects.get(key)
    if current is None or current.last_modified >= cutoff or not objects.delete_if_match(key, current.etag):
        return False
    logger.info("expired the caller document %s of a caller without sessions", key.split("/", 1)[1])
    return True
