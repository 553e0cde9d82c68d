"""The HTTP API (payload format 2.0): the routers of sessions and memory under one resolver,
validated by Powertools from the declared models (schemas.py), errors turned into JSON in one
place. The OpenAPI document is generated from these routes (`make openapi` → docs/openapi.json)."""

import base64
import json
import re
from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from agent import CallerMemory, Conversations, TurnTimedOut

from .cancel_routes import cancel_routes
from .error_table import ApiError, as_api_error
from .http_answers import error_response
from .memory_routes import memory_routes
from .openapi_contract import contract
from .schemas import hint
from .session_list_routes import session_list_routes
from .session_routes import session_routes, wants_async
from .turn_service import TurnService
from .usage_routes import usage_routes

TITLE = "Stateful agent"
VERSION = "1.0"
# A synchronous turn that ran out of time fails the same way when retried: say what works instead.
LONG_TURNS = ("A synchronous request ends at API Gateway's 30 s: for a longer turn send the header "
              "`Prefer: respond-async` (202, then GET its Location) or send it over the WebSocket API.")
NOT_TEXT = ApiError(400, "invalid_request", 'The body is not UTF-8 text; send JSON like {"message": "..."} in UTF-8.')


def http_api(turns: TurnService, conversations: Conversations, memory: CallerMemory, deployed: bool,
             max_message_chars: int) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    app.include_router(session_routes(turns, conversations, deployed, max_message_chars))
    app.include_router(memory_routes(memory, deployed))
    app.include_router(usage_routes(turns.usage, deployed))
    app.include_router(cancel_routes(turns, deployed))
    app.include_router(session_list_routes(conversations.store, deployed))

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response:
        return error_response(_validation_error(error))

    @app.exception_handler(Exception)
    def failed(error: Exception) -> Response:
        if isinstance(error, ValueError) and not readable_body(app.current_event):
            return error_response(NOT_TEXT)  # Powertools decodes the body as it validates it
        if isinstance(error, TurnTimedOut) and is_synchronous_turn(app.current_event):
            return error_response(ApiError(504, error.code, f"{error.message.removesuffix(' Retry.')} {LONG_TURNS}"))
        return error_response(as_api_error(error))

    @app.not_found
    def no_route(_: NotFoundError) -> Response:
        path, method = app.current_event.path, app.current_event.http_method
        allowed = allowed_methods(app, path)
        if method in allowed:  # the route's, with a parameter Powertools does not route (a control character...)
            return error_response(ApiError(400, "invalid_request", parameter_hint(app, method, path)))
        if allowed:
            message = f"{method} is not allowed on {path}; use {', '.join(allowed)}."
            return error_response(ApiError(405, "method_not_allowed", message), {"Allow": ", ".join(allowed)})
        return error_response(ApiError(404, "not_found", f"No route for {method} {path}."))

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
    return set(_routes(app))


@cache
def _routes(app: APIGatewayHttpResolver) -> frozenset[tuple[str, str]]:
    paths = app.get_openapi_schema(title=TITLE, version=VERSION).paths or {}
    methods = ("get", "put", "post", "delete", "patch")
    return frozenset((method.upper(), path) for path, item in paths.items() for method in methods
                     if getattr(item, method, None) is not None)


def parameter_hint(app: APIGatewayHttpResolver, method: str, path: str) -> str:
    """What is wrong with the path's parameters, in the words of their rule."""
    for route_method, template in routes(app):
        match = re.fullmatch(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template), path)
        if route_method == method and match:
            return " ".join(hint(name, "") or f"{name} is not valid." for name in match.groupdict())
    return "The path is not valid."


def is_synchronous_turn(event: BaseProxyEvent) -> bool:
    return event.http_method == "POST" and event.path.endswith("/messages") \
        and not wants_async(event.headers.get("prefer"))


def readable_body(event: BaseProxyEvent) -> bool:
    """Whether the body is text: API Gateway sends one that is not UTF-8 as base64."""
    if not event.is_base64_encoded or not event.body:
        return True
    try:
        base64.b64decode(event.body).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError
        return False
    return True


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods of the route whose template matches ``path`` (the 405's Allow list)."""
    return sorted(method for method, template in routes(app)
                  if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path))


def openapi_json(app: APIGatewayHttpResolver) -> str:
    document = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION, description=(
        "A Strands agent that remembers conversations. Every route needs a signed-in caller "
        "(AWS_IAM or JWT), whose identity namespaces the sessions and the memory. A method a path "
        "does not have is 405 method_not_allowed, with an Allow header (components.responses). "
        "Cursors are opaque: pass next_cursor back as it was.")))
    return json.dumps(contract(document), indent=2, ensure_ascii=False)


def _validation_error(error: RequestValidationError) -> ApiError:
    """Powertools' validation errors as today's contract: 400 invalid_json, or invalid_request
    naming the field (in the same words as every other source's)."""
    problems = error.errors()
    first = problems[0] if problems else {}
    location = [str(part) for part in first.get("loc", ())]
    if first.get("type") == "json_invalid" or location == ["body"] and first.get("type") == "missing":
        return ApiError(400, "invalid_json", 'The body must be JSON like {"message": "..."}.')
    if location == ["body"]:
        return ApiError(400, "invalid_request", 'The body must be a JSON object like {"message": "..."}.')
    field = location[-1] if location else ""
    detail = f"{'.'.join(location[1:]) or 'The request'}: {first.get('msg', 'is not valid')}."
    return ApiError(400, "invalid_request", hint(field, str(first.get("type", ""))) or detail)
