"""The HTTP API (payload format 2.0): one function per route, validated by Powertools from the
declared models (schemas.py), errors turned into JSON in one place. The OpenAPI document is
generated from these routes (`make openapi` → docs/openapi.json)."""

import re
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel

from agent import Deadline

from .callers import http_caller
from .error_table import ApiError, as_api_error, json_text
from .schemas import (
    FACT_ID_PATTERN,
    FIELD_HINTS,
    IDEMPOTENCY_KEY_PATTERN,
    SESSION_ID_PATTERN,
    TURN_ID_PATTERN,
    AcceptedTurnOut,
    ErrorOut,
    FactsOut,
    HistoryOut,
    MessageIn,
    ReplyOut,
    TurnStatusOut,
)
from .turn_service import TurnRequest

if TYPE_CHECKING:
    from .composition import Services

TITLE = "Stateful agent"
VERSION = "1.0"
SessionIdPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="Your name for the conversation")]


def _documented(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


ERRORS = {
    400: _documented(ErrorOut, "invalid_json or invalid_request: nothing was stored"),
    404: _documented(ErrorOut, "session_not_found, turn_not_found, fact_not_found or not_found"),
    409: _documented(ErrorOut, "session_busy: another request is working on this session (Retry-After)"),
    422: _documented(ErrorOut, "idempotency_key_reused: the key was used before with another message"),
    429: _documented(ErrorOut, "model_throttled: the model provider is rate limiting (Retry-After)"),
    502: _documented(ErrorOut, "model_error or model_unreachable: nothing was stored"),
    503: _documented(ErrorOut, "model_not_configured, store_unavailable or queue_unavailable"),
    504: _documented(ErrorOut, "turn_timeout: cancelled before the function's timeout, nothing stored"),
}
NO_CONTENT = {204: {"description": "Done"}}


def http_api(services: "Services") -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    conversations, turns = services.conversations, services.turns

    def caller() -> str:
        return http_caller(app.current_event.raw_event.get("requestContext"), services.deployed)

    def deadline() -> Deadline:
        return app.context["deadline"]

    @app.post("/sessions/<session_id>/messages", summary="Send a message; get the agent's reply",
              responses={200: _documented(ReplyOut, "The reply, stored with the message"),
                         202: _documented(AcceptedTurnOut, "Queued (Prefer: respond-async)"), **ERRORS})
    def post_message(
        session_id: SessionIdPath,
        body: MessageIn,
        idempotency_key: Annotated[str | None, Header(alias="idempotency-key", pattern=IDEMPOTENCY_KEY_PATTERN,
                                                      description="A retry with the same key replays the first reply")] = None,
        prefer: Annotated[str | None, Header(description="respond-async: queue the turn, answer 202 at once")] = None,
    ):
        request = TurnRequest(caller(), session_id, body.message, idempotency_key)
        if _wants_async(prefer):
            accepted = turns.enqueue(request, deadline())
            location = f"/sessions/{session_id}/turns/{accepted['turn_id']}"
            out = AcceptedTurnOut(session_id=session_id, turn_id=accepted["turn_id"], status="queued", location=location)
            return _json(202, out, {"Location": location, "Preference-Applied": "respond-async"})
        return _json(200, ReplyOut(**turns.run(request, deadline())))

    @app.get("/sessions/<session_id>/messages", summary="A page of the session's history, oldest first",
             responses={200: _documented(HistoryOut, "Messages, and the cursor of the next page"), **ERRORS})
    def get_messages(
        session_id: SessionIdPath,
        limit: Annotated[int, Query(ge=1, le=1000, description="Messages per page (a page is also capped at ~5 MB)")] = 100,
        cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")] = None,
    ):
        page = conversations.history(caller(), session_id, deadline(), cursor=cursor, limit=limit)
        return _json(200, HistoryOut(session_id=page.session_id, messages=[vars(m) for m in page.messages],
                                     next_cursor=page.next_cursor))

    @app.delete("/sessions/<session_id>", summary="Delete the session (its next turn starts fresh)",
                responses={**NO_CONTENT, **ERRORS})
    def delete_session(session_id: SessionIdPath):
        conversations.delete(caller(), session_id, deadline())
        return Response(status_code=204, body="")

    @app.get("/sessions/<session_id>/turns/<turn_id>", summary="A queued turn's status, and its reply when done",
             responses={200: _documented(TurnStatusOut, "queued, running, done (with reply) or failed (with error)"),
                        **ERRORS})
    def get_turn(session_id: SessionIdPath,
                 turn_id: Annotated[str, Path(pattern=TURN_ID_PATTERN)]):
        status = TurnStatusOut(**turns.status(caller(), session_id, turn_id, deadline()))
        return _json(200, status, omit_empty=True)  # "reply" when done, "error" when failed

    @app.get("/memory", summary="The facts your agent remembers across your sessions (MEMORY=on)",
             responses={200: _documented(FactsOut, "Oldest first"), **ERRORS})
    def get_memory():
        facts = conversations.facts(caller(), deadline())
        return _json(200, FactsOut(facts=[vars(f) for f in facts]))

    @app.delete("/memory", summary="Forget everything about me", responses={**NO_CONTENT, **ERRORS})
    def forget_everything():
        conversations.forget_everything(caller(), deadline())
        return Response(status_code=204, body="")

    @app.delete("/memory/<fact_id>", summary="Forget one fact", responses={**NO_CONTENT, **ERRORS})
    def forget_fact(fact_id: Annotated[str, Path(pattern=FACT_ID_PATTERN)]):
        conversations.forget(caller(), fact_id, deadline())
        return Response(status_code=204, body="")

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response:
        return _error(_validation_error(error))

    @app.exception_handler(Exception)
    def failed(error: Exception) -> Response:
        return _error(as_api_error(error))

    @app.not_found
    def no_route(_: NotFoundError) -> Response:
        path, method = app.current_event.path, app.current_event.http_method
        allowed = allowed_methods(app, path)
        if allowed:
            message = f"{method} is not allowed on {path}; use {', '.join(allowed)}."
            return _error(ApiError(405, "method_not_allowed", message), {"Allow": ", ".join(allowed)})
        return _error(ApiError(404, "not_found", f"No route for {method} {path}."))

    return app


def as_json_request(event: dict) -> dict:
    """Every body is read as JSON: a client that leaves out or misstates the content type (plain
    `curl -d` sends form encoding) gets its JSON read, or 400 invalid_json; never a form parser."""
    headers = event.get("headers")
    if isinstance(headers, dict) and "content-type" in headers:
        return {**event, "headers": {**headers, "content-type": "application/json"}}
    return event


def routes(app: APIGatewayHttpResolver) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) of every route, from the generated OpenAPI document."""
    return _routes(app)


@cache
def _routes(app: APIGatewayHttpResolver) -> frozenset[tuple[str, str]]:
    paths = app.get_openapi_schema(title=TITLE, version=VERSION).paths or {}
    methods = ("get", "put", "post", "delete", "patch")
    return frozenset((method.upper(), path) for path, item in paths.items() for method in methods
                     if getattr(item, method, None) is not None)


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods of the route whose template matches ``path`` (the 405's Allow list)."""
    return sorted(method for method, template in routes(app)
                  if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path))


