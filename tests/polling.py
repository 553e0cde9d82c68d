"""The tests' one way to wait for something another thread or process does: poll a check until it
holds, within a bound, and fail saying what never happened.

    reply = until(lambda: model.requests, timeout=10, what="the model was asked")
    turn = await until_async(lambda: turn_done(client), timeout=30, what="the turn ended")

A check returns something truthy when the condition holds (it is returned) and falsy otherwise; it
may raise AssertionError to stop the wait at once (a process that died, a turn that failed).
Polling for a condition is synchronisation; sleeping for a duration and hoping is not.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float, every: float = 0.02, what: str = "the condition") -> T:
    """``check()``'s first truthy result, or AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout} s (last seen: {found!r})")
        time.sleep(every)


async def until_async(check: Callable[[], Awaitable[T]], timeout: float, every: float = 0.05,
                      what: str = "the condition") -> T:
    """``until`` for a check that is a coroutine (an HTTP call from an aiohttp client)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout} s (last seen: {found!r})")
        await asyncio.sleep(every)
