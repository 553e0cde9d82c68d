"""The WebSocket and queue fixtures (moto's SQS and management API), for the turn lifecycle tests."""

from tests.websocket.conftest import aws, ws, ws_env  # noqa: F401 (fixtures, found by name)
