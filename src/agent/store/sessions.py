"""SessionStore: what the agent asks of storage -- a turn, the history, delete, expiry, and the
small documents around sessions (records, caller documents, connections)."""

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strands.session.repository_session_manager import RepositorySessionManager
from strands.types.session import SessionMessage

from ..deadline import Deadline
from ..errors import AgentError, InvalidRequest, SessionBusy, SessionNotFound
from ..settings import Settings
from . import catalog
from . import keys as layout
from .catalog import SessionPage
from .documents import UNREAD, Change, Doc, SessionRecords, change_document, decode, encode
from .failures import SessionDeleted, store_errors
from .keys import SessionKeys
from .lease import Clock, Lease, Leases
from .objects import ObjectStore, StoredObject
from .repository import LISTING, VOID, TurnRepository
from .session_list import checked_title as catalog_title
from .session_list import titles_key
from .together import Outcome, together

logger = logging.getLogger(__name__)
AGENT_ID = "default"  # Strands' default agent id: the one agent of each session
RECORD_TAGGING = "kind=record"  # template.yaml's lifecycle rule expires objects with this tag
RELEASE_SECONDS = 1.0  # a release gets this long of its own, even past the turn's deadline
# Announcing a turn and queueing it takes a few requests; a holder that died blocks no longer.
QUEUEING_SECONDS = 10
QUEUEING_POLL_SECONDS = 0.05
# The record a turn of a session needs to run (see SessionStore.only_while_recorded): (folder, key).
_REQUIRED_RECORD: ContextVar[tuple[str, str] | None] = ContextVar("required_record", default=None)


@dataclass
class Turn:
    session_manager: RepositorySessionManager  # a plain Strands one, over this turn's repository
    caller_document: Doc | None  # as read at the start of the turn (None: absent or not asked)
    _document_key: str | None = field(default=None, repr=False)
    _document_read: Any = field(default=UNREAD, repr=False)
    _changes: list[Change] = field(default_factory=list, repr=False)
    _before_release: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _once_stored: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def once_stored(self, work: Callable[[], None], before_release: bool = False) -> None:
        """Run ``work`` once the turn is committed, beside the lease's release, the list entry and
        the caller document's changes (one round trip for all). ``before_release``: the lease is
        released only once it has ended (a reply frame: the session is not free before it is out).
        The turn is stored whatever ``work`` does: its failure is logged, never the turn's."""
        (self._before_release if before_release else self._once_stored).append(work)

    def change_caller_document(self, change: Change) -> None:
        """Queue a change, applied once the turn is committed, with CAS and retries, so concurrent
        turns of one caller (different sessions) never lose each other's change."""
        if self._document_key is None:
            raise ValueError("name the caller document when opening the turn: turn(..., caller_document=name)")
        self._changes.append(change)

    def _apply_changes(self, objects: ObjectStore) -> None:
        if self._changes and self._document_key is not None:
            changes = list(self._changes)

            def all_of(document: Doc | None) -> Doc | None:
                for change in changes:
                    document = change(document)
                return document

            change_document(objects, self._document_key, all_of, self._document_read)


@dataclass(frozen=True)
class HistorySlice:
    messages: list[SessionMessage]
    total: int


def _each_logged(works: Sequence[Callable[[], None]]) -> None:
    for work in works:
        try:
            work()
        except Exception:  # noqa: BLE001 (the turn is stored; what failed after it is logged)
            logger.warning("the turn was stored but work after it failed", exc_info=True)


