"""The session store: Strands' public SessionRepository interface, made safe and cheap per turn.

Guarantees (S3 in Lambda; files for the local twin, with the same keys and semantics):

- One turn at a time per session: a turn holds the session's lease; a concurrent request gets
  SessionBusy (retry_after = the lease's remaining seconds) and writes nothing.
- Atomic turns: a turn's messages and agent state are stored together at its end, or not at all;
  the commit point (agent.json) is a compare-and-swap, so a turn that lost its lease never
  overwrites the turn that took it over.
- Constant cost per turn: a restore reads session.json and agent.json (which carries the window
  of messages Strands restores), whatever the length of the history.
- Bounded: every request fits the deadline it is given; a release gets about a second of its own.
- Whole-session expiry: ``expire_idle`` deletes sessions idle longer than the TTL, never parts.

Modules: objects (the interface; s3_objects, file_objects), keys (the layout), lease,
repository (Strands' SessionRepository for one turn), sessions, documents, expiry, failures.

Usage::

    store = open_store(settings)                                   # once per container
    with store.turn(caller, session_id, deadline, caller_document="memory") as turn:
        agent = Agent(..., session_manager=turn.session_manager)
        agent(message)
        turn.change_caller_document(lambda memory: {**(memory or {}), "seen": True})
    # committed when the block exits cleanly; nothing stored if it raised
"""

import os
from typing import TYPE_CHECKING

from ..settings import Settings
from .documents import SessionRecords
from .failures import CommitUnknown, SessionDeleted
from .sessions import HistorySlice, SessionStore, Turn

if TYPE_CHECKING:
    from ..aws_clients import AwsClients

__all__ = ["CommitUnknown", "HistorySlice", "SessionDeleted", "SessionRecords", "SessionStore", "Turn", "open_store"]


def open_store(settings: Settings, clients: "AwsClients | None" = None) -> SessionStore:
    """S3 when ``settings.session_bucket`` is set, files under ``settings.session_dir`` otherwise."""
    if settings.session_bucket:
        from ..aws_clients import AwsClients
        from .s3_objects import S3Objects

        aws = clients or AwsClients()
        objects = S3Objects(lambda deadline: aws.client("s3", deadline), settings.session_bucket,
                            settings.session_prefix)
        return SessionStore(objects, settings)
    from .file_objects import FileObjects

    return SessionStore(FileObjects(os.path.abspath(settings.session_dir)), settings)
