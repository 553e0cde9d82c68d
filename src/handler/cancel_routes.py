"""DELETE /sessions/{session_id}/turns/{turn_id}: stop a queued or running turn of the caller's.

202 with the turn's status: "cancelled" (a queued turn, which will never run), "cancelling" (a
running one: its worker stops it within about a second, stores nothing, and records
"cancelled"), or the status of a turn that had ended already, which stays as it is. Another
caller's turn (or none) is 404 turn_not_found. The same for WebSocket {"action": "cancelTurn"}
and the direct action cancel_turn (turn_service.TurnService.cancel).
"""

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from .callers import CallerRouter
from .http_answers import ERRORS, SessionIdPath, documented, json_response
from .schemas import TURN_ID_PATTERN, TurnStatusOut
from .turn_service import TurnService


def cancel_routes(turns: TurnService, deployed: bool) -> Router:
    router = CallerRouter(deployed)

    @router.delete("/sessions/<session_id>/turns/<turn_id>", summary="Stop a queued or running turn",
                   responses={202: documented(TurnStatusOut, "cancelled (was queued), cancelling (was running; "
                                              "cancelled within ~1 s), or the status of a turn already ended"),
                              **ERRORS})
    def cancel_turn(session_id: SessionIdPath, turn_id: Annotated[str, Path(pattern=TURN_ID_PATTERN)]):
        caller, deadline = router.caller(), router.deadline()
        status = TurnStatusOut(**turns.cancel(caller, session_id, turn_id, deadline))
        return json_response(202, status, omit_empty=True)

    return router
