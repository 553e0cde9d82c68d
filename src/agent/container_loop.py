"""The container's event loop: one for the container's life, one turn at a time (as Lambda runs
them). LiteLLM schedules its own background work on the loop that called it, so turns must share
one; and a loop left holding LiteLLM's waiting task crashes the interpreter's last garbage
collection, so the loop is closed, clients and all, with the container (or at exit)."""

import asyncio
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from .model import close_clients_of_running_loop

# At most this long, within a turn's commit time, for what a summary left on the loop to stop.
SETTLE_SECONDS = 0.2
T = TypeVar("T")


class ContainerLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        weakref.finalize(self, _close, self.loop)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def settle(self) -> None:
        """After a summary: LiteLLM's background worker moved to the summary's loop and left its
        task here waiting forever, which, collected later, logs "Task was destroyed but it is
        pending!" (once per summary). The next call starts a fresh one."""
        _settle(self.loop)


def _settle(loop: asyncio.AbstractEventLoop, then: Coroutine[Any, Any, None] | None = None) -> None:
    """Cancel what is left waiting on ``loop`` and let it finish, bounded (``then``: one more
    coroutine to run afterwards)."""

    async def settle() -> None:
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.wait(leftover, timeout=SETTLE_SECONDS)
        if then is not None:
            await then

    loop.run_until_complete(settle())


def _close(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed() or loop.is_running():
        return
    try:
        asyncio.get_running_loop()  # collected while another loop runs here: closing is all there is
    except RuntimeError:
        _settle(loop, _last_rites(loop))
    loop.close()


async def _last_rites(loop: asyncio.AbstractEventLoop) -> None:
    await close_clients_of_running_loop()  # the provider's connections go with the container
    await loop.shutdown_asyncgens()
