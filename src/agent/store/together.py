"""Independent requests of a turn sent at once: one round trip where they would have been several.

A turn's latency is its sequential round trips to the store, not its requests: taking the lease
and reading the session, the message files and the commit point, the lease's release and the list
entry are independent of each other, so each pair costs one round trip. Every call runs to its
end (none is abandoned half-way), and each outcome is kept apart, so that a caller can tell
which of them failed.
"""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

# Its own pool: the calls use the object store's pool themselves (one pool would deadlock). One
# per process: a pool's threads do not survive a fork (the twin forks its containers). Calls may
# nest (a turn's end runs the list entry's own pair): 32 threads, made only as needed, leave room
# for several turns of one process (tests, the twin) to nest at once without waiting on each other.
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS[pid] = ThreadPoolExecutor(32, "store-together")
    return _POOLS[pid]


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    error: BaseException | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(call())
    except Exception as error:  # noqa: BLE001 (kept for the caller, who decides)
        return Outcome(error=error)


def together(*calls: Callable[[], Any]) -> list[Outcome]:
    """Run ``calls`` concurrently (the first in this thread) and wait for all; outcomes in order."""
    futures = [_pool().submit(_outcome, call) for call in calls[1:]]
    first = _outcome(calls[0])
    return [first, *(future.result() for future in futures)]
