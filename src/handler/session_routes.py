"""The HTTP routes of a session: send a message (a turn now, or queued with
`Prefer: respond-async`), read its history, delete it, and follow a queued turn.

A Powertools Router, given only what its routes use; the invocation's deadline comes through
``router.context`` (app.py appends it), the caller from the event's authorizer fields.
"""

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from agent import Conversations

from .callers import CallerRouter
from .http_answers import NO_CONTENT, SessionIdPath, documented, errors, json_response, no_content
from .schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    TURN_ID_PATTERN,
    AcceptedTurnOut,
    HistoryOut,
    MessageIn,
    MessageOut,
    ReplyOut,
    StateOut,
    TurnStatusOut,
)
from .turn_requests import turn_request
from .turn_service import TurnService

IdempotencyKeyHeader = Annotated[str | None, Header(alias="idempotency-key", pattern=IDEMPOTENCY_KEY_PATTERN,
                                                    description="A retry with the same key replays the first reply")]
PageLimit = Annotated[int, Query(ge=1, le=1000, description="Messages per page (a page is also capped at ~5 MB)")]
PreferHeader = Annotated[str | None, Header(description="respond-async: queue the turn, answer 202 at once")]


def session_routes(turns: TurnService, conversations: Conversations, deployed: bool, max_message_chars: int) -> Router:
    router = CallerRouter(deployed)
    caller, deadline = router.caller, router.deadline

    @router.post("/sessions/<session_id>/messages", summary="Send a message; get the agent's reply",
                 responses={200: documented(ReplyOut, "The reply, stored with the message"),
                            202: documented(AcceptedTurnOut, "Queued (Prefer: respond-async)"),
                            **errors(409, 413, 422, 429, 502, 503, 504)})
    def post_message(session_id: SessionIdPath, body: MessageIn, idempotency_key: IdempotencyKeyHeader = None,
                     prefer: PreferHeader = None):
        request = turn_request({"caller": caller(), "session_id": session_id, "idempotency_key": idempotency_key,
                                **body.model_dump(exclude_unset=True)}, max_message_chars)
        if not wants_async(prefer):
            # omit_empty: "output" only when an output_schema asked for it
            return json_response(200, ReplyOut(**turns.run(request, deadline())), omit_empty=True)
        accepted = turns.enqueue(request, deadline())
        location = f"/sessions/{session_id}/turns/{accepted['turn_id']}"
        out = AcceptedTurnOut(session_id=session_id, turn_id=accepted["turn_id"], status="queued", location=location)
        return json_response(202, out, {"Location": location, "Preference-Applied": "respond-async"})

    @router.get("/sessions/<session_id>/messages", summary="A page of the session's history, oldest first",
                responses={200: documented(HistoryOut, "Messages, and the cursor of the next page"),
                           **errors(404, 503)})
    def get_messages(
        session_id: SessionIdPath,
        limit: PageLimit = 100,
        cursor: Annotated[str | None, Query(max_length=1024, description=(
            "Opaque: the next_cursor of the previous page, as it was (another value is 400 invalid_request)"))] = None,
    ):
        page = conversations.history(caller(), session_id, deadline(), cursor=cursor, limit=limit)
        messages = [MessageOut(**m.fields()) for m in page.messages]
        out = HistoryOut(session_id=page.session_id, messages=messages, next_cursor=page.next_cursor)
        return json_response(200, out)

    @router.delete("/sessions/<session_id>", summary="Delete the session (its next turn starts fresh)",
                   responses={**NO_CONTENT, **errors(404, 409, 503)})
    def delete_session(session_id: SessionIdPath):
        conversations.delete(caller(), session_id, deadline())
        return no_content()

    @router.get("/sessions/<session_id>/turns/<turn_id>", summary="A queued turn's status, and its reply when done",
                responses={200: documented(TurnStatusOut, "queued, running, done (with reply) or failed (with error)"),
                           **errors(404, 503)})
    def get_turn(session_id: SessionIdPath, turn_id: Annotated[str, Path(pattern=TURN_ID_PATTERN)]):
        status = TurnStatusOut(**turns.status(caller(), session_id, turn_id, deadline()))
        return json_response(200, status, omit_empty=True)  # "reply" when done, "error" when failed

    @router.get("/sessions/<session_id>/state", summary="The session's agent state (what its tools keep)",
                responses={200: documented(StateOut, "agent.state as the last turn stored it"), **errors(404, 503)})
    def get_state(session_id: SessionIdPath):
        return json_response(200, StateOut(session_id=session_id,
                                           state=conversations.state(caller(), session_id, deadline())))

    return router


def wants_async(prefer: str | None) -> bool:
    return bool(prefer) and "respond-async" in (p.split(";")[0].strip().lower() for p in (prefer or "").split(","))
