"""Whole-session expiry: a session idle longer than the TTL goes entirely, never in parts.

An S3 lifecycle rule ages each object on its own and would cut the oldest messages out of a live
session; the sweep judges a session by its newest object (its lease included) instead. It lists
the whole store in key order, once, and re-checks each candidate under the session's lease, so a
turn that starts meanwhile either blocks the deletion or follows it.

A large store is swept over several runs: the listing stops at half the time given and the next
run resumes after the last key listed (the cursor object ``.expiry-sweep-cursor``); deleting stops
when the time is up, the next run listing the same range again. Every run deletes at least one
idle session it finds, so each run makes progress.
"""

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..errors import SessionBusy
from .failures import store_errors
from .keys import SWEEP_CURSOR, SessionKeys, parse_session_key

if TYPE_CHECKING:
    from .sessions import SessionStore

logger = logging.getLogger(__name__)


def expire_idle(store: "SessionStore", now: datetime, seconds_left: float | None = None) -> list[str]:
    """Delete whole idle sessions; ``caller/session_id`` of each one deleted."""
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    cutoff = now - timedelta(days=store.settings.session_ttl_days)
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    with store_errors("listing sessions"):
        stored_cursor = store.objects.get(SWEEP_CURSOR)
        cursor = stored_cursor.body.decode() or None if stored_cursor else None
        newest, last_key = newest_activity(store, cursor, deadline)
    deleted, finished = [], True
    for keys in sorted(newest, key=lambda k: (k.segment, k.session_id)):
        if deleted and deadline is not None and time.monotonic() > deadline:
            finished = False
            break
        if newest[keys] < cutoff and expire(store, keys, cutoff):
            deleted.append(keys.label)
    with store_errors("saving the sweep cursor"):
        resume = last_key if finished else cursor
        if resume is None:
            store.objects.delete([SWEEP_CURSOR])
        else:
            store.objects.put(SWEEP_CURSOR, resume.encode())
    return deleted


def newest_activity(store: "SessionStore", cursor: str | None,
                    deadline: float | None) -> tuple[dict[SessionKeys, datetime], str | None]:
    """Each session's newest object after ``cursor``, and the last key listed (None: the end)."""
    newest: dict[SessionKeys, datetime] = {}
    halfway = None if deadline is None else (time.monotonic() + deadline) / 2
    for listed in store.objects.list("", start_after=cursor):
        parsed = parse_session_key(listed.key)
        if parsed is not None:
            keys = parsed[0]
            newest[keys] = max(listed.last_modified, newest.get(keys, listed.last_modified))
        if halfway is not None and time.monotonic() > halfway:
            return newest, listed.key
    return newest, None


def expire(store: "SessionStore", keys: SessionKeys, cutoff: datetime) -> bool:
    """Delete the session if it is still idle, under its lease; False if busy or used since."""
    try:
        with store.leased(keys):
            with store_errors("expiring a session"):
                objects = list(store.objects.list(keys.folder))
                if not objects or max(o.last_modified for o in objects) >= cutoff:
                    return False  # only a stale lease (now released), or used since the listing
                store.objects.delete([o.key for o in objects])
    except SessionBusy:
        return False
    logger.info("expired idle session %s", keys.label)
    return True
