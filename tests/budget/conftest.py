"""The WebSocket and queue fixtures (moto's SQS and management API), and a UTC clock the budget reads."""

from datetime import UTC, datetime

import pytest

from tests.template.conftest import defaults, transformed  # noqa: F401 (fixtures, found by name)
from tests.websocket.conftest import aws, ws, ws_env  # noqa: F401 (fixtures, found by name)

# 23:00 UTC: the budget starts again in an hour.
AN_HOUR_BEFORE_MIDNIGHT = datetime(2026, 3, 1, 23, 0, 0, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(AN_HOUR_BEFORE_MIDNIGHT)

