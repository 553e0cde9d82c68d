"""The ObjectStore on local files (the local twin): one file per key under a root directory.

    <root>/<key>      the object: its ETag is the md5 of its bytes, its LastModified the file's mtime
    <root>/.lock      flock'd while a write decides and lands, so processes and threads agree

Every write holds the lock: a conditional write reads the current ETag and replaces the file
before anyone else may, which is what S3 does for If-None-Match / If-Match. A write is atomic
(a temporary file in the same folder, then os.replace), so readers, who take no lock, see the
old object or the new one. Empty folders go with their last object, as S3 has no folders.
Symlinks are refused, as Strands' FileSessionManager refuses them.
"""

import errno
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..deadline import Deadline
from .objects import ListedObject, StoredObject

LOCK = ".lock"
TEMPORARY = ".~"  # temporary files start so; no key segment does (keys.py encodes "~")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LOCK_WAIT_PAST_DEADLINE = 0.25  # a release after the deadline may still wait this long


def etag_of(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class FileObjects:
    root: str
    deadline: Deadline = field(default_factory=Deadline.never)

    def tagged(self, tagging: str) -> "FileObjects":
        return self  # files have no tags; records go with their session

    def within(self, deadline: Deadline) -> "FileObjects":
        """Local files do not hang; what can wait is the lock, and it waits no longer than this."""
        return replace(self, deadline=deadline)

    def get(self, key: str) -> StoredObject | None:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | _NOFOLLOW)  # ELOOP on a symlink
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as file:
            body = file.read()
            modified = os.fstat(file.fileno()).st_mtime
        return StoredObject(key, body, etag_of(body), datetime.fromtimestamp(modified, tz=UTC))

    def get_many(self, keys: list[str]) -> list[StoredObject | None]:
        return [self.get(key) for key in keys]

    def put(self, key: str, body: bytes) -> str:
        with self._locked():
            return self._write(key, body)

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        with self._locked():
            for key, body in items:
                self._write(key, body)

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        return self.put_many_if_absent([(key, body)])[0]

    def put_many_if_absent(self, items: list[tuple[str, bytes]]) -> list[str | None]:
        with self._locked():
            return [None if os.path.lexists(self._path(key)) else self._write(key, body) for key, body in items]

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        with self._locked():
            current = self.get(key)
            return self._write(key, body) if current is not None and current.etag == etag else None

    def delete_if_match(self, key: str, etag: str) -> bool:
        with self._locked():
            current = self.get(key)
            if current is None or current.etag != etag:
                return False
            self._unlink(key)
            return True

    def delete(self, keys: list[str]) -> None:
        with self._locked():
            for key in keys:
                self._unlink(key)

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ListedObject]:
        """Walks only the folder the prefix names; sorted like S3 (code points = UTF-8 byte order)."""
        folder, _, stem = prefix.rpartition("/")
        base = self._path(folder) if folder else self.root
        keys = []
        for directory, subfolders, files in os.walk(base):  # never follows a symlinked folder
            relative = os.path.relpath(directory, self.root).replace(os.sep, "/")
            above = "" if relative == "." else f"{relative}/"
            if directory == base:
                subfolders[:] = [name for name in subfolders if name.startswith(stem)]
            for name in files:
                key = above + name
                if name.startswith(TEMPORARY) or key == LOCK or not key.startswith(prefix):
                    continue
                if start_after is None or key > start_after:
                    keys.append(key)
        for key in sorted(keys):
            with suppress(FileNotFoundError):  # deleted since the walk
                status = os.lstat(self._path(key))
                if not stat.S_ISLNK(status.st_mode):
                    yield ListedObject(key, datetime.fromtimestamp(status.st_mtime, tz=UTC))

    # ---- inside the lock ------------------------------------------------------------------
    def _write(self, key: str, body: bytes) -> str:
        path = self._path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if os.path.islink(path):
            raise OSError(errno.ELOOP, "refusing to write over a symlink", path)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=TEMPORARY, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(body)
            os.replace(temporary, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        return etag_of(body)

    def _unlink(self, key: str) -> None:
        path = self._path(key)
        with suppress(FileNotFoundError):
            os.unlink(path)
        folder = os.path.dirname(path)
        while folder != self.root and folder.startswith(self.root):
            try:
                os.rmdir(folder)
            except OSError:  # not empty: the folder still holds other objects
                return
            folder = os.path.dirname(folder)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # fcntl is imported here so that this module (and the S3 store) import where it is missing.
        import fcntl

        os.makedirs(self.root, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.root, LOCK), os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
        try:
            self._wait_for(fd, fcntl)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _wait_for(self, fd: int, fcntl: Any) -> None:
        """flock, but never past the deadline (a little past it for a release after the deadline)."""
        give_up = time.monotonic() + max(self.deadline.remaining(), _LOCK_WAIT_PAST_DEADLINE)
        while True:
            try:
                return fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    raise TimeoutError("the session store's lock was held past the deadline") from None
                time.sleep(0.002)

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if key == LOCK or any(p in ("", ".", "..") or p.startswith(TEMPORARY) or "\\" in p or "\0" in p for p in parts):
            raise ValueError(f"not a valid object key: {key!r}")
        return os.path.join(self.root, *parts)
