"""SessionCatalog: keeps each caller's session list (session_list.py) as turns commit, and reads it.

Costs: a turn adds one PUT (its new entry) and, from its second turn on, one DELETE (the entry
it replaces), in one concurrent round trip after the commit, with the lease's release; the first turn of a day adds the
day's marker to that round trip. A page is one LIST and one GET. A rename or a delete changes
titles.json by compare-and-swap. Sessions written before the list existed are indexed once, the
first time their caller lists (or by ``make reindex``), flagged in titles.json.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SessionBusy, SessionNotFound
from . import keys as layout
from .documents import Doc, change_document, decode, encode
from .keys import SESSION_PREFIX, SessionKeys, caller_segment, parse_session_key
from .objects import ObjectStore
from .repository import LISTING, TurnRepository
from .session_list import (
    ENTRIES,
    MAX_PAGE,
    TITLES,
    Entry,
    day_of,
    decode_list_cursor,
    default_title,
    encode_list_cursor,
    first_user_text,
    marker,
    ms_of,
    parse_entry,
    titles_key,
)
from .together import together

logger = logging.getLogger(__name__)
AGENT_ID = "default"
INDEXED = "indexed"  # in titles.json: this caller's sessions from before the list are in it


@dataclass(frozen=True)
class SessionPage:
    sessions: list[dict[str, Any]]
    next_cursor: str | None


def previous_entry(repository: TurnRepository) -> Entry | None:
    stored = repository.agents[AGENT_ID].stored if AGENT_ID in repository.agents else None
    key = (stored or {}).get(LISTING)
    return parse_entry(key) if isinstance(key, str) else None


def prepare_listing(repository: TurnRepository, keys: SessionKeys, now_ms: Callable[[], int]) -> None:
    """Make the commit name the session's new entry (in agent.json), from what the turn knows."""
    before = previous_entry(repository)

    def listing(count: int) -> str:
        if before is not None:
            created, title = before.created_ms, before.default_title
        else:
            session = repository.new_session or repository.stored_session or {}
            created = ms_of(session.get("created_at"), now_ms())
            record = repository.agents.get(AGENT_ID)
            first = record.message(0) if record else None
            title = default_title(first_user_text(first))
        return Entry(keys.session_id, max(now_ms(), created), count, created, title).key(keys.segment)

    repository.listing = listing


def write_listing(objects: ObjectStore, keys: SessionKeys, repository: TurnRepository) -> None:
    """After the commit: the new entry (and today's marker, once a day), then the old entry goes."""
    new_key = repository.written_listing
    new = parse_entry(new_key) if new_key else None
    if new is None or new_key is None:
        return
    before = previous_entry(repository)
    writes = [(new_key, b"{}")]  # JSON, as every object of the store is
    if before is None or day_of(before.updated_ms) != day_of(new.updated_ms):
        writes.append((marker(keys, day_of(new.updated_ms)), b"{}"))
    old = (repository.agents[AGENT_ID].stored or {}).get(LISTING)
    if not (isinstance(old, str) and old != new_key):
        objects.put_many(writes)
        return
    written, deleted = together(lambda: objects.put_many(writes), lambda: objects.delete([old]))
    if written.error is not None and deleted.error is None:
        objects.put(old, b"{}")  # the old entry back: a failure leaves it, never no entry
    written.result()
    deleted.result()


def listing_keys(agent: Doc | None, keys: SessionKeys) -> list[str]:
    """A deleted session's list entry. Its markers stay: the sweep that reads the last one settles
    the caller (their memory may have no session left to go with, expiry.py)."""
    listing = (agent or {}).get(LISTING)
    return [str(listing)] if isinstance(listing, str) and parse_entry(listing) is not None else []


def titles_of(stored: Doc | None) -> dict[str, str]:
    titles = (stored or {}).get("titles")
    return titles if isinstance(titles, dict) else {}


def read_page(objects: ObjectStore, caller: str, limit: int, cursor: str | None) -> tuple[SessionPage, Doc | None]:
    """One LIST of the caller's entries and one GET of titles.json, concurrently in effect."""
    limit = max(1, min(limit, MAX_PAGE))
    prefix = f"{caller_segment(caller)}/{ENTRIES}"
    after = prefix + decode_list_cursor(cursor, caller) if cursor else None
    titles_doc = decode(objects.get(layout.caller_document(caller, TITLES)))
    seen: set[str] = set()
    found: list[tuple[str, Entry]] = []
    for listed in objects.list(prefix, start_after=after):
        entry = parse_entry(listed.key)
        if entry is None or entry.session_id in seen:
            continue  # an old entry a turn that died after its commit left behind
        seen.add(entry.session_id)
        found.append((listed.key, entry))
        if len(found) > limit:
            break
    page, more = found[:limit], len(found) > limit
    titles = titles_of(titles_doc)
    next_cursor = encode_list_cursor(caller, page[-1][0][len(prefix):]) if more else None
    return SessionPage([entry.summary(titles) for _, entry in page], next_cursor), titles_doc


