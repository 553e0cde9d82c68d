"""Deadline: the moment a piece of work must be finished by, on the monotonic clock.

Lambda kills an invocation at its timeout, with no chance to answer, store or release anything.
So every turn carries the invocation's deadline, and every call it makes (model, S3, Secrets
Manager, SQS, the WebSocket management API) is bounded by the time that is left: a slow call
fails in time instead of outliving the function.
"""

import math
import time
from collections.abc import Callable

Clock = Callable[[], float]


class Deadline:
    """``at`` is a ``clock()`` reading; None means no deadline (scripts, tests, the expiry of
    a local run)."""

    __slots__ = ("at", "clock")

    def __init__(self, at: float | None, clock: Clock = time.monotonic) -> None:
        self.at = at
        self.clock = clock

    @classmethod
    def after(cls, seconds: float | None, clock: Clock = time.monotonic) -> "Deadline":
        return cls(None if seconds is None else clock() + max(0.0, seconds), clock)

    @classmethod
    def never(cls) -> "Deadline":
        return cls(None)

    def remaining(self) -> float:
        """Seconds left, never negative; ``math.inf`` without a deadline."""
        return math.inf if self.at is None else max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, seconds: float) -> float:
        """``seconds``, or less if the deadline comes first (a per-call timeout)."""
        return min(seconds, self.remaining())

    def at_most(self, seconds: float) -> "Deadline":
        """This deadline, or ``seconds`` from now if that comes first (work under a short lease)."""
        other = self.clock() + seconds
        return Deadline(other if self.at is None else min(self.at, other), self.clock)

    def earlier_by(self, seconds: float) -> "Deadline":
        """A deadline ``seconds`` before this one: room kept for what must follow (a commit, an answer)."""
        return self if self.at is None else Deadline(self.at - seconds, self.clock)

    def __repr__(self) -> str:
        return "Deadline(never)" if self.at is None else f"Deadline(in {self.remaining():.3f} s)"
