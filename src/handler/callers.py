"""Who is calling: the namespace a request's sessions (and memory) live in.

- AWS_IAM: the principal's ARN; for Cognito identity-pool users, whose role ARN is the same for
  everyone, their identity id (``cognito:<id>``).
- JWT: the token's subject (``jwt:<sub>``), so no subject can pose as an ARN or as a synthetic
  caller (``direct``, ``sqs``, ``eventbridge``).
- Without an authorizer (`make dev`, `sam local`) everyone is ``local``; on deployed Lambda a
  request without an identity is refused rather than pooled with others.

A WebSocket connection is bound to its caller at $connect (the identity API Gateway verified
then); every later frame on it acts as that caller. Both are read through Powertools' event
data classes.
"""

from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, APIGatewayWebSocketEvent
from pydantic import StringConstraints, TypeAdapter, ValidationError

from agent import Deadline

from .error_table import ApiError
from .schemas import Caller

LOCAL_CALLER = "local"
DIRECT_CALLER = "direct"
SQS_CALLER = "sqs"
EVENTBRIDGE_CALLER = "eventbridge"
_CALLER = TypeAdapter(Caller)
# A JWT's subject is at most 255 characters (OpenID Connect Core 1.0, 2); a Cognito identity id
# is a region and a UUID. An IAM ARN may be longer (a 512-character path and a 64-character name).
_NAME = TypeAdapter(Annotated[str, StringConstraints(min_length=1, max_length=255)])


def http_caller(event: APIGatewayProxyEventV2, deployed: bool) -> str:
    """The caller of an HTTP API (payload 2.0) request."""
    authorizer = event.request_context.authorizer
    cognito_id, subject = authorizer.iam.cognito_identity_id, authorizer.jwt_claim.get("sub")
    return _first(cognito_id and f"cognito:{_checked(cognito_id, _NAME)}", authorizer.iam.user_arn,
                  subject and f"jwt:{_checked(subject, _NAME)}", deployed=deployed)


def websocket_caller(event: APIGatewayWebSocketEvent, deployed: bool) -> str:
    """The caller of a WebSocket $connect: IAM's identity, or what our JWT authorizer put in
    its context (``caller``)."""
    context = event.request_context
    identity = _mapping(context.get("identity"))  # the data class names only sourceIp and userAgent
    cognito_id = identity.get("cognitoIdentityId")
    from_token = _mapping(context.get("authorizer")).get("caller")
    if from_token is not None and not (isinstance(from_token, str) and from_token.startswith("jwt:")):
        raise ApiError(401, "unauthenticated", "The connection's identity is not one this API issues.")
    return _first(cognito_id and f"cognito:{_checked(cognito_id, _NAME)}", identity.get("userArn"), from_token,
                  deployed=deployed)


def _first(*candidates: Any, deployed: bool) -> str:
    for candidate in candidates:
        if candidate:
            return _checked(candidate)
    if deployed:
        raise ApiError(401, "unauthenticated", "This API needs a signed-in caller (AWS_IAM or JWT).")
    return LOCAL_CALLER


def _checked(value: Any, kind: TypeAdapter = _CALLER) -> str:
    """An identity field as a caller, or 400: a wrong type or invalid text is bad input, not a 500."""
    try:
        return kind.validate_python(value)  # a lone surrogate is refused too
    except ValidationError:
        raise ApiError(400, "invalid_request", "The request's identity fields are not valid text.") from None


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


class CallerRouter(Router):
    """A Powertools Router whose routes act for the HTTP request's caller, within the invocation's
    deadline (app.py puts it in the routers' context)."""

    def __init__(self, deployed: bool) -> None:
        super().__init__()
        self.deployed = deployed

    def caller(self) -> str:
        return http_caller(cast(APIGatewayProxyEventV2, self.current_event), self.deployed)

    def deadline(self) -> Deadline:
        return self.context["deadline"]
