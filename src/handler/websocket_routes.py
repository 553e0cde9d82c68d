"""The WebSocket API's routes: $connect, $disconnect, sendMessage and $default.

$connect binds the connection to its caller (the identity API Gateway verified: AWS_IAM, or our
JWT authorizer's context); every later message on it acts as that caller and no other, whatever
the message says. sendMessage validates like POST /messages, answers ``accepted`` and queues the
turn for a worker invocation, which streams the reply back over the connection.
"""

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agent import Deadline, check_message

from .callers import websocket_caller
from .error_table import ApiError, as_api_error
from .frames import Frames, callback_url
from .schemas import ConnectionRef, SendMessage, hint_for
from .turn_service import TurnRequest, turn_id_for

if TYPE_CHECKING:
    from .composition import Services

OK = {"statusCode": 200}
UNKNOWN_ACTION = ('Unknown action; send {"action": "sendMessage", "session_id": "...", "message": "..."}.')


class WebSocketRoutes:
    def __init__(self, services: "Services") -> None:
        self.services = services

    def handle(self, event: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        context = event["requestContext"]
        route = context.get("routeKey")
        conversations = self.services.conversations
        if route == "$connect":
            try:
                caller = websocket_caller(context, self.services.deployed)
            except ApiError as error:
                return {"statusCode": error.status}  # API Gateway refuses the connection
            conversations.bind_connection(context["connectionId"], caller, deadline)
            return OK
        if route == "$disconnect":
            conversations.unbind_connection(context["connectionId"], deadline)
            return OK
        self.message(event, deadline, known=route == "sendMessage")
        return OK

    def message(self, event: dict[str, Any], deadline: Deadline, known: bool) -> None:
        context = event["requestContext"]
        connection = ConnectionRef(id=context["connectionId"],
                                   endpoint=callback_url(context, self.services.settings.websocket_callback_url))
        try:
            body = json.loads(event.get("body") or "")
        except (ValueError, RecursionError):
            body = None
        session_id = body.get("session_id") if isinstance(body, dict) and isinstance(body.get("session_id"), str) else None
        frames = Frames(self.services.clients, connection, session_id, None, deadline)
        try:
            request = self._request(body, connection.id, known, deadline)
        except Exception as error:
            frames.error(as_api_error(error).body())
            return
        turn_id = turn_id_for(request)
        frames = Frames(self.services.clients, connection, request.session_id, turn_id, deadline)
        announced: list[bool] = []

        def accepted(bounded: Deadline) -> None:
            # "accepted" goes out as the turn is queued: before any frame of it, and before any
            # message the client sends once it has seen it (which is then queued after this one).
            frames.accepted(bounded)
            announced.append(True)

        try:
            turn = self.services.turns.enqueue(request, deadline, connection, turn_id, announce=accepted)
        except Exception as error:
            # Refused before it was announced (a key reused for another message, say): the error
            # names no turn, so it cannot be taken for the end of one the client follows.
            refused = frames if announced else Frames(self.services.clients, connection, request.session_id, None,
                                                      deadline)
            refused.error(as_api_error(error).body())
            return
        # A retried message whose turn already ended: answer it from the turn's record.
        if turn["status"] == "done":
            frames.reply(turn["reply"])
        elif turn["status"] == "failed":
            frames.error({"error": turn["error"]})

    def _request(self, body: Any, connection_id: str, known: bool, deadline: Deadline) -> TurnRequest:
        if body is None:
            raise ApiError(400, "invalid_json", 'A message must be JSON like {"action": "sendMessage", ...}.')
        if not known:
            raise ApiError(400, "invalid_request", UNKNOWN_ACTION)
        try:
            message = SendMessage.model_validate(body)
        except ValidationError as error:
            raise ApiError(400, "invalid_request", hint_for(error)) from None
        caller = self.services.conversations.connection_caller(connection_id, deadline)
        if caller is None:
            raise ApiError(401, "unauthenticated", "This connection is not signed in; connect again.")
        check_message(message.message, self.services.settings.max_message_chars)
        return TurnRequest(caller, message.session_id, message.message, message.idempotency_key)


def is_websocket(event: Any) -> bool:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return isinstance(context, dict) and isinstance(context.get("connectionId"), str) \
        and isinstance(context.get("routeKey"), str) and "http" not in context

