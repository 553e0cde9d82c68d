"""Expiry: idle sessions go whole, never in parts; so do what outlives them. The cost follows
the sessions that became idle, not the bucket.

An S3 lifecycle rule ages each object on its own and would cut the oldest messages out of a live
session; the sweep judges whole sessions instead. A turn writes a marker for its day, once a day
per session (``.activity/<day>/<caller>/<session_id>``, session_list.py). The sweep reads the
markers of the days up to the cutoff's (normally the one day that just expired) and, for each,
the session's agent.json, which names its last activity:

- active on a later day: the marker is stale (a newer one exists) and goes; the session stays;
- last active before the cutoff: the session is deleted under its lease (expire re-checks its
  newest object, so a turn that starts meanwhile either blocks the deletion or follows it), with
  its list entry and the lease itself, in one request; then the marker goes;
- gone already (deleted by its caller, which leaves the markers): the marker goes (2 requests);
- last active on the cutoff's day, after the cutoff, or busy: the marker stays for the next run.

An idle session costs 4 requests: GET agent.json, PUT its lease (if absent), LIST its folder,
one DELETE of folder, entry and lease. Markers go by the thousand (one LIST and one DELETE).

Callers: once a run has checked its markers, each caller who lost a session in it (deleted now
or gone before) is settled once: the deleted sessions' titles are forgotten in one rewrite of
titles.json, and, if the caller has no session left, their documents (memory.json, titles.json)
go when last changed before the cutoff; a younger one gets a caller marker
(``.activity/<its day>/<caller>/~documents``) so that the sweep of that day judges it again. So
a caller's memory outlives their last session by the TTL, however that session ended.

It also deletes connection bindings older than a day (``.connections/``: live connections only).

Resumable: a run out of time stores the day and the last marker it finished in
``.expiry-sweep-cursor``; the next run resumes there (the callers of what it deleted are settled
first). Every run deletes at least one thing it finds idle, so each run makes progress.
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..deadline import Deadline
from ..errors import SessionBusy
from . import catalog
from .documents import change_document, decode
from .failures import store_errors
from .keys import CONNECTIONS, SESSION_PREFIX, SWEEP_CURSOR, SessionKeys, parse_session_key
from .objects import ObjectStore
from .session_list import ACTIVITY, TITLES, day_of, parse_marker

if TYPE_CHECKING:
    from .sessions import SessionStore

logger = logging.getLogger(__name__)
CONNECTION_TTL = timedelta(days=1)
CALLER_DOCUMENTS = ("memory", TITLES)
DOCUMENTS_MARKER = "~documents"  # not a session id: .activity/<day>/<caller>/~documents


@dataclass
class Sweep:
    """One run: what it deleted, and whether it ran out of time."""

    store: "SessionStore"
    objects: ObjectStore
    now: datetime
    cutoff: datetime
    deadline: Deadline
    deleted: list[str] = field(default_factory=list)
    others: int = 0  # markers, documents and connections deleted
    callers: dict[str, set[str]] = field(default_factory=dict)  # segment: the sessions it lost

    def lost(self, segment: str, session_id: str | None = None) -> None:
        self.callers.setdefault(segment, set()).update([session_id] if session_id else [])

    def out_of_time(self) -> bool:  # but never before the run has deleted something
        return bool(self.deleted or self.others) and self.deadline.expired()


def expire_idle(store: "SessionStore", now: datetime, deadline: Deadline) -> list[str]:
    """Delete whole idle sessions; ``caller/session_id`` of each one deleted."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    cutoff = now - timedelta(days=store.settings.session_ttl_days)
    sweep = Sweep(store, store.objects.within(deadline), now, cutoff, deadline)
    objects = sweep.objects
    with store_errors("expiring idle sessions"):
        day, after = read_cursor(objects)
        day = day or first_day(objects, None)
        last_day = cutoff.strftime("%Y-%m-%d")
        while day is not None and day <= last_day:
            stopped_at = sweep_day(sweep, day, after)
            if stopped_at is not None:
                objects.put(SWEEP_CURSOR, json.dumps({"day": day, "after": stopped_at}).encode())
                break
            day, after = first_day(objects, day), None
        else:
            objects.delete([SWEEP_CURSOR])
        for segment, session_ids in sorted(sweep.callers.items()):  # even out of time: titles must go
            settle_caller(sweep, segment, session_ids)
        expire_connections(sweep)
    return sweep.deleted


def read_cursor(objects: ObjectStore) -> tuple[str | None, str | None]:
    stored = objects.get(SWEEP_CURSOR)
    try:
        cursor = json.loads(stored.body) if stored else {}
        return str(cursor["day"]), cursor.get("after")
    except (ValueError, KeyError, TypeError):
        return None, None  # none, or an older sweep's: start from the oldest marker


def first_day(objects: ObjectStore, after_day: str | None) -> str | None:
    """The oldest day with a marker (after ``after_day``): one LIST request."""
    start = f"{ACTIVITY}{after_day}0" if after_day else None  # "0" sorts after "/": past that day
    for listed in objects.list(ACTIVITY, start_after=start):
        return listed.key[len(ACTIVITY):].split("/", 1)[0]
    return None


