"""SessionStore: what the agent asks of storage -- a turn, the history, delete, expiry."""

import time
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from strands.session.repository_session_manager import RepositorySessionManager
from strands.types.session import SessionMessage

from ..errors import SessionNotFound
from ..settings import Settings
from .failures import store_errors
from .keys import SessionKeys
from .lease import Clock, Lease, Leases
from .objects import ObjectStore
from .repository import TurnRepository

AGENT_ID = "default"  # Strands' default agent id: the one agent of each session


class SessionStore:
    """Sessions keyed by (caller, session_id) over an ObjectStore; see the package docstring."""

    def __init__(self, objects: ObjectStore, settings: Settings, clock: Clock = time.time) -> None:
        self.objects = objects
        self.settings = settings
        self.leases = Leases(settings.lease_seconds, clock)

    @contextmanager
    def turn(self, caller: str, session_id: str) -> Iterator[RepositorySessionManager]:
        """Hold the session's lease for the block; a clean exit commits the turn, an exception stores nothing."""
        keys = SessionKeys.of(caller, session_id)
        with self.leased(keys) as lease:
            with store_errors("opening a session"):
                repository = self._open(keys)
                if lease.taken_over:
                    self.objects.delete(repository.leftovers(AGENT_ID))
            yield RepositorySessionManager(session_id, session_repository=repository)
            with store_errors("committing a turn"):
                self.leases.confirm(self.objects, lease)
                repository.write_messages()
                repository.write_commit_point()

    def history(self, caller: str, session_id: str) -> list[SessionMessage]:
        """Every committed message, oldest first. Reads only; no lease (agent.json is the commit point)."""
        keys = SessionKeys.of(caller, session_id)
        with store_errors("reading a history"):
            repository = self._open(keys)
            if repository.read_session(session_id) is None:
                raise SessionNotFound(f"Session {session_id} does not exist.")
            count = repository.message_count(AGENT_ID)
            return repository.list_messages(session_id, AGENT_ID, limit=count)

    def delete(self, caller: str, session_id: str) -> None:
        """Delete the whole session under its lease (SessionBusy while a turn runs)."""
        keys = SessionKeys.of(caller, session_id)
        with self.leased(keys):
            with store_errors("deleting a session"):
                found = [o.key for o in self.objects.list(keys.folder)]
                self.objects.delete(found)
        if not found:
            raise SessionNotFound(f"Session {session_id} does not exist.")

    def expire_idle(self, now: datetime, seconds_left: float | None = None) -> list[str]:
        """Delete whole sessions idle longer than the TTL; see expiry.py."""
        from .expiry import expire_idle

        return expire_idle(self, now, seconds_left)

    def _open(self, keys: SessionKeys) -> TurnRepository:
        """session.json and agent.json, in one round trip."""
        session, agent = self.objects.get_many([keys.session, keys.agent(AGENT_ID)])
        return TurnRepository(self.objects, keys, session, {AGENT_ID: agent})

    @contextmanager
    def leased(self, keys: SessionKeys) -> Iterator[Lease]:
        with store_errors("taking a session lease"):
            lease = self.leases.take(self.objects, keys.lease)
        try:
            yield lease
        finally:
            self.leases.release(self.objects, lease)
