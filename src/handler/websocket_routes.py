"""The WebSocket API's routes: $connect, $disconnect, sendMessage and $default.

$connect binds the connection to its caller (the identity API Gateway verified: AWS_IAM, or our
JWT authorizer's context) in the store's connection registry; every later message on it acts as
that caller and no other, whatever the message says. sendMessage is validated by the one model
every source uses (turn_requests.py), answered ``accepted`` and queued for a worker invocation,
which streams the reply back over the connection.
"""

import json
import logging
from collections import OrderedDict
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from agent import AgentError, Deadline
from agent.aws_clients import AwsClients
from agent.store import SessionStore

from .callers import websocket_caller
from .error_table import ApiError, as_api_error, json_text
from .frames import Frames, callback_url
from .schemas import ConnectionRef
from .turn_requests import turn_request
from .turn_service import TurnRequest, TurnService, turn_id_for
from .websocket_cancel import ACTION as CANCEL_ACTION
from .websocket_cancel import cancel_turn

logger = logging.getLogger(__name__)
OK = {"statusCode": 200}
UNKNOWN_ACTION = ('Unknown action; send {"action": "sendMessage", "session_id": "...", "message": "..."}.')
NOT_JSON = 'A message must be JSON like {"action": "sendMessage", ...}.'
KNOWN_CONNECTIONS = 4096  # callers a container remembers, oldest forgotten first


class WebSocketRoutes:
    def __init__(self, turns: TurnService, connections: SessionStore, clients: AwsClients,
                 configured_callback_url: str | None, deployed: bool, max_message_chars: int) -> None:
        self.turns, self.connections, self.clients = turns, connections, clients
        self.configured_callback_url, self.deployed = configured_callback_url, deployed
        self.max_message_chars = max_message_chars
        # A connection's caller, bound at $connect, never changes while it is open (API Gateway
        # never reuses a connection id): a warm container reads it once, not on every message.
        self.callers: OrderedDict[str, str] = OrderedDict()

    def handle(self, raw_event: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        event = APIGatewayWebSocketEvent(raw_event)
        route, connection_id = event.request_context.route_key, event.request_context.connection_id
        if route == "$connect":
            try:
                caller = websocket_caller(event, self.deployed)
            except ApiError as error:
                return {"statusCode": error.status}  # API Gateway refuses the connection
            try:
                self.connections.bind_connection(connection_id, caller, deadline)
            except AgentError as error:  # the store failed: the client sees the status, the logs the cause
                return refused(as_api_error(error))
            self._remember(connection_id, caller)
            return OK
        if route == "$disconnect":
            self.callers.pop(connection_id, None)
            try:
                self.connections.unbind_connection(connection_id, deadline)
            except AgentError:  # the connection is gone either way; its binding is never used again
                logger.warning("a closed connection's binding could not be removed", exc_info=True)
            return OK
        if route == CANCEL_ACTION:
            self.cancel(event, deadline)
            return OK
        self.message(event, deadline, known=route == "sendMessage")
        return OK

    def cancel(self, event: APIGatewayWebSocketEvent, deadline: Deadline) -> None:
        """cancelTurn: see websocket_cancel.py."""
        connection, body = self._frame(event)
        cancel_turn(self.turns, self.connections, self.clients, connection, body, deadline)

    def _frame(self, event: APIGatewayWebSocketEvent) -> tuple[ConnectionRef, Any]:
        """Where this connection's frames go, and the frame's JSON (None if it is not JSON)."""
        endpoint = callback_url(event.raw_event["requestContext"], self.configured_callback_url)
        connection = ConnectionRef(id=event.request_context.connection_id, endpoint=endpoint)
        try:
            return connection, json.loads(event.body or "")
        except (ValueError, RecursionError):
            return connection, None

    def message(self, event: APIGatewayWebSocketEvent, deadline: Deadline, known: bool) -> None:
        connection, body = self._frame(event)
        named = body.get("session_id") if isinstance(body, dict) else None
        session_id = named if isinstance(named, str) and is_text(named) else None  # a frame must be UTF-8
        try:
            request = self._request(body, connection.id, known, deadline)
        except Exception as error:
            # The error names the session the message named, if any (None for none).
            frames = Frames(self.clients, connection, session_id, None, deadline)
            frames.error(as_api_error(error).body())
            return
        self._queue(request, connection, deadline)

    def _queue(self, request: TurnRequest, connection: ConnectionRef, deadline: Deadline) -> None:
        turn_id = turn_id_for(request)
        frames = Frames(self.clients, connection, request.session_id, turn_id, deadline)
        announced: list[bool] = []

        def accepted(bounded: Deadline) -> None:
            # "accepted" goes out as the turn is queued: before any frame of it, and before any
            # message the client sends once it has seen it (which is then queued after this one).
            frames.accepted(bounded)
            announced.append(True)

        try:
            turn = self.turns.enqueue(request, deadline, connection, turn_id, announce=accepted)
        except Exception as error:
            # Refused before it was announced (a key reused for another message, say): the error
            # names no turn, so it cannot be taken for the end of one the client follows.
            refused = frames if announced else Frames(self.clients, connection, request.session_id, None, deadline)
            refused.error(as_api_error(error).body())
            return
        # A retried message whose turn already ended: answer it from the turn's record.
        if turn["status"] == "done":
            frames.reply(turn["reply"])
        elif turn["status"] == "failed":
            frames.error({"error": turn["error"]})

    def _request(self, body: Any, connection_id: str, known: bool, deadline: Deadline) -> TurnRequest:
        if body is None:
            raise ApiError(400, "invalid_json", NOT_JSON)
        if not known or not isinstance(body, dict) or body.get("action") != "sendMessage":
            raise ApiError(400, "invalid_request", UNKNOWN_ACTION)
        caller = self._caller(connection_id, deadline)
        if caller is None:
            raise ApiError(401, "unauthenticated", "This connection is not signed in; connect again.")
        fields = {k: v for k, v in body.items() if k not in ("action", "caller")}  # the connection's caller only
        return turn_request({**fields, "caller": caller}, self.max_message_chars)

    def _caller(self, connection_id: str, deadline: Deadline) -> str | None:
        caller = self.callers.get(connection_id)
        if caller is None:
            caller = self.connections.connection_caller(connection_id, deadline)
            if caller is not None:
                self._remember(connection_id, caller)
        return caller

    def _remember(self, connection_id: str, caller: str) -> None:
        self.callers[connection_id] = caller
        if len(self.callers) > KNOWN_CONNECTIONS:
            self.callers.popitem(last=False)


def is_websocket(event: Any) -> bool:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(context, dict) and isinstance(context.get("connectionId"), str) \
        and isinstance(context.get("routeKey"), str) and "http" not in context


def refused(error: ApiError) -> dict[str, Any]:
    """A $connect refused for a failure of ours: its status and JSON (API Gateway shows the status)."""
    return {"statusCode": error.status, "headers": {"Content-Type": "application/json"},
            "body": json_text(error.body())}


def is_text(value: str) -> bool:
    """Whether ``value`` can go out in a frame: UTF-8 has no lone surrogate ("\\ud800" in JSON)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
