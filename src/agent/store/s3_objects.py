"""The ObjectStore on S3: keys under ``<bucket>/<prefix>/``, S3's own conditional requests.

- put_if_absent: PutObject If-None-Match: *        - put_if_match: PutObject If-Match: <etag>
- delete_if_match: DeleteObject If-Match: <etag>    - list: ListObjectsV2, paginated lazily
- delete: DeleteObjects, 1000 keys a request        - get_many / put_many: a few requests at once

A lost condition is 412 PreconditionFailed, or 409 ConditionalRequestConflict when two
conditional writes race; both mean "someone else got there first", never a store failure.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from ..deadline import Deadline
from .objects import ListedObject, StoredObject

T = TypeVar("T")
R = TypeVar("R")
ClientFor = Callable[[Deadline], Any]  # a boto3 S3 client whose retries and timeouts fit the deadline


def is_conflict(error: ClientError) -> bool:
    """A conditional request lost: 412 PreconditionFailed, or 409 ConditionalRequestConflict (S3 races)."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def is_missing(error: ClientError) -> bool:
    """The object is not there (not: the bucket is not there, which is a store failure)."""
    return error.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True)
class S3Objects:
    client_for: ClientFor
    bucket: str
    prefix: str = ""
    deadline: Deadline = field(default_factory=Deadline.never)
    tagging: str | None = None  # on every write, as S3's x-amz-tagging ("kind=record")
    # One pool per container: concurrent reads and writes of a turn without a thread start each.
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16, "s3-objects"), repr=False)

    def within(self, deadline: Deadline) -> "S3Objects":
        return replace(self, deadline=deadline)

    def tagged(self, tagging: str) -> "S3Objects":
        return replace(self, tagging=tagging)

    @property
    def client(self) -> Any:  # chosen per request: its worst case fits the time left when it starts
        return self.client_for(self.deadline)

    def _key(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def get(self, key: str) -> StoredObject | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return StoredObject(key, response["Body"].read(), response["ETag"], response["LastModified"])

    def get_many(self, keys: list[str]) -> list[StoredObject | None]:
        return _each(self.pool, self.get, keys)

    def put(self, key: str, body: bytes) -> str:
        etag = self._put(key, body)
        assert etag is not None  # unconditional: a refused condition is the only None
        return etag

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        _each(self.pool, lambda item: self._put(*item), items)

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        return self._put(key, body, IfNoneMatch="*")

    def put_many_if_absent(self, items: list[tuple[str, bytes]]) -> list[str | None]:
        return _each(self.pool, lambda item: self._put(*item, IfNoneMatch="*"), items)

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        return self._put(key, body, IfMatch=etag)

    def delete_if_match(self, key: str, etag: str) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=etag)
        except ClientError as error:
            if is_conflict(error) or is_missing(error):
                return False
            raise
        return True

    def delete(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000; a per-key error fails the call (a store failure)."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                first = response["Errors"][0]
                raise OSError(f"S3 refused to delete {len(response['Errors'])} objects, e.g. {first.get('Code')}")

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        after = {"StartAfter": self._key(start_after)} if start_after else {}
        root = len(self._key(""))
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix), **after)
        for page in pages:
            for item in page.get("Contents", []):
                yield ListedObject(item["Key"][root:], item["LastModified"])

    def _put(self, key: str, body: bytes, **condition: str) -> str | None:
        """The new ETag, or None when the condition failed (or the object vanished under If-Match)."""
        tags = {"Tagging": self.tagging} if self.tagging else {}
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=body, ContentType="application/json", **tags, **condition
            )
        except ClientError as error:
            if condition and (is_conflict(error) or is_missing(error)):
                return None
            raise
        return response["ETag"]


def _each(pool: ThreadPoolExecutor, function: Callable[[T], R], items: list[T]) -> list[R]:
    """In order; the first failure propagates."""
    if len(items) <= 1:
        return [function(item) for item in items]
    futures = [pool.submit(function, item) for item in items]
    return [future.result() for future in futures]
