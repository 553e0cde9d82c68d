"""Leases: one turn at a time per session, across Lambda containers, without a lock server.

A lease is a small JSON object ``{"owner", "expires_at"}`` beside the session's folder. Whoever
creates it holds the session until ``expires_at``; an expired lease may be taken over, so a holder
that crashed or timed out blocks the session for at most ``seconds``. Every step is a
compare-and-swap on the object store, the same on S3 and on files:

- take:     put_if_absent; if it exists and has expired, get + put_if_match(its ETag)
- confirm:  before committing, put_if_match(our ETag) to renew a lease close to expiry
- release:  delete_if_match(our ETag), so a taken-over lease is never deleted by its old holder

``expires_at`` is wall-clock time; Lambda hosts keep NTP time, and the margin in ``confirm``
absorbs small skew. The function timeout must stay below the lease time (see the README).
"""

import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SessionBusy
from .objects import ObjectStore

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
_ATTEMPTS = 3  # creating, then taking over, can each lose one race to another taker


@dataclass
class Lease:
    """A held lease; ``etag`` proves we still hold it."""

    key: str
    owner: str
    expires_at: float
    etag: str
    taken_over: bool = False  # the previous holder died without releasing: its commit may be partial


def busy(remaining: float) -> SessionBusy:
    seconds = max(1, math.ceil(remaining))
    return SessionBusy(f"Another request is working on this session; retry in {seconds} s.", retry_after=seconds)


def lost() -> SessionBusy:
    return SessionBusy(
        "Another request took this session over before this turn was stored; nothing of it was stored. "
        "Please retry.",
        retry_after=1,
    )


class Leases:
    def __init__(self, seconds: int, clock: Clock = time.time) -> None:
        self.seconds, self.clock = seconds, clock

    def take(self, objects: ObjectStore, key: str) -> Lease:
        """Hold the lease at ``key`` or raise SessionBusy (having written nothing else)."""
        owner, tried_takeover = uuid.uuid4().hex, False
        for _ in range(_ATTEMPTS):
            expires_at = self.clock() + self.seconds
            etag = objects.put_if_absent(key, _body(owner, expires_at))
            if etag:
                return Lease(key, owner, expires_at, etag)
            current = objects.get(key)
            if current is None:
                continue  # released between our put and our get
            holder = _parse(current.body)
            if holder["owner"] == owner:  # a retried put of ours had succeeded after all
                return Lease(key, owner, holder["expires_at"], current.etag, taken_over=tried_takeover)
            remaining = holder["expires_at"] - self.clock()
            if remaining > 0:
                raise busy(remaining)
            tried_takeover = True
            etag = objects.put_if_match(key, _body(owner, expires_at), current.etag)
            if etag:
                logger.warning("took over an expired session lease %s", key)
                return Lease(key, owner, expires_at, etag, taken_over=True)
        raise busy(1)

    def confirm(self, objects: ObjectStore, lease: Lease) -> None:
        """Before committing: renew a lease close to expiry; if another request took it, give up."""
        if lease.expires_at - self.clock() > self.margin:
            return
        expires_at = self.clock() + self.seconds
        etag = objects.put_if_match(lease.key, _body(lease.owner, expires_at), lease.etag)
        if not etag:  # taken over; or our renewal landed and its retry was refused: ours, then
            current = objects.get(lease.key)
            if current is None or _parse(current.body)["owner"] != lease.owner:
                raise lost()
            expires_at, etag = _parse(current.body)["expires_at"], current.etag
        lease.expires_at, lease.etag = expires_at, etag

    def release(self, objects: ObjectStore, lease: Lease) -> None:
        """Never raises: the turn's outcome is already decided; a lease left behind just expires."""
        try:
            objects.delete_if_match(lease.key, lease.etag)
        except Exception as error:  # noqa: BLE001 (a failed release must not fail the turn)
            logger.warning("could not release session lease: %s: %s", type(error).__name__, error)

    @property
    def margin(self) -> float:
        """Time a commit may take after confirm: generous next to S3 latencies, small next to the lease."""
        return min(10.0, self.seconds / 2)


def _body(owner: str, expires_at: float) -> bytes:
    return json.dumps({"owner": owner, "expires_at": expires_at}).encode()


def _parse(raw: bytes) -> dict[str, Any]:
    """A lease we cannot read counts as expired, so garbage never blocks a session for good."""
    try:
        data = json.loads(raw)
        return {"owner": str(data["owner"]), "expires_at": float(data["expires_at"])}
    except (ValueError, KeyError, TypeError):
        return {"owner": "", "expires_at": 0.0}
