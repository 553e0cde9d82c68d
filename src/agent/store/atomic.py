"""Atomic turns over Strands' own session layout, with a window snapshot in agent.json.

Strands' repository managers write every message and agent update the moment it happens, and
restore a session by listing and reading one object per message. This mixin sits in front of
S3SessionManager / FileSessionManager and changes only *when* and *how much* is read and written:

- Writes of a turn (session, agent, messages) are buffered in memory; reads inside the turn see
  them. ``commit()`` flushes session.json (new sessions), then the messages, then agent.json, so
  agent.json is the commit point. A turn that raises, or dies, stores nothing.
- agent.json gets one extra key, ``_snapshot`` (SessionAgent.from_dict ignores unknown keys):
  ``{"message_count": N, "offset": k, "messages": [messages k..N-1]}``, where k is the conversation
  manager's ``removed_message_count`` -- exactly the messages Strands restores. A restore is then
  GET session.json + GET agent.json, whatever the length of the history.
- Messages at or beyond ``message_count`` are leftovers of a commit that died half-way: ignored on
  restore, overwritten by the next turn, and removed when an expired lease is taken over.

The key layout is Strands' own, so a stock S3SessionManager / FileSessionManager still reads the
session (an agent.json without ``_snapshot``, as they write it, is read the stock way).
"""

import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from strands.session.repository_session_manager import RepositorySessionManager
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, decode_bytes_values

from .failures import guarded

SNAPSHOT = "_snapshot"
Doc = dict[str, Any]
_MESSAGE_FIELDS = frozenset(inspect.signature(SessionMessage).parameters)


def to_session_message(data: Doc) -> SessionMessage:
    """SessionMessage.from_dict, minus its inspect.signature() per call (~1 ms; 40 per restore)."""
    return SessionMessage(**decode_bytes_values({k: v for k, v in data.items() if k in _MESSAGE_FIELDS}))


