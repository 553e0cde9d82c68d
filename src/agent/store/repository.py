"""TurnRepository: Strands' SessionRepository for one turn, buffered, over an ObjectStore.

A plain ``RepositorySessionManager(session_id, session_repository=repository)`` drives it. Next to
Strands' own S3/File repositories it changes only *when* and *how much* is read and written::

    session.json   read before the turn, with agent.json, in one round trip
    agent.json     SessionAgent + "_snapshot": {"message_count": N, "offset": k,
                   "messages": [messages k..N-1]}, k being the conversation manager's
                   removed_message_count: exactly what Strands restores, so a restore costs
                   no further request whatever the length of the history. The commit point.
    message_<n>    n < N: committed. n >= N: a leftover of a commit that died half-way, never read.

- Writes are buffered; reads inside the turn see them. The commit writes session.json (a new
  session), the messages, then agent.json as a compare-and-swap on the ETag read before the turn:
  if another writer committed meanwhile, nothing more is written and SessionBusy is raised.
- New messages are created with put_if_absent, so a writer that lost its lease can never
  overwrite a committed message; a leftover in the way is overwritten only once agent.json shows
  that nobody committed since the turn began.
- agent.json also carries "_commit", an id of the turn that wrote it. A commit whose answer was
  lost (a timeout, or a retry of a write that had landed, refused as a conflict) is resolved
  before anyone is told: agent.json is read back; if it is not this turn's, it is *fenced*:
  rewritten, on the ETag the turn read, with the same content under another "_commit" (a new
  session: a "_void" placeholder). The lost write, still in flight, carries the old condition
  and can no longer land, so "nothing was stored" stays true. When even that gets no answer,
  CommitUnknown says so instead.
- A "_void" agent.json restores as no agent (its ETag still guards the next commit).
- SessionAgent.from_dict ignores "_snapshot" and "_commit", so stock managers read agent.json as usual; an
  agent.json without it (a stock manager wrote it) is read the stock way: LIST, then GET each.
"""

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from strands.session.session_repository import SessionRepository
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, decode_bytes_values

from ..deadline import Deadline
from .documents import decode, encode
from .failures import CommitUnknown, guarded
from .keys import SessionKeys
from .lease import lost
from .objects import ObjectStore, StoredObject
from .together import together

Doc = dict[str, Any]
SNAPSHOT = "_snapshot"
COMMIT = "_commit"
VOID = "_void"  # a fence where there was no agent.json: restores as none
LISTING = "_listing"  # the key of the session's entry in its caller's list (session_list.py)
# Resolving an unanswered commit (read back, then fence) gets this long: the commit point's own
# write is given the turn's deadline less this, so the answer still comes before it.
CHECK_SECONDS = 1.0
AGENT_ID_DEFAULT = "default"  # Strands' default agent id, the session store's one agent
_MESSAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(SessionMessage))


def to_session_message(data: Doc) -> SessionMessage:
    """SessionMessage.from_dict, minus its inspect.signature() per call (~1 ms; 40 per restore)."""
    return SessionMessage(**decode_bytes_values({k: v for k, v in data.items() if k in _MESSAGE_FIELDS}))


@dataclass
class AgentRecord:
    """One agent of the session: as stored before the turn, what was read since, what the turn wrote."""

    stored: Doc | None  # agent.json before the turn (None: absent)
    etag: str | None
    count: int | None  # committed messages 0..count-1; None: a stock agent, not listed yet
    known: dict[int, Doc] = field(default_factory=dict)  # committed messages read so far
    pending: Doc | None = None
    pending_messages: dict[int, Doc] = field(default_factory=dict)

    @classmethod
    def of(cls, stored: StoredObject | None) -> "AgentRecord":
        document = decode(stored)
        if document is None:
            return cls(None, None, 0)
        if document.get(VOID):  # a fenced first commit: nothing committed, but a compare-and-swap from here
            return cls(None, stored.etag, 0)  # type: ignore[union-attr]
        snapshot = document.get(SNAPSHOT)
        if not (isinstance(snapshot, dict) and "message_count" in snapshot):
            return cls(document, stored.etag, None)  # type: ignore[union-attr]
        window = dict(enumerate(snapshot["messages"], start=int(snapshot["offset"])))
        return cls(document, stored.etag, int(snapshot["message_count"]), window)  # type: ignore[union-attr]

    def message(self, message_id: int) -> Doc | None:
        return self.pending_messages.get(message_id) or self.known.get(message_id)