def summary_of(objects: ObjectStore, keys: SessionKeys, caller: str) -> dict[str, Any]:
    """A session's list entry, read from the session itself (GET /sessions/{id})."""
    session, agent, titles = objects.get_many([keys.session, keys.agent(AGENT_ID),
                                               layout.caller_document(caller, TITLES)])
    if session is None:
        raise SessionNotFound(f"Session {keys.session_id} does not exist.")
    entry = entry_of(objects, keys, session, agent)
    return entry.summary(titles_of(decode(titles)))


def entry_of(objects: ObjectStore, keys: SessionKeys, session: Any, agent: Any) -> Entry:
    """From agent.json's "_listing", or (a session from before the list) from what is stored."""
    repository = TurnRepository(objects, keys, session, {AGENT_ID: agent})
    listed = previous_entry(repository)
    if listed is not None:
        return listed
    created = ms_of((decode(session) or {}).get("created_at"), int(session.last_modified.timestamp() * 1000))
    updated = int((agent or session).last_modified.timestamp() * 1000)
    count = repository.message_count(AGENT_ID) if agent is not None else 0
    first = repository.read_message(keys.session_id, AGENT_ID, 0) if count else None
    title = default_title(first_user_text(first.to_dict() if first else None))
    return Entry(keys.session_id, max(updated, created), count, created, title)


def set_title(objects: ObjectStore, key: str, session_id: str, title: str | None) -> None:
    """Rename (or, None, forget the title of a deleted session) by compare-and-swap."""
    def change(document: Doc | None) -> Doc | None:
        document = document or {}
        titles = {k: v for k, v in titles_of(document).items() if k != session_id}
        if title is not None:
            titles[session_id] = title
        return {**document, "titles": titles}

    if title is None:
        current = objects.get(key)
        if session_id not in titles_of(decode(current)):
            return  # nothing to forget: no write
        change_document(objects, key, change, current)
    else:
        change_document(objects, key, change)


def reindex_caller(store: Any, objects: ObjectStore, segment: str) -> int:
    """List the sessions of one caller written before the list existed; the number indexed."""
    names = {parsed[0] for o in objects.list(f"{segment}/{SESSION_PREFIX}")
             if (parsed := parse_session_key(o.key)) is not None and not parsed[1]}
    indexed = sum(index_session(store, objects, keys) for keys in sorted(names, key=lambda k: k.session_id))
    change_document(objects, titles_key(segment), lambda document: {**(document or {"titles": {}}), INDEXED: True})
    return indexed


def index_session(store: Any, objects: ObjectStore, keys: SessionKeys) -> bool:
    """Under the session's lease: an entry, a marker, and agent.json naming the entry (CAS)."""
    try:
        with store.leased(keys, objects):
            session, agent = objects.get_many([keys.session, keys.agent(AGENT_ID)])
            document = decode(agent)
            if session is None or agent is None or document is None or document.get(LISTING):
                return False  # not a session, or listed already
            entry = entry_of(objects, keys, session, agent)
            key = entry.key(keys.segment)
            objects.put_many([(key, b"{}"), (marker(keys, day_of(entry.updated_ms)), b"{}")])
            if objects.put_if_match(keys.agent(AGENT_ID), encode({**document, LISTING: key}), agent.etag) is None:
                objects.delete([key])  # a turn committed meanwhile: its own entry stands
                return False
    except SessionBusy:
        return False  # a turn is running: it writes the session's entry itself
    return True


def is_indexed(titles_doc: Doc | None) -> bool:
    return bool((titles_doc or {}).get(INDEXED))


def callers(objects: ObjectStore) -> list[str]:
    """Every caller segment holding a session (make reindex only: it lists the whole store)."""
    found: set[str] = set()
    for listed in objects.list(""):
        parsed = parse_session_key(listed.key)
        if parsed is not None:
            found.add(parsed[0].segment)
    return sorted(found)