def openapi_json(app: APIGatewayHttpResolver) -> str:
    return app.get_openapi_json_schema(title=TITLE, version=VERSION, description=(
        "A Strands agent that remembers conversations. Every route needs a signed-in caller "
        "(AWS_IAM or JWT), whose identity namespaces the sessions and the memory."))


def _wants_async(prefer: str | None) -> bool:
    return bool(prefer) and "respond-async" in (p.split(";")[0].strip().lower() for p in prefer.split(","))


def _json(status: int, body: BaseModel, headers: dict[str, str] | None = None, omit_empty: bool = False) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=body.model_dump_json(exclude_none=omit_empty), headers=headers or {})


def _error(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON,
                    body=json_text(error.body()), headers={**error.headers(), **(headers or {})})


def _validation_error(error: RequestValidationError) -> ApiError:
    """Powertools' validation errors as today's contract: 400 invalid_json, or invalid_request
    naming the field."""
    problems = error.errors()
    first = problems[0] if problems else {}
    location = [str(part) for part in first.get("loc", ())]
    if first.get("type") == "json_invalid" or location == ["body"] and first.get("type") == "missing":
        return ApiError(400, "invalid_json", 'The body must be JSON like {"message": "..."}.')
    if location == ["body"]:
        return ApiError(400, "invalid_request", 'The body must be a JSON object like {"message": "..."}.')
    field = location[-1] if location else ""
    hint = FIELD_HINTS.get(field) or f"{'.'.join(location[1:]) or 'The request'}: {first.get('msg', 'is not valid')}."
    return ApiError(400, "invalid_request", hint)
