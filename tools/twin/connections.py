"""The WebSocket connections, and API Gateway's management API for them (@connections).

The function posts frames with boto3's ``apigatewaymanagementapi`` client to
WEBSOCKET_CALLBACK_URL, which the twin sets to ``<twin>/_aws/connections``. Each POST is delivered
as one text frame, and answered as API Gateway answers: 200, 410 GoneException once the client
has gone, 413 PayloadTooLargeException over 128 KB. GET and DELETE work too. Every call is
counted per connection (the stream benchmark reads the counts).

Two faults of the real service can be switched on per connection, for tests: ``slow`` (each POST
takes that many seconds, as @connections can on a client tier) and ``repeated`` (each frame is
delivered twice, as when botocore tries a post again after a read timeout and both arrive).
"""

import asyncio
import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

PREFIX = "/_aws/connections"
MAX_PAYLOAD_BYTES = 128 * 1024
ID_ALPHABET = string.ascii_letters + string.digits


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters ending in '=')."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(15)) + "="


@dataclass
class Calls:
    """The management API's calls for one connection, kept after it closes."""

    posts: int = 0
    delivered: int = 0
    gone: int = 0  # answered 410


@dataclass
class Connection:
    id: str
    socket: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_active_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Connections:
    def __init__(self) -> None:
        self.live: dict[str, Connection] = {}
        self.calls: dict[str, Calls] = {}
        self.slow: dict[str, float] = {}  # connection id -> seconds each POST takes
        self.repeated: set[str] = set()  # connection ids whose frames arrive twice

    def open(self, connection: Connection) -> None:
        self.live[connection.id] = connection
        self.calls.setdefault(connection.id, Calls())

    def close(self, connection_id: str) -> None:
        self.live.pop(connection_id, None)

    def touch(self, connection_id: str) -> None:
        if connection_id in self.live:
            self.live[connection_id].last_active_at = datetime.now(UTC)

    def add_routes(self, app: web.Application) -> None:
        path = PREFIX + "/@connections/{connection_id}"
        app.router.add_post(path, self.post)
        app.router.add_get(path, self.get)
        app.router.add_delete(path, self.delete)

    async def post(self, request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        calls = self.calls.setdefault(connection_id, Calls())
        calls.posts += 1
        data = await request.read()
        if len(data) > MAX_PAYLOAD_BYTES:
            return _error(413, "PayloadTooLargeException", f"Message size exceeds the {MAX_PAYLOAD_BYTES} byte limit")
        connection = self.live.get(connection_id)
        if connection is None or connection.socket.closed:
            calls.gone += 1
            return _gone()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if connection_id in self.slow:
            await asyncio.sleep(self.slow[connection_id])
        try:
            for _ in range(2 if connection_id in self.repeated else 1):
                if text is None:
                    await connection.socket.send_bytes(data)
                else:
                    await connection.socket.send_str(text)
        except (ConnectionError, RuntimeError):  # the client went away while this was being sent
            calls.gone += 1
            return _gone()
        calls.delivered += 1
        self.touch(connection_id)
        return web.Response(status=200)

    async def get(self, request: web.Request) -> web.Response:
        connection = self.live.get(request.match_info["connection_id"])
        if connection is None:
            return _gone()
        return web.json_response({
            "connectedAt": _iso(connection.connected_at), "lastActiveAt": _iso(connection.last_active_at),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        })

    async def delete(self, request: web.Request) -> web.Response:
        connection = self.live.get(request.match_info["connection_id"])
        if connection is None:
            return _gone()
        self.close(connection.id)
        # The WebSocket API's loop sees the close and invokes $disconnect, as API Gateway does.
        await connection.socket.close(code=1000, message=b"Connection closed by the server")
        return web.Response(status=204)


def _gone() -> web.Response:
    # botocore reads the error's code from this header, and raises GoneException.
    return _error(410, "GoneException", None)


def _error(status: int, code: str, message: str | None) -> web.Response:
    return web.Response(status=status, text=json.dumps({"message": message}), content_type="application/json",
                        headers={"x-amzn-ErrorType": code})


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