def sweep_day(sweep: Sweep, day: str, after: str | None) -> str | None:
    """Check the sessions a day's markers name; the last marker finished if out of time, else None."""
    done: list[str] = []
    stopped_at = None
    for listed in sweep.objects.list(f"{ACTIVITY}{day}/", start_after=after):
        if sweep.out_of_time():
            stopped_at = done[-1] if done else after or listed.key
            break
        keys = parse_marker(listed.key)
        if listed.key.endswith(f"/{DOCUMENTS_MARKER}"):
            sweep.lost(listed.key.split("/")[-2])  # a caller's documents, younger than the TTL then
            done.append(listed.key)
        elif keys is None or check(sweep, keys, day):
            done.append(listed.key)
    sweep.objects.delete(done)
    sweep.others += len(done)
    return stopped_at


def check(sweep: Sweep, keys: SessionKeys, day: str) -> bool:
    """Whether the marker has done its work (its session is gone, expired now, or active since)."""
    objects = sweep.objects
    agent = decode(objects.get(keys.agent(catalog.AGENT_ID)))
    listing = (agent or {}).get(catalog.LISTING)
    entry = catalog.parse_entry(listing) if isinstance(listing, str) else None
    if agent is not None and entry is not None and day_of(entry.updated_ms) > day:
        return True  # active on a later day, whose marker will judge it
    if entry is not None and entry.updated_ms >= sweep.cutoff.timestamp() * 1000:
        return False  # active today, after the cutoff: judged again tomorrow
    if agent is None and not any(True for _ in objects.list(keys.folder)):
        sweep.lost(keys.segment, keys.session_id)  # deleted by its caller, whose memory may be left
        return True
    if not expire(sweep.store, objects, keys, sweep.cutoff, listing if isinstance(listing, str) else None):
        return False
    sweep.deleted.append(keys.label)
    sweep.lost(keys.segment, keys.session_id)
    return True


def expire_connections(sweep: Sweep) -> None:
    """Bindings older than a day: API Gateway connections last two hours at most."""
    if sweep.out_of_time():
        return
    old = [o.key for o in sweep.objects.list(CONNECTIONS) if o.last_modified < sweep.now - CONNECTION_TTL]
    if old:
        sweep.objects.delete(old)
        logger.info("deleted %d old connection bindings", len(old))
        sweep.others += len(old)


def expire(store: "SessionStore", objects: ObjectStore, keys: SessionKeys, cutoff: datetime,
           listing: str | None = None) -> bool:
    """Delete the session (and its list entry) if it is still idle, under its lease; False if busy
    or used since."""
    try:
        with store_errors("taking a session lease"):
            lease = store.leases.take(objects, keys.lease)
    except SessionBusy:
        return False
    deleted = False
    try:
        with store_errors("expiring a session"):
            stored = list(objects.list(keys.folder))
            if not stored or max(o.last_modified for o in stored) >= cutoff:
                return False  # only a stale lease (now released), or used since the listing
            # The lease goes in the same request: held, nobody else can have it (saves a DELETE).
            objects.delete([o.key for o in stored] + ([listing] if listing else []) + [keys.lease])
            deleted = True
    finally:
        if not deleted:
            store.leases.release(objects, lease)
    logger.info("expired idle session %s", keys.label)
    return True


def settle_caller(sweep: Sweep, segment: str, session_ids: set[str]) -> None:
    """Forget the titles of the sessions it lost, and expire the caller's documents if no session
    is left: a LIST, a GET a document, and a write where something changed."""
    objects = sweep.objects
    alone = not any(parse_session_key(o.key) for o in objects.list(f"{segment}/{SESSION_PREFIX}"))
    youngest: datetime | None = None
    for name in CALLER_DOCUMENTS if alone else (TITLES,):
        key = f"{segment}/{name}.json"
        current = objects.get(key)
        if current is None:
            continue
        if alone and current.last_modified < sweep.cutoff:
            if objects.delete_if_match(key, current.etag):
                sweep.others += 1
                logger.info("expired the caller document %s of a caller without sessions", f"{name}.json")
                continue
            current = objects.get(key)  # changed meanwhile: judged again, later
            if current is None:
                continue
        if name == TITLES and session_ids:
            change_document(objects, key, lambda document: forget_titles(document, session_ids), current)
        if alone:
            youngest = max(youngest or current.last_modified, current.last_modified)
    if youngest is not None:  # judged again on the day it expires
        objects.put(f"{ACTIVITY}{youngest.strftime('%Y-%m-%d')}/{segment}/{DOCUMENTS_MARKER}", b"{}")


def forget_titles(document: dict | None, session_ids: set[str]) -> dict | None:
    titles = catalog.titles_of(document)
    if document is None or not session_ids & titles.keys():
        return document
    return {**document, "titles": {k: v for k, v in titles.items() if k not in session_ids}}
