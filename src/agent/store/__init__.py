"""The session store: Strands' public SessionRepository interface, made safe and cheap per turn.

Guarantees (S3 in Lambda; files for the local twin, with the same keys and semantics):

- One turn at a time per session: a turn holds the session's lease; a concurrent request gets
  SessionBusy (retry_after = the lease's remaining seconds) and writes nothing.
- Atomic turns: a turn's messages and agent state are stored together at its end, or not at all;
  the commit point (agent.json) is a compare-and-swap, so a turn that lost its lease never
  overwrites the turn that took it over.
- Constant cost per turn: a restore reads session.json and agent.json (which carries the window
  of messages Strands restores), whatever the length of the history.
- Whole-session expiry: ``expire_idle`` deletes sessions idle longer than the TTL, never parts.

Modules: objects (the interface; s3_objects, file_objects), keys (the layout), lease,
repository (Strands' SessionRepository for one turn), sessions, expiry, failures.

Usage::

    store = open_store(settings)                      # once per container
    with store.turn(caller, session_id) as session_manager:
        agent = Agent(..., session_manager=session_manager)
        agent(message)                                 # committed when the block exits cleanly
"""

import os

from ..settings import Settings
from .sessions import SessionStore

__all__ = ["SessionStore", "open_store", "s3_client"]


def s3_client() -> object:
    """One S3 client per container: standard retries (with backoff), bounded connect/read times."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10,
                    max_pool_connections=32, user_agent_extra="strands-agents")
    return boto3.client("s3", config=config)  # AWS_ENDPOINT_URL_S3 / AWS_REGION are honoured by boto3


def open_store(settings: Settings, client: object | None = None) -> SessionStore:
    """S3 when ``settings.session_bucket`` is set, files under ``settings.session_dir`` otherwise."""
    if settings.session_bucket:
        from .s3_objects import S3Objects

        s3 = client or s3_client()
        return SessionStore(S3Objects(lambda deadline: s3, settings.session_bucket, settings.session_prefix), settings)
    from .file_objects import FileObjects

    return SessionStore(FileObjects(os.path.abspath(settings.session_dir)), settings)
