"""The HTTP API (payload format 2.0): the routers of sessions and memory under one resolver,
validated by Powertools from the declared models (schemas.py), errors turned into JSON in one
place. The OpenAPI document is generated from these routes (`make openapi` → docs/openapi.json)."""

import re
from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from agent import CallerMemory, Conversations

from .error_table import ApiError, as_api_error
from .http_answers import error_response
from .memory_routes import memory_routes
from .schemas import hint
from .session_list_routes import session_list_routes
from .session_routes import session_routes
from .turn_service import TurnService

TITLE = "Stateful agent"
VERSION = "1.0"


def http_api(turns: TurnService, conversations: Conversations, memory: CallerMemory, deployed: bool,
             max_message_chars: int) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    app.include_router(session_routes(turns, conversations, deployed, max_message_chars))
    app.include_router(memory_routes(memory, deployed))
    app.include_router(session_list_routes(conversations.store, deployed))

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response:
        return error_response(_validation_error(error))

    @app.exception_handler(Exception)
    def failed(error: Exception) -> Response:
        return error_response(as_api_error(error))

    @app.not_found
    def no_route(_: NotFoundError) -> Response:
        path, method = app.current_event.path, app.current_event.http_method
        allowed = allowed_methods(app, path)
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


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods of the route whose template matches ``path`` (the 405's Allow list)."""
    return sorted(method for method, template in routes(app)
                  if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", template), path))


def openapi_json(app: APIGatewayHttpResolver) -> str:
    return app.get_openapi_json_schema(title=TITLE, version=VERSION, description=(
        "A Strands agent that remembers conversations. Every route needs a signed-in caller "
        "(AWS_IAM or JWT), whose identity namespaces the sessions and the memory."))


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
