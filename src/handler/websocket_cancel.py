"""WebSocket {"action": "cancelTurn", "session_id", "turn_id"}: DELETE .../turns/{turn_id} for a
connection's caller (the one bound at $connect, never one the message names).

The cancelled turn ends with its one ``error`` frame, code ``turn_cancelled`` (sent by the worker:
at once for a running turn, when it reaches the turn for a queued one), so nothing is sent when
the cancel is accepted. A cancel that is refused (not JSON, no such turn of this caller's) gets
an ``error`` frame that names no turn: it cannot be taken for the end of one.
"""

from typing import Any

from pydantic import ValidationError

from agent import Deadline, InvalidRequest
from agent.aws_clients import AwsClients
from agent.store import SessionStore

from .error_table import ApiError, as_api_error
from .frames import Frames
from .schemas import ConnectionRef, DirectCancel, hint_for
from .turn_service import TurnService

ACTION = "cancelTurn"


def cancel_turn(turns: TurnService, connections: SessionStore, clients: AwsClients, connection: ConnectionRef,
                body: Any, deadline: Deadline) -> None:
    session_id = body.get("session_id") if isinstance(body, dict) else None
    try:
        caller = connections.connection_caller(connection.id, deadline)
        if caller is None:
            raise ApiError(401, "unauthenticated", "This connection is not signed in; connect again.")
        ask = _validated(body)
        turns.cancel(caller, ask.session_id, ask.turn_id, deadline)
    except Exception as error:
        named = session_id if isinstance(session_id, str) else None
        Frames(clients, connection, named, None, deadline).error(as_api_error(error).body())


def _validated(body: Any) -> DirectCancel:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", 'A message must be JSON like {"action": "cancelTurn", ...}.')
    try:
        return DirectCancel.model_validate({"session_id": body.get("session_id"), "turn_id": body.get("turn_id"),
                                            "action": "cancel_turn"})
    except ValidationError as error:
        raise InvalidRequest(hint_for(error)) from None