class SessionStore:
    """Sessions keyed by (caller, session_id) over an ObjectStore; see the package docstring."""

    def __init__(self, objects: ObjectStore, settings: Settings, clock: Clock = time.time) -> None:
        self.objects = objects
        self.settings = settings
        self.leases = Leases(settings.lease_seconds, clock)
        self.queueing_leases = Leases(QUEUEING_SECONDS, clock)
        self.clock = clock

    @contextmanager
    def turn(self, caller: str, session_id: str, deadline: Deadline, caller_document: str | None = None,
             beside: Sequence[Callable[[], None]] = ()) -> Iterator[Turn]:
        """Hold the session's lease (SessionBusy), read session.json + agent.json (+ the caller
        document, if named) in one concurrent round trip, yield a Turn. Clean exit: commit within
        the deadline. Exception: nothing stored. The lease is always released.

        ``beside``: the caller's own requests for the turn (its ledger record, the budget), sent in
        the same round trip as the lease and the reads; one that raises ends the turn there, with
        its error, before anything is yielded."""
        keys = SessionKeys.of(caller, session_id)
        document_key = layout.caller_document(caller, caller_document) if caller_document else None
        objects = self.objects.within(deadline)
        required = _REQUIRED_RECORD.get()
        required_key = required[1] if required and required[0] == keys.folder else None
        with store_errors("opening a session"):
            lease, (repository, document, record) = self._take_and_open(keys, objects, deadline, document_key,
                                                                         required_key, beside)
        repaired = True
        try:
            with store_errors("opening a session"):
                if required_key and record is None:
                    raise SessionDeleted()  # under the lease: no DELETE can come between this and the commit
                if lease.taken_over:
                    repository.repair(AGENT_ID)
                turn = Turn(RepositorySessionManager(session_id, session_repository=repository),
                            decode(document), document_key, document)
                catalog.prepare_listing(repository, keys, lambda: int(self.clock() * 1000))
            yield turn
            with store_errors("committing a turn"):
                self.leases.confirm(objects, lease)
                repaired = repository.commit(deadline)
        except BaseException:
            self.leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), lease)
            raise
        # Stored. The lease's release, the session's list entry, the caller document's changes and
        # the caller's own work (its record, its reply frame) are independent: one round trip. A
        # failure in any must not call the turn failed.
        def release() -> None:
            _each_logged(turn._before_release)
            self._end_lease(lease, repaired)

        together(release,
                 lambda: self._list_turn(objects, keys, repository),
                 lambda: self._apply(turn, objects, document_key),
                 *(lambda work=work: _each_logged([work]) for work in turn._once_stored))

    def _end_lease(self, lease: Lease, repaired: bool) -> None:
        objects = self.objects.within(Deadline.after(RELEASE_SECONDS))
        if repaired:
            self.leases.release(objects, lease)
        else:
            self.leases.leave_for_repair(objects, lease)

    @staticmethod
    def _apply(turn: Turn, objects: ObjectStore, document_key: str | None) -> None:
        try:
            turn._apply_changes(objects)
        except Exception:  # noqa: BLE001
            logger.warning("the turn was stored but its change to %s was not", document_key, exc_info=True)

    def _take_and_open(self, keys: SessionKeys, objects: ObjectStore, deadline: Deadline, document_key: str | None,
                       required_key: str | None, beside: Sequence[Callable[[], None]] = ()
                       ) -> tuple[Lease, tuple[TurnRepository, StoredObject | None, StoredObject | None]]:
        """The lease, the session's reads and ``beside`` in one round trip. Reads that were not made
        under our lease (it was held, or taken over) are discarded and made again once it is held.
        A new session's first queued turn reads its record again under the lease: read before, a
        DELETE could have come between the read and the lease and the commit would create the
        session anew. The first of ``beside`` to fail ends it (the lease released, if it was taken)."""
        owner = uuid.uuid4().hex
        taken, opened, *done = together(lambda: self.leases.create(objects, keys.lease, owner, deadline),
                                        lambda: self._open_turn(objects, keys, document_key, required_key),
                                        *beside)
        failed = next((outcome for outcome in done if outcome.error is not None), None)
        if failed is not None:
            self._let_go(keys, objects, owner, taken)
            failed.result()
        lease = taken.result()
        if lease is None:
            lease = self.leases.take(objects, keys.lease, deadline, owner=owner)
            try:
                return lease, self._open_turn(objects, keys, document_key, required_key)
            except BaseException:
                self.leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), lease)
                raise
        try:
            repository, document, record = opened.result()
            if required_key and AGENT_ID in repository.agents and repository.agents[AGENT_ID].etag is None:
                record = objects.get(required_key)
            return lease, (repository, document, record)
        except BaseException:
            self.leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), lease)
            raise

    def _let_go(self, keys: SessionKeys, objects: ObjectStore, owner: str, taken: Outcome) -> None:
        """A turn ended in its opening: the lease released if ours. "Held" may be ours too: a
        create whose answer was lost and whose retry was refused; the lease then names us."""
        lease = taken.value if taken.error is None else None
        if lease is None and taken.error is None:
            with suppress(AgentError):
                lease = self.leases.take(objects, keys.lease, Deadline.after(RELEASE_SECONDS), owner=owner)
        if lease is not None:
            self.leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), lease)

    def _open_turn(self, objects: ObjectStore, keys: SessionKeys, document_key: str | None,
                   record_key: str | None) -> tuple[TurnRepository, StoredObject | None, StoredObject | None]:
        """agent.json (and a caller document, a record) in one round trip; session.json only for a
        session that agent.json does not yet list (written before the list: its creation time)."""
        extra = [key for key in (document_key, record_key) if key]
        agent, *found = objects.get_many([keys.agent(AGENT_ID), *extra])
        named = dict(zip(extra, found, strict=True))
        session = None
        if agent is not None and not (decode(agent) or {}).get(LISTING) and not (decode(agent) or {}).get(VOID):
            session = objects.get(keys.session)
        repository = TurnRepository(objects, keys, session, {AGENT_ID: agent})
        return repository, named.get(document_key or ""), named.get(record_key or "")

    def history(self, caller: str, session_id: str, start: int, limit: int, deadline: Deadline) -> HistorySlice:
        """Committed messages with index >= start, at most ``limit``, oldest first, and the total.
        No lease: agent.json is the commit point. Messages in its snapshot cost no request."""
        if start < 0 or limit < 0:
            raise InvalidRequest("start and limit must not be negative")
        keys = SessionKeys.of(caller, session_id)
        with store_errors("reading a history"):
            repository, _, _ = self._open(self.objects.within(deadline), keys)
            if repository.read_session(session_id) is None:
                raise SessionNotFound(f"Session {session_id} does not exist.")
            total = repository.message_count(AGENT_ID)
            return HistorySlice(repository.list_messages(session_id, AGENT_ID, limit=limit, offset=start), total)

    def agent_state(self, caller: str, session_id: str, deadline: Deadline) -> dict[str, Any]:
        """The agent's state (Strands' agent.state) as the last committed turn stored it, from
        agent.json; no lease. SessionNotFound when the session does not exist."""
        keys = SessionKeys.of(caller, session_id)
        with store_errors("reading a session's state"):
            repository, _, _ = self._open(self.objects.within(deadline), keys)
            if repository.read_session(session_id) is None:
                raise SessionNotFound(f"Session {session_id} does not exist.")
            agent = repository.read_agent(session_id, AGENT_ID)
        return dict(agent.state) if agent is not None else {}

    def delete(self, caller: str, session_id: str, deadline: Deadline) -> None:
        """Delete every object in the session's folder under its lease (SessionBusy while a turn runs)."""
        keys = SessionKeys.of(caller, session_id)
        objects = self.objects.within(deadline)
        with self.leased(keys, objects, deadline), store_errors("deleting a session"):
            agent = decode(objects.get(keys.agent(AGENT_ID)))
            found = [o.key for o in objects.list(keys.folder)]
            objects.delete(found + catalog.listing_keys(agent, keys))
        if not found:
            raise SessionNotFound(f"Session {session_id} does not exist.")
        with store_errors("forgetting a session's title"):
            catalog.set_title(objects, titles_key(keys.segment), session_id, None)

    # ---- the session list (catalog.py, session_list.py) --------------------------------------
    def list_sessions(self, caller: str, limit: int, cursor: str | None, deadline: Deadline) -> SessionPage:
        """The caller's sessions, most recent activity first: one LIST and one GET a page."""
        objects = self.objects.within(deadline)
        with store_errors("listing sessions"):
            page, titles = catalog.read_page(objects, caller, limit, cursor)
            if catalog.is_indexed(titles):
                return page
            catalog.reindex_caller(self, objects, layout.caller_segment(caller))  # once per caller
            return catalog.read_page(objects, caller, limit, cursor)[0]

    def session_summary(self, caller: str, session_id: str, deadline: Deadline) -> dict[str, Any]:
        keys = SessionKeys.of(caller, session_id)
        with store_errors("reading a session"):
            return catalog.summary_of(self.objects.within(deadline), keys, caller)

    def rename(self, caller: str, session_id: str, title: str, deadline: Deadline) -> dict[str, Any]:
        title = catalog_title(title)
        keys = SessionKeys.of(caller, session_id)
        objects = self.objects.within(deadline)
        with store_errors("renaming a session"):
            if objects.get(keys.session) is None:
                raise SessionNotFound(f"Session {session_id} does not exist.")
            catalog.set_title(objects, titles_key(keys.segment), session_id, title)
            return catalog.summary_of(objects, keys, caller)

    def reindex(self, deadline: Deadline) -> int:
        """List every session written before the list existed (make reindex); the number listed."""
        objects = self.objects.within(deadline)
        with store_errors("reindexing sessions"):
            return sum(catalog.reindex_caller(self, objects, segment) for segment in catalog.callers(objects))

    def _list_turn(self, objects: ObjectStore, keys: SessionKeys, repository: TurnRepository) -> None:
        # After the commit point, like the caller document's changes: the turn is stored.
        try:
            catalog.write_listing(objects, keys, repository)
        except Exception:  # noqa: BLE001
            logger.warning("the turn was stored but its session list entry was not", exc_info=True)

    @contextmanager
    def queueing(self, caller: str, session_id: str, deadline: Deadline,
                 beside: Sequence[Callable[[], None]] = ()) -> Iterator[Deadline]:
        """One turn at a time is announced and queued per session: a turn sent once its
        predecessor was announced is queued after it. Waits for the holder rather than refusing.
        Yields the deadline the block must keep to, so that its lease never runs out under it.
        ``beside`` (the turn's record) goes in the first attempt's round trip; the first of them
        that raises ends it there, with the lease released."""
        keys = SessionKeys.of(caller, session_id)
        objects = self.objects.within(deadline)

        def take() -> Lease:
            with store_errors("queueing a turn"):
                return self.queueing_leases.take(objects, keys.queueing)

        taken, *done = together(take, *beside)
        failed = next((outcome for outcome in done if outcome.error is not None), None)
        if failed is not None:
            if taken.error is None:
                self.queueing_leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), taken.value)
            failed.result()
        lease: Lease | None = taken.value
        if taken.error is not None and not isinstance(taken.error, SessionBusy):
            taken.result()
        while lease is None:  # another turn of the session is being announced: wait for it
            if deadline.remaining() < QUEUEING_POLL_SECONDS * 20:
                taken.result()
            time.sleep(QUEUEING_POLL_SECONDS)
            try:
                lease = take()
            except SessionBusy:
                continue
        try:
            yield deadline.at_most(QUEUEING_SECONDS - RELEASE_SECONDS * 2)
        finally:
            self.queueing_leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), lease)

    def expire_idle(self, now: datetime, deadline: Deadline) -> list[str]:
        """Delete whole idle sessions (and orphaned documents, old connections); see expiry.py."""
        from .expiry import expire_idle

        return expire_idle(self, now, deadline)

    def records(self, caller: str, session_id: str, deadline: Deadline) -> SessionRecords:
        # Tagged, so that the bucket's lifecycle rule removes them once they are past any use.
        return SessionRecords(self.objects.within(deadline).tagged(RECORD_TAGGING), SessionKeys.of(caller, session_id))

    def caller_document(self, caller: str, name: str, deadline: Deadline) -> Doc | None:
        key = layout.caller_document(caller, name)
        with store_errors("reading a caller document"):
            return decode(self.objects.within(deadline).get(key))

    def change_caller_document(self, caller: str, name: str, change: Change, deadline: Deadline) -> Doc | None:
        """Read-modify-write with compare-and-swap, retried on conflict; None from ``change`` deletes."""
        key = layout.caller_document(caller, name)
        with store_errors("changing a caller document"):
            return change_document(self.objects.within(deadline), key, change)

    def bind_connection(self, connection_id: str, caller: str, deadline: Deadline) -> None:
        binding = {"caller": caller, "connected_at": datetime.now(UTC).isoformat()}
        with store_errors("binding a connection"):
            self.objects.within(deadline).put(layout.connection(connection_id), encode(binding))

    def connection_caller(self, connection_id: str, deadline: Deadline) -> str | None:
        with store_errors("reading a connection"):
            binding = decode(self.objects.within(deadline).get(layout.connection(connection_id)))
        return None if binding is None else str(binding["caller"])

    def unbind_connection(self, connection_id: str, deadline: Deadline) -> None:
        with store_errors("unbinding a connection"):
            self.objects.within(deadline).delete([layout.connection(connection_id)])

    def _open(self, objects: ObjectStore, keys: SessionKeys, document_key: str | None = None,
              record_key: str | None = None) -> tuple[TurnRepository, StoredObject | None, StoredObject | None]:
        """session.json, agent.json (and a caller document, a record), in one round trip."""
        extra = [key for key in (document_key, record_key) if key]
        session, agent, *found = objects.get_many([keys.session, keys.agent(AGENT_ID), *extra])
        named = dict(zip(extra, found, strict=True))
        repository = TurnRepository(objects, keys, session, {AGENT_ID: agent})
        return repository, named.get(document_key or ""), named.get(record_key or "")

    @contextmanager
    def only_while_recorded(self, caller: str, session_id: str, name: str) -> Iterator[None]:
        """Turns of this session started in the block run only while its record ``name`` exists
        (a queued turn and its ledger record). It is read under the session's lease, with the
        session's state (one round trip): a DELETE, which takes the same lease and removes the
        records, cancels the turn (SessionDeleted, nothing written) instead of being undone by it."""
        keys = SessionKeys.of(caller, session_id)
        token = _REQUIRED_RECORD.set((keys.folder, keys.record(name)))
        try:
            yield
        finally:
            _REQUIRED_RECORD.reset(token)

    @contextmanager
    def leased(self, keys: SessionKeys, objects: ObjectStore, deadline: Deadline | None = None) -> Iterator[Lease]:
        """Hold the session's lease for the block; released on every path, even past the deadline."""
        with store_errors("taking a session lease"):
            lease = self.leases.take(objects, keys.lease, deadline)
        try:
            yield lease
        finally:
            self.leases.release(self.objects.within(Deadline.after(RELEASE_SECONDS)), lease)
