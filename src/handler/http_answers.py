"""What every HTTP route answers with: JSON bodies of the declared models, errors as
``{"error": {...}}``, and the error statuses the OpenAPI document lists for each route."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from .error_table import ApiError, json_text
from .schemas import SESSION_ID_PATTERN, ErrorOut, GatewayRefusalOut, RefusedOut

SessionIdPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="Your name for the conversation")]


def documented(model: type[BaseModel], description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


ERRORS: dict[int, OpenAPIResponse] = {
    400: documented(ErrorOut, "invalid_json or invalid_request: nothing was stored"),
    # API Gateway's own refusals (JWT: 401 {"message": "Unauthorized"}; AWS_IAM: 403), or the
    # function's 401 unauthenticated for a request that reached it with no identity.
    401: documented(RefusedOut, "Not signed in: API Gateway's JWT authorizer, or unauthenticated"),
    403: documented(GatewayRefusalOut, "AWS_IAM: the request is not signed, or not allowed to invoke the API"),
    404: documented(ErrorOut, "session_not_found, turn_not_found or fact_not_found"),
    409: documented(ErrorOut, "session_busy: another request is working on this session (Retry-After); "
                         "approval_pending: a tool call waits for approval (answer it with interrupt_responses)"),
    413: documented(RefusedOut, "The body is over API Gateway's 10 MB: nothing was stored"),
    422: documented(ErrorOut, "idempotency_key_reused: the key was used before with another message"),
    429: documented(ErrorOut, "model_throttled: the model provider is rate limiting (Retry-After)"),
    502: documented(ErrorOut, "model_error, model_unreachable or output_invalid: nothing was stored"),
    503: documented(ErrorOut, "model_not_configured, store_unavailable or queue_unavailable"),
    504: documented(ErrorOut, "turn_timeout: cancelled before the function's timeout, nothing stored"),
}
NO_CONTENT: dict[int, OpenAPIResponse] = {204: {"description": "Done"}}


def errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """The error statuses a route can answer (400, 401 and 403 on every one), documented."""
    return {status: ERRORS[status] for status in sorted({400, 401, 403, *statuses})}


def json_response(status: int, body: BaseModel, headers: dict[str, str] | None = None,
                  omit_empty: bool = False) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=body.model_dump_json(exclude_none=omit_empty), headers=headers or {})


def no_content() -> Response:
    return Response(status_code=204, body="")


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=error.status, content_type=content_types.APPLICATION_JSON,
                    body=json_text(error.body()), headers={**error.headers(), **(headers or {})})
