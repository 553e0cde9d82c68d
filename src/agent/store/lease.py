"""Leases: one turn at a time per session, across Lambda containers, without a lock server.

A lease is a small JSON object ``{"owner", "expires_at"}`` beside the session. Whoever creates it
holds the session until ``expires_at``; an expired lease may be taken over, so a holder that crashed
or timed out blocks the session for at most ``seconds``. Every step is a compare-and-swap:

- S3: PutObject IfNoneMatch="*" to create, PutObject IfMatch=<ETag> to take over or renew,
  DeleteObject IfMatch=<our ETag> to release (a taken-over lease is never deleted by its old holder).
- Files: the same decisions under an flock'd lock file (O_EXCL alone cannot take over an expired
  lease without a race between two takers).

``expires_at`` is wall-clock time; Lambda hosts keep NTP time, and the margin in ``confirm`` absorbs
small skew. The function timeout must stay below the lease time (see the README).
"""

import json
import logging
import math
import os
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError

from ..errors import SessionBusy
from .failures import is_conflict, is_missing

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
_ATTEMPTS = 3  # creating, then taking over, can each lose one race to another taker


@dataclass
class Lease:
    """A held lease. ``version`` is the S3 ETag (files: the owner token) that proves we still hold it."""

    where: str
    owner: str
    expires_at: float
    version: str
    taken_over: bool = False  # the previous holder died without releasing: its commit may be partial


def busy(remaining: float) -> SessionBusy:
    seconds = max(1, math.ceil(remaining))
    return SessionBusy(
        f"Another request is working on this session; retry in {seconds} s.", retry_after=seconds
    )


def _body(owner: str, expires_at: float) -> bytes:
    return json.dumps({"owner": owner, "expires_at": expires_at}).encode()


def _parse(raw: bytes) -> dict[str, Any]:
    """A lease we cannot read counts as expired, so garbage never blocks a session for good."""
    try:
        data = json.loads(raw)
        return {"owner": str(data["owner"]), "expires_at": float(data["expires_at"])}
    except (ValueError, KeyError, TypeError):
        return {"owner": "", "expires_at": 0.0}


class S3Leases:
    """Leases as S3 objects, with conditional writes and deletes."""

    def __init__(self, client: Any, bucket: str, seconds: int, clock: Clock = time.time) -> None:
        self.client, self.bucket, self.seconds, self.clock = client, bucket, seconds, clock

    def acquire(self, key: str) -> Lease:
        """Hold the lease at ``key`` or raise SessionBusy (having written nothing else)."""
        owner, tried_takeover = uuid.uuid4().hex, False
        for _ in range(_ATTEMPTS):
            expires_at = self.clock() + self.seconds
            etag = self._put(key, owner, expires_at, IfNoneMatch="*")
            if etag:
                return Lease(key, owner, expires_at, etag)
            current = self._get(key)
            if current is None:
                continue  # released between our put and our get
            data, etag = current
            if data["owner"] == owner:  # a retried put of ours had succeeded after all
                return Lease(key, owner, data["expires_at"], etag, taken_over=tried_takeover)
            remaining = data["expires_at"] - self.clock()
            if remaining > 0:
                raise busy(remaining)
            tried_takeover = True
            new_etag = self._put(key, owner, expires_at, IfMatch=etag)
            if new_etag:
                logger.warning("took over an expired session lease %s", key)
                return Lease(key, owner, expires_at, new_etag, taken_over=True)
        raise busy(1)

    def confirm(self, lease: Lease) -> None:
        """Before committing: renew a lease close to expiry; if another request took it, give up."""
        if lease.expires_at - self.clock() > _margin(self.seconds):
            return
        expires_at = self.clock() + self.seconds
        etag = self._put(lease.where, lease.owner, expires_at, IfMatch=lease.version)
        if not etag:
            raise _lost()
        lease.expires_at, lease.version = expires_at, etag

    def release(self, lease: Lease) -> None:
        """Never raises: the turn's outcome is already decided; a lease left behind just expires."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=lease.where, IfMatch=lease.version)
        except ClientError as error:
            if not (is_missing(error) or is_conflict(error)):
                logger.warning("could not release session lease: %s", error)
        except Exception as error:  # noqa: BLE001 (a failed release must not fail the turn)
            logger.warning("could not release session lease: %s: %s", type(error).__name__, error)

    def _put(self, key: str, owner: str, expires_at: float, **condition: str) -> str | None:
        """The new ETag, or None when the condition failed (or the object vanished under IfMatch)."""
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=_body(owner, expires_at), ContentType="application/json", **condition
            )
        except ClientError as error:
            if is_conflict(error) or is_missing(error):
                return None
            raise
        return response["ETag"]

    def _get(self, key: str) -> tuple[dict[str, Any], str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return _parse(response["Body"].read()), response["ETag"]


class FileLeases:
    """Leases as files, for the local twin; decisions are made under one flock'd lock file."""

    def __init__(self, root: str, seconds: int, clock: Clock = time.time) -> None:
        self.root, self.seconds, self.clock = root, seconds, clock

    def acquire(self, path: str) -> Lease:
        owner = uuid.uuid4().hex
        with self._locked():
            current = self._read(path)
            if current is not None and current["expires_at"] > self.clock():
                raise busy(current["expires_at"] - self.clock())
            expires_at = self.clock() + self.seconds
            self._write(path, owner, expires_at)
        if current is not None:
            logger.warning("took over an expired session lease %s", path)
        return Lease(path, owner, expires_at, owner, taken_over=current is not None)

    def confirm(self, lease: Lease) -> None:
        if lease.expires_at - self.clock() > _margin(self.seconds):
            return
        with self._locked():
            current = self._read(lease.where)
            if current is None or current["owner"] != lease.owner:
                raise _lost()
            lease.expires_at = self.clock() + self.seconds
            self._write(lease.where, lease.owner, lease.expires_at)

    def release(self, lease: Lease) -> None:
        try:
            with self._locked():
                current = self._read(lease.where)
                if current is not None and current["owner"] == lease.owner:
                    os.unlink(lease.where)
        except OSError as error:
            logger.warning("could not release session lease: %s", error)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # fcntl is imported here so the S3 store still imports where fcntl does not exist (Windows).
        import fcntl

        os.makedirs(self.root, mode=0o700, exist_ok=True)
        with open(os.path.join(self.root, ".leases.lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _read(path: str) -> dict[str, Any] | None:
        try:
            with open(path, "rb") as file:
                return _parse(file.read())
        except FileNotFoundError:
            return None

    @staticmethod
    def _write(path: str, owner: str, expires_at: float) -> None:
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".lease_", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(_body(owner, expires_at))
        os.replace(temporary, path)


def _margin(seconds: int) -> float:
    """Time a commit may take after confirm: generous next to S3 latencies, small next to the lease."""
    return min(10.0, seconds / 2)


def _lost() -> SessionBusy:
    return SessionBusy(
        "This turn outlived its session lease and another request took the session over; "
        "nothing of this turn was stored. Please retry.",
        retry_after=1,
    )
