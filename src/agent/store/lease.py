"""Leases: one turn at a time per session, across Lambda containers, without a lock server.

A lease is a small JSON object ``{"owner", "expires_at", "ends_by"}`` beside the session's folder.
Whoever creates it holds the session until ``expires_at``; an expired lease may be taken over, so a
holder that crashed or timed out blocks the session for at most ``seconds``. ``ends_by`` is when the
holder's invocation ends at the latest (its deadline): until then a refused request is told to
retry soon (the turn is running and releases the lease as it ends); past it the holder has died
without releasing, and the refused request is told the lease's expiry. Every step is a
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

from ..deadline import Deadline
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
    ends_by: float | None = None  # when the holder's invocation ends at the latest (None: unbounded)


# A refused request's wait while the holder's turn may still be running: turns release the lease
# as they end, so a short wait usually finds the session free.
RUNNING_RETRY_SECONDS = 2


def busy(remaining: float) -> SessionBusy:
    seconds = max(1, math.ceil(remaining))
    return SessionBusy(f"Another request is working on this session; retry in {seconds} s.", retry_after=seconds)


def busy_for(holder: dict[str, Any], now: float) -> SessionBusy:
    """The refusal for a lease held by ``holder``: a short wait while its turn may be running, the
    lease's expiry once its invocation has certainly ended (it died without releasing)."""
    ends_by, expires_at = holder["ends_by"], holder["expires_at"]
    if ends_by is None:  # an unbounded holder (or a lease written before ends_by): its expiry is all we know
        return busy(expires_at - now)
    if now < ends_by:
        return busy(min(expires_at - now, ends_by - now, RUNNING_RETRY_SECONDS))
    seconds = max(1, math.ceil(expires_at - now))
    return SessionBusy(f"A request that held this session stopped without releasing it; the session is free again "
                       f"in {seconds} s.", retry_after=seconds)


def lost() -> SessionBusy:
    return SessionBusy(
        "Another request took this session over before this turn was stored; nothing of it was stored. "
        "Please retry.",
        retry_after=1,
    )


class Leases:
    def __init__(self, seconds: int, clock: Clock = time.time) -> None:
        self.seconds, self.clock = seconds, clock

    def create(self, objects: ObjectStore, key: str, owner: str, deadline: Deadline | None = None) -> Lease | None:
        """The lease if it was free (one put_if_absent, sent with the turn's reads), else None:
        then ``take`` with the same ``owner`` (a retried put of ours may have landed after all)."""
        ends_by = self._ends_by(deadline)
        expires_at = self.clock() + self.seconds
        etag = objects.put_if_absent(key, _body(owner, expires_at, ends_by))
        return Lease(key, owner, expires_at, etag, ends_by=ends_by) if etag else None

    def _ends_by(self, deadline: Deadline | None) -> float | None:
        left = deadline.remaining() if deadline is not None else math.inf
        return self.clock() + left if math.isfinite(left) else None

    def take(self, objects: ObjectStore, key: str, deadline: Deadline | None = None, owner: str | None = None) -> Lease:
        """Hold the lease at ``key`` or raise SessionBusy (having written nothing else). ``deadline``:
        the holder's, so that others can tell a running holder from a dead one."""
        owner, tried_takeover = owner or uuid.uuid4().hex, False
        left = deadline.remaining() if deadline is not None else math.inf
        ends_by = self.clock() + left if math.isfinite(left) else None
        for _ in range(_ATTEMPTS):
            expires_at = self.clock() + self.seconds
            etag = objects.put_if_absent(key, _body(owner, expires_at, ends_by))
            if etag:
                return Lease(key, owner, expires_at, etag, ends_by=ends_by)
            current = objects.get(key)
            if current is None:
                continue  # released between our put and our get
            holder = _parse(current.body)
            if holder["owner"] == owner:  # a retried put of ours had succeeded after all
                return Lease(key, owner, holder["expires_at"], current.etag, taken_over=tried_takeover, ends_by=ends_by)
            if holder["expires_at"] > self.clock():
                raise busy_for(holder, self.clock())
            tried_takeover = True
            etag = objects.put_if_match(key, _body(owner, expires_at, ends_by), current.etag)
            if etag:
                logger.warning("took over an expired session lease %s", key)
                return Lease(key, owner, expires_at, etag, taken_over=True, ends_by=ends_by)
        raise busy(1)

    def confirm(self, objects: ObjectStore, lease: Lease) -> None:
        """Before committing: renew a lease close to expiry; if another request took it, give up."""
        if lease.expires_at - self.clock() > self.margin:
            return
        expires_at = self.clock() + self.seconds
        etag = objects.put_if_match(lease.key, _body(lease.owner, expires_at, lease.ends_by), lease.etag)
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

    def leave_for_repair(self, objects: ObjectStore, lease: Lease) -> None:
        """Instead of releasing: an expired lease, so the next request takes it over at once and
        repairs what this turn's commit left unwritten (TurnRepository.repair). Never raises: a
        lease left as it is expires too, later."""
        try:
            objects.put_if_match(lease.key, _body(lease.owner, 0.0, 0.0), lease.etag)
        except Exception as error:  # noqa: BLE001 (the turn is stored; its lease just expires)
            logger.warning("could not mark session lease for repair: %s: %s", type(error).__name__, error)

    @property
    def margin(self) -> float:
        """Time a commit may take after confirm: generous next to S3 latencies, small next to the lease."""
        return min(10.0, self.seconds / 2)


def _body(owner: str, expires_at: float, ends_by: float | None) -> bytes:
    return json.dumps({"owner": owner, "expires_at": expires_at, "ends_by": ends_by}).encode()


def _parse(raw: bytes) -> dict[str, Any]:
    """A lease we cannot read counts as expired, so garbage never blocks a session for good. One
    without ``ends_by`` (an unbounded holder, or written before it existed) is taken as running."""
    try:
        data = json.loads(raw)
        ends_by = data.get("ends_by")
        return {"owner": str(data["owner"]), "expires_at": float(data["expires_at"]),
                "ends_by": None if ends_by is None else float(ends_by)}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"owner": "", "expires_at": 0.0, "ends_by": None}
