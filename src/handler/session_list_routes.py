"""The HTTP routes of a caller's session list: list your sessions (most recent activity first,
a page at a time), read one, rename one; and the same as direct invocation actions.

A Powertools Router like session_routes.py; the store keeps the list (agent/store/catalog.py).
"""

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field, StringConstraints

from agent import Deadline
from agent.store import SessionStore

from .callers import CallerRouter
from .http_answers import ERRORS, SessionIdPath, documented, json_response
from .schemas import Caller, SessionId

MAX_PAGE = 200  # one LIST of the store holds a page (and the entry after it)
DIRECT_ACTIONS = ("list_sessions", "get_session", "rename_session")


class SessionOut(BaseModel):
    session_id: str
    title: str = Field(description="Set with PATCH; by default the first message, shortened to ~80 characters")
    created_at: str
    updated_at: str = Field(description="The last turn's time")
    message_count: int


class SessionListOut(BaseModel):
    sessions: list[SessionOut] = Field(description="Most recent activity first")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


# What the store's check_title takes, declared for the OpenAPI document (the check's own message
# is what a client gets): not blank, no control characters, at most 200.
TITLE_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


class TitleIn(BaseModel):
    title: str = Field(description="1-200 characters of text",
                       json_schema_extra={"minLength": 1, "maxLength": 200, "pattern": TITLE_TEXT})


class DirectSessions(BaseModel):
    action: Literal["list_sessions", "get_session", "rename_session"]
    caller: Caller = "direct"
    session_id: SessionId | None = None
    title: str | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


def session_list_routes(store: SessionStore, deployed: bool) -> Router:
    router = CallerRouter(deployed)
    caller, deadline = router.caller, router.deadline

    @router.get("/sessions", summary="Your sessions, most recent activity first, a page at a time",
                responses={200: documented(SessionListOut, "Sessions, and the cursor of the next page"), **ERRORS})
    def list_sessions(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Sessions per page")] = 50,
        cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")] = None,
    ):
        page = store.list_sessions(caller(), limit, cursor, deadline())
        return json_response(200, SessionListOut(sessions=[SessionOut(**s) for s in page.sessions],
                                                 next_cursor=page.next_cursor))

    @router.get("/sessions/<session_id>", summary="One session: title, times, message count",
                responses={200: documented(SessionOut, "The session"), **ERRORS})
    def get_session(session_id: SessionIdPath):
        return json_response(200, SessionOut(**store.session_summary(caller(), session_id, deadline())))

    @router.patch("/sessions/<session_id>", summary="Rename the session",
                  responses={200: documented(SessionOut, "The session, renamed"), **ERRORS})
    def rename_session(session_id: SessionIdPath, body: TitleIn):
        return json_response(200, SessionOut(**store.rename(caller(), session_id, body.title, deadline())))

    return router


def direct_sessions(store: SessionStore, ask: DirectSessions, deadline: Deadline) -> dict[str, Any]:
    """The direct invocation actions list_sessions, get_session and rename_session."""
    from agent import InvalidRequest

    if ask.action == "list_sessions":
        page = store.list_sessions(ask.caller, ask.limit, ask.cursor, deadline)
        return {"sessions": page.sessions, "next_cursor": page.next_cursor}
    if ask.session_id is None:
        raise InvalidRequest("session_id is required.")
    if ask.action == "get_session":
        return store.session_summary(ask.caller, ask.session_id, deadline)
    return store.rename(ask.caller, ask.session_id, ask.title if ask.title is not None else "", deadline)
