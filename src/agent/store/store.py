"""SessionStore: the four things the agent asks of storage -- a turn, the history, delete, expiry."""

import logging
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator, Protocol

from strands.session.session_manager import SessionManager
from strands.types.session import SessionMessage

from ..errors import SessionBusy, SessionNotFound
from ..settings import Settings
from .atomic import AtomicTurn
from .failures import store_errors
from .lease import Lease
from .naming import SessionName

logger = logging.getLogger(__name__)

AGENT_ID = "default"  # Strands' default agent id: the one agent of each session


class Leases(Protocol):
    def acquire(self, where: str) -> Lease: ...
    def confirm(self, lease: Lease) -> None: ...
    def release(self, lease: Lease) -> None: ...


class Backend(Protocol):
    leases: Leases

    def lease_key(self, name: SessionName) -> str: ...
    def manager(self, name: SessionName, open_session: bool = True, agent_id: str | None = None) -> AtomicTurn: ...
    def session_objects(self, name: SessionName) -> list[tuple[str, datetime]]: ...
    def delete_session(self, name: SessionName) -> bool: ...
    def activity(self, start_after: str | None = None) -> Iterator[tuple[SessionName, datetime, bool, str]]: ...
    def sweep_cursor(self) -> str | None: ...
    def save_sweep_cursor(self, key: str | None) -> None: ...


class SessionStore:
    """Sessions keyed by (caller, session_id), on S3 or files; see the package docstring for guarantees."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings

    @contextmanager
    def turn(self, caller: str, session_id: str) -> Iterator[SessionManager]:
        """Hold the session's lease for the block; a clean exit commits the turn, an exception stores nothing."""
        name = SessionName.of(caller, session_id)
        with self._leased(name) as lease:
            with store_errors("opening a session"):
                if lease.taken_over:
                    self.backend.manager(name, open_session=False).remove_leftovers(AGENT_ID)
                manager = self.backend.manager(name, agent_id=AGENT_ID)
            yield manager  # type: ignore[misc]
            with store_errors("committing a turn"):
                self.backend.leases.confirm(lease)
                manager.commit()

    def history(self, caller: str, session_id: str) -> list[SessionMessage]:
        """Every stored message, oldest first. Reads only; no lease (a commit writes agent.json last)."""
        name = SessionName.of(caller, session_id)
        with store_errors("reading a history"):
            messages = self.backend.manager(name, open_session=False).committed_messages(AGENT_ID)
        if messages is None:
            raise SessionNotFound(f"Session {session_id} does not exist.")
        return messages

    def delete(self, caller: str, session_id: str) -> None:
        """Delete the whole session under its lease (SessionBusy while a turn runs)."""
        name = SessionName.of(caller, session_id)
        with self._leased(name):
            with store_errors("deleting a session"):
                deleted = self.backend.delete_session(name)
        if not deleted:
            raise SessionNotFound(f"Session {session_id} does not exist.")

    def expire_idle(self, now: datetime, seconds_left: float | None = None) -> list[str]:
        """Delete whole sessions idle (newest object) longer than the TTL; skip busy ones.

        Returns ``caller/session_id`` of each deleted session. Each candidate is re-checked under its
        lease, so a turn that starts during the sweep either blocks the deletion or follows it.

        With ``seconds_left`` (an invocation's remaining time) a large store is swept over several
        runs: the listing stops at half the time and the next run resumes after the last key
        listed (a cursor object); deleting stops when the time is up, the next run listing the same
        range again. Every run deletes at least one idle session it finds, so each run progresses.
        """
        now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
        cutoff = now - timedelta(days=self.settings.session_ttl_days)
        deadline = None if seconds_left is None else time.monotonic() + seconds_left
        with store_errors("listing sessions"):
            cursor = self.backend.sweep_cursor()
            newest, last_key = self._newest_activity(cursor, deadline)
        deleted, finished = [], True
        for name in sorted(newest, key=lambda n: (n.segment, n.session_id)):
            if deleted and deadline is not None and time.monotonic() > deadline:
                finished = False
                break
            if newest[name] < cutoff and self._expire(name, cutoff):
                deleted.append(name.label)
        with store_errors("saving the sweep cursor"):
            self.backend.save_sweep_cursor(last_key if finished else cursor)
        return deleted

    def _newest_activity(self, cursor: str | None,
                         deadline: float | None) -> tuple[dict[SessionName, datetime], str | None]:
        """Each session's newest object after ``cursor``, and the last key listed (None: the end)."""
        newest: dict[SessionName, datetime] = {}
        halfway = None if deadline is None else (time.monotonic() + deadline) / 2
        for name, modified, _, key in self.backend.activity(start_after=cursor):
            newest[name] = max(modified, newest.get(name, modified))
            if halfway is not None and time.monotonic() > halfway:
                return newest, key
        return newest, None

    def _expire(self, name: SessionName, cutoff: datetime) -> bool:
        try:
            with self._leased(name):
                with store_errors("expiring a session"):
                    objects = self.backend.session_objects(name)
                    if not objects or max(modified for _, modified in objects) >= cutoff:
                        return False  # only a stale lease (now released), or used since the listing
                    self.backend.delete_session(name)
        except SessionBusy:
            return False
        logger.info("expired idle session %s", name.label)
        return True

    @contextmanager
    def _leased(self, name: SessionName) -> Iterator[Lease]:
        with store_errors("taking a session lease"):
            lease = self.backend.leases.acquire(self.backend.lease_key(name))
        try:
            yield lease
        finally:
            self.backend.leases.release(lease)
