"""The object store under the session store: the few operations it needs, with ETags.

Implemented once for S3 (`s3_objects.py`) and once for local files (`file_objects.py`), with the
same keys and the same semantics, so the lease, the atomic commit, the window snapshot and the
expiry sweep are written once, over this interface. Keys are "/"-separated and relative to the
store's root (an S3 prefix, or a directory).

Conditional writes are the only synchronisation: put_if_absent (S3 If-None-Match: *),
put_if_match and delete_if_match (If-Match: <etag>). ETags are opaque strings; compare them,
never parse them.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..deadline import Deadline


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class ListedObject:
    key: str
    last_modified: datetime


class ObjectStore(Protocol):
    def get(self, key: str) -> StoredObject | None:
        """The object, or None when there is none."""

    def get_many(self, keys: list[str]) -> list[StoredObject | None]:
        """Several objects, fetched concurrently where that helps; in the order asked."""

    def put(self, key: str, body: bytes) -> str:
        """Write unconditionally; the new ETag."""

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Write several objects, concurrently where that helps."""

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        """Create; the new ETag, or None when the key already exists."""

    def put_many_if_absent(self, items: list[tuple[str, bytes]]) -> list[str | None]:
        """put_if_absent for several objects, concurrently where that helps; in the order given."""

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        """Replace if unchanged since ``etag``; the new ETag, or None when it changed or is gone."""

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete if unchanged since ``etag``; False when it changed or is gone."""

    def delete(self, keys: list[str]) -> None:
        """Delete these keys; missing ones are no error."""

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        """Every key under ``prefix`` after ``start_after``, in key order, paginated lazily."""

    def within(self, deadline: Deadline) -> "ObjectStore":
        """The same store, whose calls (timeouts and retries included) end before ``deadline``."""

    def tagged(self, tagging: str) -> "ObjectStore":
        """The same store, whose writes carry these tags ("kind=record") where the store has tags
        (S3: a lifecycle rule can expire them); files have none."""
