"""One translation of storage failures into StoreUnavailable.

S3 and file errors carry bucket names, keys and paths; callers get a fixed, safe message and the
detail goes to the log only. Domain errors (SessionBusy, SessionNotFound, ...) pass through.
"""

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from strands.types.exceptions import SessionException

from ..errors import AgentError, SessionNotFound, StoreUnavailable

logger = logging.getLogger(__name__)

STORAGE_ERRORS = (ClientError, BotoCoreError, SessionException, OSError, json.JSONDecodeError)
MESSAGE = "The session store is unavailable; nothing of this turn was stored. Please retry."

F = TypeVar("F", bound=Callable[..., Any])


class CommitUnknown(StoreUnavailable):
    """The store answered neither the commit nor the check that would settle it: the turn may yet
    be stored. Not "nothing was stored": a retry with its key must not run it again blindly."""

    def __init__(self) -> None:
        super().__init__("The session store did not confirm whether this turn was stored. "
                         "Please retry with the same Idempotency-Key.")


class SessionDeleted(SessionNotFound):
    """A queued turn's session was deleted before the turn ran: the turn is cancelled, nothing stored."""

    code = "session_deleted"

    def __init__(self) -> None:
        super().__init__("The session was deleted before this turn ran; nothing of it was stored.")


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Raise StoreUnavailable (with the cause chained, for the log) for any storage failure."""
    try:
        yield
    except AgentError:
        raise
    except STORAGE_ERRORS as error:
        logger.warning("session store failed while %s: %s: %s", action, type(error).__name__, error)
        raise StoreUnavailable(MESSAGE) from error


def guarded(action: str) -> Callable[[F], F]:
    """Decorator form of store_errors, for repository methods Strands calls inside the Agent."""

    def wrap(function: F) -> F:
        @functools.wraps(function)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with store_errors(action):
                return function(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
