"""Small JSON documents beside the sessions, changed by compare-and-swap (no lease needed).

    <caller>/<name>.json                         caller documents: read-modify-write, retried
    <caller>/session_<id>/records/<name>.json    SessionRecords: live and die with the session

A change that loses a race (put_if_match / put_if_absent / delete_if_match refused) reads the
document again and applies the change again, so two concurrent writers never lose each other's
change; a change must therefore be a function of what it is given, nothing else.
"""

import copy
import json
import random
import time
from collections.abc import Callable
from typing import Any

from ..errors import SessionBusy
from .failures import store_errors
from .keys import SessionKeys
from .objects import ObjectStore, StoredObject

Doc = dict[str, Any]
Change = Callable[[Doc | None], Doc | None]
ATTEMPTS = 6
UNREAD = object()


def encode(document: Doc) -> bytes:
    """As Strands writes its JSON (S3SessionManager / FileSessionManager)."""
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")


def decode(stored: StoredObject | None) -> Doc | None:
    return None if stored is None else json.loads(stored.body)


def change_document(objects: ObjectStore, key: str, change: Change, current: Any = UNREAD) -> Doc | None:
    """Apply ``change`` (None from it deletes); ``current``: the object as already read, if it was."""
    for attempt in range(ATTEMPTS):
        if current is UNREAD:
            current = objects.get(key)
        before = decode(current)
        after = change(copy.deepcopy(before))
        if after == before:
            return after
        if after is None:
            done = objects.delete_if_match(key, current.etag)
        elif current is None:
            done = objects.put_if_absent(key, encode(after)) is not None
        else:
            done = objects.put_if_match(key, encode(after), current.etag) is not None
        if done:
            return after
        current = UNREAD
        time.sleep(random.uniform(0, 0.01 * 2**attempt))  # two writers out of step
    raise SessionBusy("This document is being changed by other requests; please retry.", retry_after=1)


class SessionRecords:
    """Small JSON documents that live and die with the session (idempotency records, async turn
    status): <caller>/session_<id>/records/<name>.json. Deleted with the session and by the sweep.
    Names: [A-Za-z0-9_.:-]{1,200}; anything else is InvalidRequest."""

    def __init__(self, objects: ObjectStore, keys: SessionKeys) -> None:
        self.objects, self.keys = objects, keys

    def get(self, name: str) -> tuple[Doc, str] | None:
        """(document, etag), or None when there is none."""
        with store_errors("reading a record"):
            stored = self.objects.get(self.keys.record(name))
            return None if stored is None else (json.loads(stored.body), stored.etag)

    def create(self, name: str, document: Doc) -> str | None:
        """The new etag, or None when the record exists."""
        with store_errors("writing a record"):
            return self.objects.put_if_absent(self.keys.record(name), encode(document))

    def replace(self, name: str, document: Doc, etag: str) -> str | None:
        """The new etag, or None when the record changed since ``etag`` (or is gone)."""
        with store_errors("writing a record"):
            return self.objects.put_if_match(self.keys.record(name), encode(document), etag)

    def put(self, name: str, document: Doc) -> str:
        with store_errors("writing a record"):
            return self.objects.put(self.keys.record(name), encode(document))

    def delete(self, name: str) -> None:
        with store_errors("deleting a record"):
            self.objects.delete([self.keys.record(name)])
