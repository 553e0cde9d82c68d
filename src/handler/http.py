"""The HTTP API (payload format 2.0): one function per route, errors turned into JSON in one place."""

import json
import os
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from .errors import ApiError, as_api_error, error_body, error_headers
from .observability import logger
from .requests import session_id_of, turn_request
from .turns import conversations, run_turn, settings

app = APIGatewayHttpResolver()

# Every path the API serves, with the methods it allows there: a known path with another
# method is a 405, not a 404.
ROUTES = {
    re.compile(r"/sessions/[^/]+/messages"): ("GET", "POST"),
    re.compile(r"/sessions/[^/]+"): ("DELETE",),
}
LOCAL_CALLER = "local"


@app.post("/sessions/<session_id>/messages")
def post_message(session_id: str) -> dict[str, Any]:
    request = turn_request(
        caller=caller(),
        session_id=session_id,
        body=json_body(),
        max_chars=settings.max_message_chars,
        idempotency_key=app.current_event.headers.get("idempotency-key"),
    )
    return run_turn(request)


@app.get("/sessions/<session_id>/messages")
def get_messages(session_id: str) -> dict[str, Any]:
    session_id = session_id_of(session_id)
    logger.append_keys(session_id=session_id)
    history = conversations.history(caller(), session_id)
    return {
        "session_id": session_id,
        "messages": [
            {"index": m.index, "role": m.role, "text": m.text, "created_at": m.created_at} for m in history
        ],
    }


@app.delete("/sessions/<session_id>")
def delete_session(session_id: str) -> Response:
    session_id = session_id_of(session_id)
    logger.append_keys(session_id=session_id)
    conversations.delete(caller(), session_id)
    return Response(status_code=204, body="")


@app.not_found
def no_route(_: NotFoundError) -> Response:
    path, method = app.current_event.path, app.current_event.http_method
    allowed = next((methods for pattern, methods in ROUTES.items() if pattern.fullmatch(path)), None)
    if allowed:
        error = ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}; use {', '.join(allowed)}.")
        return json_error(error, {"Allow": ", ".join(allowed)})
    return json_error(ApiError(404, "not_found", f"No route for {method} {path}."))


@app.exception_handler(Exception)
def any_error(error: Exception) -> Response:
    return json_error(as_api_error(error))


def json_error(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(error)),
        headers={**error_headers(error), **(headers or {})},
    )


def json_body() -> Any:
    try:
        return json.loads(app.current_event.decoded_body or "")
    except ValueError:
        raise ApiError(400, "invalid_json", 'The body must be JSON like {"message": "..."}.') from None


def caller() -> str:
    """The store namespace of the signed-in caller.

    - AWS_IAM: the principal's ARN; for Cognito identity-pool users, whose role ARN is the same
      for everyone, their identity id (``cognito:<id>``).
    - JWT: the token's subject (``jwt:<sub>``), so no subject can pose as an ARN or as the
      synthetic callers below.
    Without an authorizer (`make dev`, `sam local`) everyone is the caller "local"; on real
    Lambda a request without an identity is refused rather than pooled with others.
    """
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    cognito_id = (iam.get("cognitoIdentity") or {}).get("identityId")
    subject = ((authorizer.get("jwt") or {}).get("claims") or {}).get("sub")
    if cognito_id:
        return f"cognito:{cognito_id}"
    if iam.get("userArn"):
        return iam["userArn"]
    if subject:
        return f"jwt:{subject}"
    if on_deployed_lambda():
        raise ApiError(401, "unauthenticated", "This API needs a signed-in caller (AWS_IAM or JWT).")
    return LOCAL_CALLER


def on_deployed_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and os.environ.get("AWS_SAM_LOCAL") != "true"
