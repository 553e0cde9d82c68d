"""The WebSocket API at /ws, as API Gateway runs the template's WebSocketApi.

- Upgrade: a $connect event (query string, headers; no identity locally, so the handler's
  caller is "local"). A non-2xx answer refuses the upgrade with that status.
- Each message: route selection on ``$request.body.action`` (a JSON body whose "action" names a
  route of the template, else $default), invoked as a MESSAGE event. Messages are invoked as they
  arrive, concurrently, as API Gateway does: it does not wait for one to finish before the next.
  The function's answer is not sent back (the routes have no route response); a function that
  fails makes API Gateway send the client an "Internal server error" frame.
- Close: a $disconnect event (best effort, as API Gateway's).

Limits as API Gateway's: 128 KB per message (larger closes the connection with 1009), and the
29 s integration timeout.
"""

import asyncio
import base64
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from .connections import Connection, Connections, new_connection_id
from .containers import Outcome, Pool
from .events import websocket_event, websocket_routes
from .terminal import Terminal

INTEGRATION_TIMEOUT_SECONDS = 29.0
MAX_MESSAGE_BYTES = 128 * 1024
STAGE = "local"


class WebSocketApi:
    def __init__(self, pool: Pool, connections: Connections, terminal: Terminal, domain: str) -> None:
        self.pool, self.connections, self.terminal, self.domain = pool, connections, terminal, domain
        self.routes = websocket_routes() - {"$connect", "$disconnect", "$default"}
        self.tasks: set[asyncio.Task] = set()
        self.closing = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
        if not socket.can_prepare(request).ok:  # not an upgrade: no $connect for it
            return web.Response(status=426, text="This is the WebSocket API: connect with a WebSocket client.",
                                headers={"Upgrade": "websocket"})
        connection_id = new_connection_id()
        user_agent = request.headers.get("User-Agent", "")
        identity = {"sourceIp": request.remote or "127.0.0.1", "userAgent": user_agent}
        connect = websocket_event("$connect", connection_id, domain=self.domain, stage=STAGE, identity=identity,
                                  query=dict(request.query) or None, headers=dict(request.headers))
        outcome = await self._invoke(connect)
        status = _connect_status(outcome)
        self._log("$connect", connection_id, status, outcome)
        if not 200 <= status < 300:
            return web.Response(status=status)  # API Gateway refuses the upgrade
        await socket.prepare(request)
        self.connections.open(Connection(connection_id, socket, identity["sourceIp"], user_agent))
        try:
            async for message in socket:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self.connections.touch(connection_id)
                    self._start(self.message(connection_id, identity, message.data))
        finally:
            self.connections.close(connection_id)
        if not self.closing:
            code = socket.close_code or 1006
            event = websocket_event("$disconnect", connection_id, domain=self.domain, stage=STAGE, identity=identity,
                                    disconnect=(code, "Client closed the connection" if code == 1000 else ""))
            self._start(self.disconnect(connection_id, event))
        return socket

    async def message(self, connection_id: str, identity: dict[str, str], data: str | bytes) -> None:
        body = data if isinstance(data, str) else base64.b64encode(data).decode()
        route = route_of(data, self.routes)
        event = websocket_event(route, connection_id, body, domain=self.domain, stage=STAGE, identity=identity)
        event["isBase64Encoded"] = not isinstance(data, str)
        outcome = await self._invoke(event)
        self._log(route, connection_id, "error" if outcome.failed else 200, outcome, _session_of(data))
        connection = self.connections.live.get(connection_id)
        if outcome.error is not None and connection is not None:
            reason = "Endpoint request timed out" if outcome.error.get("errorType") == "Integration.Timeout" \
                else "Internal server error"
            await _send_quietly(connection, {"message": reason, "connectionId": connection_id,
                                             "requestId": event["requestContext"]["requestId"]})

    async def disconnect(self, connection_id: str, event: dict[str, Any]) -> None:
        outcome = await self._invoke(event)
        self._log("$disconnect", connection_id, "error" if outcome.failed else 200, outcome)

    async def _invoke(self, event: dict[str, Any]) -> Outcome:
        invocation = asyncio.ensure_future(self.pool.invoke(event))
        try:
            return await asyncio.wait_for(asyncio.shield(invocation), INTEGRATION_TIMEOUT_SECONDS)
        except TimeoutError:
            return Outcome(error={"errorType": "Integration.Timeout", "errorMessage": "Endpoint request timed out"},
                           seconds=INTEGRATION_TIMEOUT_SECONDS)

    def _start(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _log(self, route: str, connection_id: str, status: Any, outcome: Outcome, session: str | None = None) -> None:
        note = ""
        if outcome.failed:
            error = outcome.error or {}
            lines = str(error.get("errorMessage") or "").splitlines()
            note = f"{error.get('errorType')}: {lines[0][:200] if lines else ''}"
        self.terminal.request(f"WS {route} {connection_id}", status, outcome.seconds, session, note)


def route_of(data: str | bytes, routes: frozenset[str] | set[str]) -> str:
    """``$request.body.action``: the route the JSON body's "action" names, else $default."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "$default"
    action = body.get("action") if isinstance(body, dict) else None
    return action if isinstance(action, str) and action in routes else "$default"


def _connect_status(outcome: Outcome) -> int:
    if outcome.failed:
        return 502
    result = outcome.result
    try:
        return int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
    except (TypeError, ValueError):
        return 502


def _session_of(data: str | bytes) -> str | None:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    session = body.get("session_id") if isinstance(body, dict) else None
    return session if isinstance(session, str) else None


async def _send_quietly(connection: Connection, frame: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):  # the client left: no one to tell
        await connection.socket.send_str(json.dumps(frame))
