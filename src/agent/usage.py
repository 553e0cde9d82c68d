"""Tokens per caller per UTC day, and the daily budget (CALLER_DAILY_TOKENS) they are checked against.

    .usage/<YYYY-MM-DD>/<caller segment>/<stamp>-<input>-<output>.json    one object per stored turn

Why one object per turn, with the tokens in its key: concurrent turns of one caller each write
their own key (an unconditional PUT that no other turn can touch), so no count is ever lost and
no compare-and-swap can fail after the turn is stored; and reading a caller's day is one LIST of
its prefix (a page per 1,000 turns), without reading any object. A counter document would need a
read-modify-write with retries at every commit, and a caller's parallel turns would contend for
it. The object's body repeats the key's fields (and the session) for whoever looks at it.

The prefix starts with "." so that no caller's segment (keys.caller_segment never starts with
".") can reach it; the session sweep ignores it; in S3 a lifecycle rule on the prefix deletes
old days (template.yaml, UsageExpiry).
"""

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .deadline import Deadline
from .errors import BudgetExceeded
from .store.failures import store_errors
from .store.keys import caller_segment
from .store.objects import ObjectStore

logger = logging.getLogger(__name__)
USAGE_PREFIX = ".usage/"
Clock = Callable[[], float]


@dataclass(frozen=True)
class DayUsage:
    """What one caller used on one UTC day."""

    day: str
    input_tokens: int
    output_tokens: int
    turns: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class CallerUsage:
    """Counts each stored turn's tokens, and refuses a caller's turn once today's reached the budget."""

    def __init__(self, objects: ObjectStore, daily_tokens: int, clock: Clock = time.time) -> None:
        self.objects, self.daily_tokens, self.clock = objects, daily_tokens, clock

    def today(self, caller: str, deadline: Deadline) -> DayUsage:
        """One LIST (a page per 1,000 turns of the day)."""
        day = self._day()
        prefix = _prefix(day, caller)
        input_tokens = output_tokens = turns = 0
        with store_errors("reading the caller's usage"):
            for listed in self.objects.within(deadline).list(prefix):
                counted = _tokens_in(listed.key[len(prefix):])
                if counted is not None:
                    input_tokens, output_tokens, turns = (input_tokens + counted[0], output_tokens + counted[1],
                                                          turns + 1)
        return DayUsage(day, input_tokens, output_tokens, turns)

    def check(self, caller: str, deadline: Deadline) -> None:
        """BudgetExceeded (Retry-After: the next UTC midnight) once today's tokens reached the
        budget; no read at all when there is none."""
        if not self.daily_tokens:
            return
        used = self.today(caller, deadline)
        if used.tokens >= self.daily_tokens:
            raise BudgetExceeded(
                f"You have used {used.tokens} of your {self.daily_tokens} tokens today (UTC); "
                "the budget starts again at midnight UTC.", retry_after=self.seconds_to_midnight())

    def count(self, caller: str, session_id: str, input_tokens: int, output_tokens: int, deadline: Deadline) -> None:
        """A stored turn's tokens, on the day it was stored. The turn is stored already: a failure
        here is logged, never the turn's."""
        now = self.clock()
        day = self._day(now)
        stamp = f"{int(now * 1000):013d}{secrets.token_hex(4)}"  # unique; in order of time within the day
        key = f"{_prefix(day, caller)}{stamp}-{int(input_tokens)}-{int(output_tokens)}.json"
        body = {"session_id": session_id, "input_tokens": int(input_tokens), "output_tokens": int(output_tokens),
                "at": datetime.fromtimestamp(now, UTC).isoformat()}
        try:
            with store_errors("counting a turn's tokens"):
                self.objects.within(deadline.at_most(2.0)).put(key, json.dumps(body).encode())
        except Exception:  # noqa: BLE001 (the turn is stored; its count is what is lost, and logged)
            logger.warning("a stored turn's tokens could not be counted", exc_info=True)

    def seconds_to_midnight(self) -> int:
        now = datetime.fromtimestamp(self.clock(), UTC)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(1, int((midnight - now).total_seconds() + 0.999))

    def _day(self, now: float | None = None) -> str:
        return datetime.fromtimestamp(self.clock() if now is None else now, UTC).strftime("%Y-%m-%d")


def _prefix(day: str, caller: str) -> str:
    return f"{USAGE_PREFIX}{day}/{caller_segment(caller)}/"


def _tokens_in(name: str) -> tuple[int, int] | None:
    """(input, output) from a usage object's name; None for anything else."""
    parts = name.removesuffix(".json").split("-")
    if len(parts) != 3 or not name.endswith(".json") or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1]), int(parts[2])