class AtomicTurn:
    """Mixin for a Strands repository session manager; the storage class supplies the primitives below."""

    # ---- storage primitives (S3 and file subclasses) ----------------------------------------
    def _session_key(self, session_id: str) -> str:
        raise NotImplementedError

    def _agent_key(self, session_id: str, agent_id: str) -> str:
        raise NotImplementedError

    # _get_message_path(session_id, agent_id, message_id) is Strands' own, on both storage classes.

    def _load(self, key: str) -> Doc | None:
        raise NotImplementedError

    def _save(self, key: str, data: Doc) -> None:
        raise NotImplementedError

    def _message_ids(self, session_id: str, agent_id: str) -> list[int]:
        raise NotImplementedError

    def _remove(self, keys: list[str]) -> None:
        raise NotImplementedError

    def _prepare(self, session_id: str, agent_id: str | None) -> None:
        """Create what must exist before writing (folders for files); nothing for S3."""

    def _save_many(self, items: list[tuple[str, Doc]]) -> None:
        for key, data in items:
            self._save(key, data)

    # ---- lifecycle ---------------------------------------------------------------------------
    def _start(self, session_id: str, open_session: bool, agent_id: str | None = None) -> None:
        """Open the session the way RepositorySessionManager does (reading, or buffering a new one).

        With ``agent_id``, session.json and that agent's agent.json are read at once, in one round
        trip instead of two (RepositorySessionManager reads them one after the other).
        """
        self._new_session: Doc | None = None
        self._prefetched: tuple[Doc | None] | None = None
        self._stored: dict[str, Doc | None] = {}  # agent.json as read at the start of the turn
        self._known: dict[str, dict[int, Doc]] = {}  # stored messages read during the turn
        self._pending_agents: dict[str, Doc] = {}
        self._pending_messages: dict[str, dict[int, Doc]] = {}
        self.session_id = session_id
        if open_session and agent_id is not None:
            self._prefetch(session_id, agent_id)
        if open_session:
            RepositorySessionManager.__init__(self, session_id=session_id, session_repository=self)  # type: ignore[arg-type]

    @guarded("reading a session")
    def _prefetch(self, session_id: str, agent_id: str) -> None:
        session, agent = self._load_many([self._session_key(session_id), self._agent_key(session_id, agent_id)])
        self._prefetched = (session,)
        if session is not None:
            self._remember_agent(agent_id, agent)

    @guarded("committing a turn")
    def commit(self) -> None:
        """Flush the turn: session.json (if new), messages, then agent.json -- the commit point."""
        session_id = self.session_id
        if self._new_session is not None:
            self._prepare(session_id, None)
            self._save(self._session_key(session_id), self._new_session)
        agent_ids = sorted(set(self._pending_agents) | set(self._pending_messages))
        messages = []
        for agent_id in agent_ids:
            self._prepare(session_id, agent_id)
            for message_id, data in sorted(self._pending_messages.get(agent_id, {}).items()):
                messages.append((self._get_message_path(session_id, agent_id, message_id), data))
        self._save_many(messages)
        for agent_id in agent_ids:
            self._save(self._agent_key(session_id, agent_id), self._agent_document(agent_id))
        self._start(session_id, open_session=False)

    def _agent_document(self, agent_id: str) -> Doc:
        agent = self._pending_agents.get(agent_id) or self._stored_agent(self.session_id, agent_id)
        if agent is None:
            raise SessionException(f"agent {agent_id} has messages but no agent record")
        document = {k: v for k, v in agent.items() if k != SNAPSHOT}
        snapshot = self._next_snapshot(agent_id, document)
        if snapshot is not None:
            document[SNAPSHOT] = snapshot
        return document

    def _next_snapshot(self, agent_id: str, agent: Doc) -> Doc | None:
        """The window the next restore needs; None (read the stock way next time) if we lack a message."""
        known = {**self._known.get(agent_id, {}), **self._pending_messages.get(agent_id, {})}
        count = max([self._message_count(agent_id), *(i + 1 for i in known)])
        offset = int((agent.get("conversation_manager_state") or {}).get("removed_message_count", 0))
        window = range(min(offset, count), count)
        if any(i not in known for i in window):
            return None
        return {"message_count": count, "offset": window.start, "messages": [known[i] for i in window]}

    # ---- what is committed -------------------------------------------------------------------
    def _stored_agent(self, session_id: str, agent_id: str) -> Doc | None:
        if agent_id not in self._stored:
            # A session new in this turn has no stored agent: skip the request.
            new = self._new_session is not None
            self._remember_agent(agent_id, None if new else self._load(self._agent_key(session_id, agent_id)))
        return self._stored[agent_id]

    def _remember_agent(self, agent_id: str, data: Doc | None) -> None:
        self._stored[agent_id] = data
        snapshot = self._snapshot(agent_id)
        if snapshot is not None:
            window = dict(enumerate(snapshot["messages"], start=snapshot["offset"]))
            self._known.setdefault(agent_id, {}).update(window)

    def _snapshot(self, agent_id: str) -> Doc | None:
        stored = self._stored.get(agent_id) or {}
        snapshot = stored.get(SNAPSHOT)
        return snapshot if isinstance(snapshot, dict) and "message_count" in snapshot else None

    def _message_count(self, agent_id: str) -> int:
        """Committed messages (ids 0..count-1); for a stock-written agent, what was listed."""
        snapshot = self._snapshot(agent_id)
        if snapshot is not None:
            return int(snapshot["message_count"])
        return max((i + 1 for i in self._known.get(agent_id, {})), default=0)

    def committed_messages(self, agent_id: str) -> list[SessionMessage] | None:
        """Every committed message, oldest first; None when the session does not exist. Reads only."""
        if self.read_session(self.session_id) is None:
            return None
        if self._stored_agent(self.session_id, agent_id) is None:
            return []
        if self._snapshot(agent_id) is None:
            return self.list_messages(self.session_id, agent_id)
        known = self._known.get(agent_id, {})
        missing = [i for i in range(self._message_count(agent_id)) if i not in known]
        loaded = self._load_many([self._get_message_path(self.session_id, agent_id, i) for i in missing])
        known.update({i: data for i, data in zip(missing, loaded) if data is not None})
        return [to_session_message(known[i]) for i in sorted(known) if i < self._message_count(agent_id)]

    def _load_many(self, keys: list[str]) -> list[Doc | None]:
        return [self._load(key) for key in keys]

    @guarded("cleaning up after an interrupted turn")
    def remove_leftovers(self, agent_id: str) -> int:
        """Delete messages beyond the committed count (a commit that died after writing some)."""
        if self.read_session(self.session_id) is None:
            count = 0
        else:
            stored = self._stored_agent(self.session_id, agent_id)
            if stored is not None and self._snapshot(agent_id) is None:
                return 0  # written by a stock manager: every message counts
            count = self._message_count(agent_id) if stored is not None else 0
        extra = [i for i in self._message_ids(self.session_id, agent_id) if i >= count]
        self._remove([self._get_message_path(self.session_id, agent_id, i) for i in extra])
        return len(extra)

    # ---- SessionRepository: buffered writes, reads that see them -----------------------------
    def create_session(self, session: Session, **kwargs: Any) -> Session:
        self._new_session = session.to_dict()
        return session

    @guarded("reading a session")
    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        if self._new_session is not None:
            return Session.from_dict(self._new_session)
        data = self._prefetched[0] if self._prefetched else self._load(self._session_key(session_id))
        return None if data is None else Session.from_dict(data)

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        self._pending_agents[session_agent.agent_id] = session_agent.to_dict()

    @guarded("reading an agent")
    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        data = self._pending_agents.get(agent_id) or self._stored_agent(session_id, agent_id)
        return None if data is None else SessionAgent.from_dict(data)

    @guarded("reading an agent")
    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        agent_id = session_agent.agent_id
        previous = self._pending_agents.get(agent_id) or self._stored_agent(session_id, agent_id)
        if previous is None:
            raise SessionException(f"Agent {agent_id} in session {session_id} does not exist")
        session_agent.created_at = previous["created_at"]
        self._pending_agents[agent_id] = session_agent.to_dict()

    def create_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        # to_dict() copies now: the agent may still change this message object later in the turn.
        self._pending_messages.setdefault(agent_id, {})[session_message.message_id] = session_message.to_dict()

    @guarded("reading a message")
    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        data = self._pending_messages.get(agent_id, {}).get(message_id)
        if data is None:
            self._stored_agent(session_id, agent_id)
            data = self._known.get(agent_id, {}).get(message_id)
        if data is None and message_id < self._message_count(agent_id):
            data = self._load(self._get_message_path(session_id, agent_id, message_id))
        return None if data is None else to_session_message(data)

    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        previous = self.read_message(session_id, agent_id, session_message.message_id)
        if previous is None:
            raise SessionException(f"Message {session_message.message_id} does not exist")
        session_message.created_at = previous.created_at
        self._pending_messages.setdefault(agent_id, {})[session_message.message_id] = session_message.to_dict()

    @guarded("reading messages")
    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        """From the snapshot when it covers ``offset`` (no request at all); the stock way otherwise."""
        stored = self._stored_agent(session_id, agent_id)
        snapshot = self._snapshot(agent_id)
        known = self._known.setdefault(agent_id, {})
        if stored is None:
            ids = []  # the agent is new in this turn: all its messages are pending
        elif snapshot is not None and offset >= snapshot["offset"]:
            ids = [i for i in range(offset, snapshot["message_count"]) if i in known]
        else:
            stock = super().list_messages(session_id, agent_id, offset=offset)  # type: ignore[misc]
            count = snapshot["message_count"] if snapshot is not None else None
            listed = {m.message_id: m.to_dict() for m in stock if count is None or m.message_id < count}
            known.update(listed)
            ids = sorted(listed)
        pending = self._pending_messages.get(agent_id, {})
        merged = {**{i: known[i] for i in ids}, **{i: d for i, d in pending.items() if i >= offset}}
        chosen = sorted(merged)[:limit] if limit is not None else sorted(merged)
        return [to_session_message(merged[i]) for i in chosen]


def parallel(function: Any, items: list[Any], workers: int = 8) -> list[Any]:
    """Map over a few S3 requests at once; in order; the first failure propagates."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))