class TurnRepository(SessionRepository):
    def __init__(self, objects: ObjectStore, keys: SessionKeys, session: StoredObject | None,
                 agents: dict[str, StoredObject | None]) -> None:
        self.objects, self.keys = objects, keys
        self.stored_session = decode(session)
        self.session_file_read = session is not None
        self.new_session: Doc | None = None
        self.agents = {agent_id: AgentRecord.of(stored) for agent_id, stored in agents.items()}
        self.commit_id = uuid.uuid4().hex
        # Given the committed message count, the key of the session's list entry (session_list.py):
        # written into agent.json, so the next turn knows which entry it replaces.
        self.listing: Callable[[int], str] | None = None
        self.written_listing: str | None = None

    # ---- what is committed -------------------------------------------------------------------
    def _agent(self, agent_id: str) -> AgentRecord:
        if agent_id not in self.agents:  # not fetched before the turn; a new session has none
            stored = None if self.new_session is not None else self.objects.get(self.keys.agent(agent_id))
            self.agents[agent_id] = AgentRecord.of(stored)
        return self.agents[agent_id]

    def _committed_ids(self, agent_id: str, offset: int) -> Iterable[int]:
        record = self._agent(agent_id)
        if record.stored is None:
            return []
        if record.count is None:  # a stock agent: its messages are whatever is there
            listed = self._listed_ids(agent_id)
            record.count = listed[-1] + 1 if listed else 0
            return [i for i in listed if i >= offset]
        return range(offset, record.count)

    def _load(self, agent_id: str, message_ids: list[int]) -> None:
        record = self._agent(agent_id)
        missing = [i for i in message_ids if record.message(i) is None]
        found = self.objects.get_many([self.keys.message(agent_id, i) for i in missing])
        record.known.update({i: json.loads(stored.body) for i, stored in zip(missing, found, strict=True)
                             if stored is not None})

    @guarded("reading messages")
    def message_count(self, agent_id: str) -> int:
        """Committed messages, this turn's not included."""
        self._committed_ids(agent_id, 0)
        return self._agent(agent_id).count or 0

    @guarded("finding the leftovers of an interrupted turn")
    def leftovers(self, agent_id: str) -> list[str]:
        """Messages beyond the committed count (a commit that died after writing some)."""
        record = self._agent(agent_id)
        if record.count is None:
            return []  # a stock agent: every message counts
        return [self.keys.message(agent_id, i) for i in self._listed_ids(agent_id) if i >= record.count]

    def _listed_ids(self, agent_id: str) -> list[int]:
        listed = (self.keys.message_id(agent_id, o.key) for o in self.objects.list(self.keys.messages(agent_id)))
        return sorted(i for i in listed if i is not None)

    # ---- commit ------------------------------------------------------------------------------
    @guarded("committing a turn")
    def write_messages(self) -> None:
        """session.json for a new session, then every message of the turn: all but the commit point."""
        if self.new_session is not None and not self.objects.put_if_absent(self.keys.session, encode(self.new_session)):
            raise lost()  # it was absent when the turn began: another writer created it since
        for agent_id, record in self.agents.items():
            written = [(i, self.keys.message(agent_id, i), encode(m))
                       for i, m in sorted(record.pending_messages.items())]
            changed = [(key, body) for i, key, body in written if i < (record.count or 0)]  # a redaction
            new = [(key, body) for i, key, body in written if i >= (record.count or 0)]
            if changed:
                self.objects.put_many(changed)
            taken = [item for item, etag in zip(new, self.objects.put_many_if_absent(new), strict=True) if etag is None]
            if taken:
                self._overwrite_leftovers(agent_id, taken)

    def _overwrite_leftovers(self, agent_id: str, items: list[tuple[str, bytes]]) -> None:
        current = self.objects.get(self.keys.agent(agent_id))
        if (current.etag if current else None) != self._agent(agent_id).etag:
            raise lost()  # someone committed those messages: they are theirs
        self.objects.put_many(items)

    @guarded("committing a turn")
    def write_commit_point(self, deadline: Deadline | None = None) -> None:
        """agent.json, only if nobody committed since the turn read it; an unanswered write is
        resolved (see the module's docstring) within ``deadline``."""
        objects = self.objects.within(deadline.earlier_by(CHECK_SECONDS)) if deadline else self.objects
        for agent_id, record in self.agents.items():
            if record.pending is None and not record.pending_messages:
                continue
            key, body = self.keys.agent(agent_id), encode({**self._document(record), COMMIT: self.commit_id})
            try:
                etag = self._swap(objects, key, body, record.etag)
            except Exception:
                if self._resolved(key, record):
                    continue
                raise  # nothing of the turn landed, and now nothing can
            if etag is None and not self._resolved(key, record):
                raise lost()

    @guarded("committing a turn")
    def commit(self, deadline: Deadline | None = None) -> bool:
        """The turn's files and the commit point, in one round trip where that is safe: when
        agent.json's snapshot holds every new message (a restore never reads their files) and no
        committed message is rewritten. A crash between them leaves agent.json naming messages
        whose files may be missing: ``repair`` rewrites them from the snapshot when the next turn
        takes the lease over. False: the commit landed but some file did not (repair needed)."""
        plan = self._one_round_trip()
        if plan is None:
            self.write_messages()
            self.write_commit_point(deadline)
            return True
        agent_id, new = plan
        committed, written = together(lambda: self.write_commit_point(deadline),
                                      lambda: self._create_files(agent_id, new))
        committed.result()  # not stored: what landed is a leftover past the count, as before
        if written.error is not None:
            return False
        try:  # ours now (the commit point's swap succeeded): what was in the way was a leftover
            self.objects.put_many(written.value)
        except Exception:  # noqa: BLE001 (the turn is stored; the next one repairs)
            return False
        return True

    def _one_round_trip(self) -> tuple[str, list[tuple[str, bytes]]] | None:
        pending = [(a, r) for a, r in self.agents.items() if r.pending is not None or r.pending_messages]
        if len(pending) != 1:
            return None
        agent_id, record = pending[0]
        if any(i < (record.count or 0) for i in record.pending_messages) or record.count is None:
            return None  # a redaction, or a stock agent: the careful order
        offset = int(((record.pending or record.stored or {}).get("conversation_manager_state") or {})
                     .get("removed_message_count", 0))
        count = max([record.count, *(i + 1 for i in record.pending_messages)])
        outside = any(i < offset for i in record.pending_messages)
        if outside or any(record.message(i) is None for i in range(offset, count)):
            return None  # agent.json will hold no snapshot, or not these messages: restores read files
        new = [(self.keys.message(agent_id, i), encode(m)) for i, m in sorted(record.pending_messages.items())]
        return agent_id, new

    def _create_files(self, agent_id: str, new: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """session.json (a new session) and the new messages; those a leftover was in the way of."""
        items = ([(self.keys.session, encode(self.new_session))] if self.new_session is not None else []) + new
        etags = self.objects.put_many_if_absent(items)
        # session.json already there: one a turn that died wrote, or a stock manager; the commit
        # point's compare-and-swap decides whose session this is.
        return [item for item, etag in zip(items, etags, strict=True) if etag is None and item[0] != self.keys.session]

    @guarded("repairing an interrupted turn")
    def repair(self, agent_id: str) -> None:
        """After a takeover: leftovers past the count go; committed messages and session.json that
        a commit in one round trip left unwritten are written from agent.json."""
        record = self._agent(agent_id)
        if record.count is None:
            return  # a stock agent: every message counts
        listed = self._listed_ids(agent_id)
        self.objects.delete([self.keys.message(agent_id, i) for i in listed if i >= record.count])
        missing = sorted(set(record.known) - set(listed))
        self.objects.put_many([(self.keys.message(agent_id, i), encode(record.known[i])) for i in missing])
        if record.stored is not None and not self.session_file_read and self.objects.get(self.keys.session) is None:
            self.objects.put_if_absent(self.keys.session, encode(self.session_of(record.stored)))

    def session_of(self, agent: Doc) -> Doc:
        """What session.json says, from agent.json (written in the same turn as the first)."""
        return {"session_id": self.keys.session_id, "session_type": "AGENT",
                "created_at": agent.get("created_at"), "updated_at": agent.get("updated_at")}

    def _swap(self, objects: ObjectStore, key: str, body: bytes, etag: str | None) -> str | None:
        return objects.put_if_absent(key, body) if etag is None else objects.put_if_match(key, body, etag)

    def _resolved(self, key: str, record: AgentRecord) -> bool:
        """Whether this turn's agent.json landed; if not, it never will (fenced). CommitUnknown
        when neither can be known in time."""
        try:
            return self._fence(key, record)
        except Exception as error:
            raise CommitUnknown() from error

    def _fence(self, key: str, record: AgentRecord) -> bool:
        objects = self.objects.within(Deadline.after(CHECK_SECONDS))
        if self._is_ours(objects.get(key)):
            return True
        fence = {**(record.stored or {VOID: True}), COMMIT: "fence-" + self.commit_id}
        if self._swap(objects, key, encode(fence), record.etag) is not None:
            return False
        return self._is_ours(objects.get(key))  # refused: ours landed after all, or someone else's did

    def _is_ours(self, stored: StoredObject | None) -> bool:
        return stored is not None and (decode(stored) or {}).get(COMMIT) == self.commit_id

    def _document(self, record: AgentRecord) -> Doc:
        agent = record.pending or record.stored
        if agent is None:
            raise SessionException("an agent has messages but no agent record")
        document = {k: v for k, v in agent.items() if k not in (SNAPSHOT, COMMIT, LISTING)}
        known = {**record.known, **record.pending_messages}
        count = max([record.count or 0, *(i + 1 for i in known)])
        offset = int((document.get("conversation_manager_state") or {}).get("removed_message_count", 0))
        window = range(min(offset, count), count)
        if all(i in known for i in window):  # else the next restore reads the stock way
            document[SNAPSHOT] = {"message_count": count, "offset": window.start,
                                  "messages": [known[i] for i in window]}
        if self.listing is not None:
            self.written_listing = document[LISTING] = self.listing(count)
        return document

    # ---- SessionRepository: buffered writes, reads that see them -----------------------------
    def create_session(self, session: Session, **kwargs: Any) -> Session:
        self.new_session = session.to_dict()
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """session.json; when it was not read (or is missing), an agent.json tells the session exists."""
        stored = self.agents[AGENT_ID_DEFAULT].stored if AGENT_ID_DEFAULT in self.agents else None
        data = self.new_session or self.stored_session or (self.session_of(stored) if stored else None)
        return None if data is None else Session.from_dict(data)

    @guarded("reading an agent")
    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        self._agent(session_agent.agent_id).pending = session_agent.to_dict()

    @guarded("reading an agent")
    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        record = self._agent(agent_id)
        data = record.pending or record.stored
        return None if data is None else SessionAgent.from_dict(data)

    @guarded("reading an agent")
    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        record = self._agent(session_agent.agent_id)
        previous = record.pending or record.stored
        if previous is None:
            raise SessionException(f"Agent {session_agent.agent_id} in session {session_id} does not exist")
        session_agent.created_at = previous["created_at"]
        record.pending = session_agent.to_dict()

    def create_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        # to_dict() copies now: the agent may still change this message object later in the turn.
        self._agent(agent_id).pending_messages[session_message.message_id] = session_message.to_dict()

    @guarded("reading a message")
    def read_message(self, session_id: str, agent_id: str, message_id: int, **kwargs: Any) -> SessionMessage | None:
        record = self._agent(agent_id)
        if record.message(message_id) is None and (record.count is None or message_id < record.count):
            self._load(agent_id, [message_id])
        data = record.message(message_id)
        return None if data is None else to_session_message(data)

    @guarded("reading a message")
    def update_message(self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any) -> None:
        previous = self.read_message(session_id, agent_id, session_message.message_id)
        if previous is None:
            raise SessionException(f"Message {session_message.message_id} does not exist")
        session_message.created_at = previous.created_at
        self._agent(agent_id).pending_messages[session_message.message_id] = session_message.to_dict()

    @guarded("reading messages")
    def list_messages(
        self, session_id: str, agent_id: str, limit: int | None = None, offset: int = 0, **kwargs: Any
    ) -> list[SessionMessage]:
        """From the snapshot when it covers ``offset`` (no request at all); others fetched at once."""
        record = self._agent(agent_id)
        ids = sorted({*self._committed_ids(agent_id, offset), *(i for i in record.pending_messages if i >= offset)})
        chosen = ids[:limit] if limit is not None else ids
        self._load(agent_id, chosen)
        return [to_session_message(record.message(i)) for i in chosen if record.message(i) is not None]  # type: ignore[arg-type]
