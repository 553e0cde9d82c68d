"""Stopping a running turn from outside (DELETE .../turns/{turn_id}, cancelTurn).

Whoever runs the turn passes a TurnStop: ``asked()`` says whether the turn was cancelled (the
worker reads the turn's ledger record). While the agent loop runs, a watcher asks every
POLL_SECONDS (the first time one POLL_SECONDS after the loop starts), in a thread (a store read
must not hold up the stream). Once asked, it sets the
cancel signal Strands checks between the model's stream chunks and before each tool call
(``Agent.stream_async(cancel_signal=...)``); a stream stalled between two chunks is cancelled
outright GRACE_SECONDS later. Either way the turn raises TurnCancelled and stores nothing: at
most POLL_SECONDS + a read + GRACE_SECONDS after the cancel was recorded.
"""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from .errors import TurnCancelled

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.5
GRACE_SECONDS = 0.5
CANCELLED = "The turn was cancelled; nothing of it was stored."


@dataclass(frozen=True)
class TurnStop:
    """How a turn learns it was cancelled: ``asked()`` (a read; a failing one counts as not asked)."""

    asked: Callable[[], bool]
    poll_seconds: float = POLL_SECONDS
    grace_seconds: float = GRACE_SECONDS

    def asked_safely(self) -> bool:
        try:
            return bool(self.asked())
        except Exception:  # noqa: BLE001 (the store failing is no cancel; the turn goes on)
            logger.warning("could not read whether the turn was cancelled", exc_info=True)
            return False


@asynccontextmanager
async def stoppable(stop: TurnStop | None) -> AsyncIterator[threading.Event | None]:
    """The block (the agent loop) with a watcher for ``stop``: yields the cancel signal to pass to
    Strands; raises TurnCancelled when the turn was stopped, however the block ended."""
    if stop is None:
        yield None
        return
    signal, task = threading.Event(), asyncio.current_task()
    forced = threading.Event()

    async def watch() -> None:
        # The first look after a poll, not at once: the turn has just read (or written) its record
        # while opening the session, and a turn shorter than a poll makes no read at all.
        await asyncio.sleep(stop.poll_seconds)
        while not await asyncio.to_thread(stop.asked_safely):
            await asyncio.sleep(stop.poll_seconds)
        signal.set()  # Strands stops at its next chunk or before its next tool
        await asyncio.sleep(stop.grace_seconds)
        if task is not None:
            forced.set()
            task.cancel()  # a stream that stalled between two chunks

    watcher = asyncio.create_task(watch())
    try:
        yield signal
    except asyncio.CancelledError:
        if not forced.is_set() or task is None:
            raise
        task.uncancel()
        raise TurnCancelled(CANCELLED) from None
    except Exception:
        if signal.is_set():
            raise TurnCancelled(CANCELLED) from None
        raise
    finally:
        watcher.cancel()
        with suppress(asyncio.CancelledError):
            await watcher
    if signal.is_set():  # Strands ended the loop with stop_reason "cancelled" (or the turn ended as it came)
        raise TurnCancelled(CANCELLED)
