"""AwsClients: one boto3 session per container, and clients whose worst case fits the time left.

A botocore client's worst case is attempts x (connect_timeout + read_timeout), plus the standard
retry mode's backoff between attempts (at most min(2**i, 20) s before retry i+1, throttling's
scale). A call with plenty of time gets the default tier; a call near its deadline gets a cheaper
tier (fewer attempts, shorter timeouts) whose worst case still fits; a call past its deadline (a
lease release, say) gets the minimal tier. The tiers are few and fixed, so each client (~6 ms to
make, the first of a service far more) is made once, at init (``prepare``) or on first use, and
cached per (service, endpoint, tier).

read_timeout bounds each socket read, not a whole response: a server that trickles bytes could
outlast it. AWS services answer or stall, and a stall is what this bounds.

Usage::

    clients = AwsClients()                                   # once per container
    clients.client("s3", deadline).get_object(...)          # retries and timeouts fit the deadline
"""

import threading
from dataclasses import dataclass
from typing import Any

from .deadline import Deadline


@dataclass(frozen=True)
class Tier:
    attempts: int  # total attempts, the first included (botocore's total_max_attempts)
    connect_timeout: float
    read_timeout: float

    @property
    def worst_case(self) -> float:
        backoff = sum(min(2.0**retry, 20.0) for retry in range(self.attempts - 1))
        return self.attempts * (self.connect_timeout + self.read_timeout) + backoff


# Cheaper tiers, tried in order after the default one: each costs about half the one before.
FALLBACKS = (Tier(2, 1.0, 3.0), Tier(1, 1.0, 3.0), Tier(1, 0.5, 1.5), Tier(1, 0.3, 0.7), Tier(1, 0.2, 0.3))
MINIMAL = Tier(1, 0.1, 0.2)  # past the deadline: one short attempt (a release, a last word)
NO_DEADLINE = Deadline.never()  # a script's or a test's call


class AwsClients:
    """One boto3 session per container; clients per (service, endpoint, tier), made on first use and cached."""

    def __init__(self, session: Any = None, connect_timeout: float = 2.0, read_timeout: float = 5.0,
                 max_attempts: int = 3) -> None:
        if session is None:
            import boto3

            session = boto3.session.Session()
        self.session = session
        default = Tier(max_attempts, connect_timeout, read_timeout)
        self.tiers = [default, *(tier for tier in FALLBACKS if tier.worst_case < default.worst_case)]
        self._clients: dict[tuple[str, str | None, Tier], Any] = {}
        self._lock = threading.Lock()  # a boto3 session must not make two clients at once

    def tier(self, deadline: Deadline) -> Tier:
        """The most patient tier whose worst case ends before the deadline."""
        remaining = deadline.remaining()
        return next((tier for tier in self.tiers if tier.worst_case <= remaining), MINIMAL)

    def client(self, service: str, deadline: Deadline = NO_DEADLINE, endpoint_url: str | None = None) -> Any:
        key = (service, endpoint_url, self.tier(deadline))
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key) or self._make(*key)
                self._clients[key] = client
        return client

    def prepare(self, service: str, endpoint_url: str | None = None, every_tier: bool = False) -> None:
        """Make ``service``'s client (``every_tier``: of each tier) now, during init, instead of on
        a request: the first client of a service loads its model (S3's: ~80 ms of CPU; each later
        one ~6 ms). With SnapStart that work is done once, before the snapshot, not by every
        restored environment's first turn. No request is sent."""
        for tier in (*self.tiers, MINIMAL) if every_tier else self.tiers[:1]:
            key = (service, endpoint_url, tier)
            with self._lock:
                if key not in self._clients:
                    self._clients[key] = self._make(*key)

    def _make(self, service: str, endpoint_url: str | None, tier: Tier) -> Any:
        from botocore.config import Config

        config = Config(
            connect_timeout=tier.connect_timeout,
            read_timeout=tier.read_timeout,
            retries={"mode": "standard", "total_max_attempts": tier.attempts},
            max_pool_connections=32,
        )
        # endpoint_url only when given: otherwise boto3 honours AWS_ENDPOINT_URL(_<SERVICE>).
        where = {"endpoint_url": endpoint_url} if endpoint_url else {}
        return self.session.client(service, config=config, **where)
