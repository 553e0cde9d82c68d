"""The HTTP API and the WebSocket API: routes, who may call them, and what they invoke."""

import pytest

from tests.template.stack import ALTERNATIVE, AUTHORIZER, ISSUER, Stack

ROUTES = {
    ("POST", "/sessions/{session_id}/messages"),
    ("GET", "/sessions/{session_id}/messages"),
    ("DELETE", "/sessions/{session_id}"),
    ("GET", "/sessions/{session_id}/turns/{turn_id}"),
    ("GET", "/sessions/{session_id}/state"),
    ("GET", "/memory"),
    ("DELETE", "/memory"),
    ("DELETE", "/memory/{fact_id}"),
    ("GET", "/usage"),
    ("DELETE", "/sessions/{session_id}/turns/{turn_id}"),
    ("GET", "/sessions"),
    ("GET", "/sessions/{session_id}"),
    ("PATCH", "/sessions/{session_id}"),
}
WEBSOCKET_ROUTES = {"$connect", "$disconnect", "sendMessage", "$default", "cancelTurn"}


def body(stack: Stack) -> dict:
    return stack.properties("AgentApi")["Body"]


# ---- HTTP API -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["IAM", "JWT"])
def test_every_route_needs_a_signed_in_caller_and_reaches_the_alias(transformed: dict, alias: str, mode: str) -> None:
    stack = Stack(transformed, **(ALTERNATIVE if mode == "JWT" else {}))
    operations = {(method.upper(), path): op for path, item in body(stack)["paths"].items()
                  for method, op in item.items()}
    scheme = "JwtAuthorizer" if mode == "JWT" else "AWS_IAM"

    assert set(operations) == ROUTES
    for route, operation in operations.items():
        assert operation["security"] == [{scheme: []}], route
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["payloadFormatVersion"] == "2.0"
        assert f"${{{alias}}}" in integration["uri"]["Fn::Sub"], "routes must invoke the alias"
    assert list(body(stack)["components"]["securitySchemes"]) == [scheme]
    assert all(r["Properties"]["ApiId"] == {"Ref": "WebSocketApi"}
               for r in stack.of_type("AWS::ApiGatewayV2::Route").values()), \
        "every HTTP route must come from the secured body"


def test_every_http_route_is_a_function_event(template: dict) -> None:
    """SAM makes an integration (and an invoke permission) only for routes that are also events."""
    events = template["Resources"]["AgentFunction"]["Properties"]["Events"].values()
    http = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}
    assert http == ROUTES
    assert all(e["Properties"]["PayloadFormatVersion"] == "2.0" for e in events if e["Type"] == "HttpApi")


def test_iam_and_jwt_schemes_are_the_ones_api_gateway_knows(defaults: Stack, alternative: Stack) -> None:
    iam = body(defaults)["components"]["securitySchemes"]["AWS_IAM"]
    jwt = body(alternative)["components"]["securitySchemes"]["JwtAuthorizer"]

    assert iam["x-amazon-apigateway-authtype"] == "awsSigv4"
    authorizer = jwt["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {"issuer": ISSUER, "audience": ["web-client", "cli-client"]}


def test_jwt_mode_refuses_to_deploy_without_issuer_and_audience(template: dict) -> None:
    rule = template["Rules"]["JwtNeedsIssuerAndAudience"]
    checked = str(rule["Assertions"])
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}
    assert "JwtIssuer" in checked and "JwtAudience" in checked


def test_cors_only_for_the_listed_origins(defaults: Stack, alternative: Stack) -> None:
    assert "x-amazon-apigateway-cors" not in body(defaults)

    cors = body(alternative)["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == ["https://app.example.com"]
    assert {"authorization", "content-type", "idempotency-key", "prefer"} <= set(cors["allowHeaders"])
    assert {"GET", "POST", "DELETE"} <= set(cors["allowMethods"])
    assert {"location", "retry-after"} <= set(cors["exposeHeaders"])


def test_http_api_is_throttled_and_access_logs_can_be_switched_off(defaults: Stack, alternative: Stack) -> None:
    stage = "AgentApiApiGatewayDefaultStage"
    assert defaults.properties(stage)["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": "50", "ThrottlingBurstLimit": "100"}
    assert "AccessLogSettings" in defaults.properties(stage)
    assert "ApiAccessLogGroup" in defaults.resources
    assert "AccessLogSettings" not in alternative.properties(stage)
    assert "ApiAccessLogGroup" not in alternative.resources


# ---- WebSocket API --------------------------------------------------------------------------


def websocket_routes(stack: Stack) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in stack.of_type("AWS::ApiGatewayV2::Route").values()
            if r["Properties"]["ApiId"] == {"Ref": "WebSocketApi"}}


@pytest.mark.parametrize("values", [{}, ALTERNATIVE], ids=["defaults", "alternative"])
def test_every_websocket_route_reaches_the_alias(transformed: dict, alias: str, values: dict) -> None:
    stack = Stack(transformed, **values)
    integration = stack.properties("WebSocketIntegration")

    assert integration["IntegrationType"] == "AWS_PROXY"
    text, variables = integration["IntegrationUri"]["Fn::Sub"]
    assert text.endswith(":lambda:path/2015-03-31/functions/${Alias}/invocations")
    assert variables == {"Alias": {"Ref": alias}}
    for route in websocket_routes(stack).values():
        assert route["Target"] == {"Fn::Sub": "integrations/${WebSocketIntegration}"}


def test_websocket_connect_is_signed_with_iam(defaults: Stack) -> None:
    routes = websocket_routes(defaults)

    assert routes["$connect"]["AuthorizationType"] == "AWS_IAM"
    assert "AuthorizerId" not in routes["$connect"]
    assert AUTHORIZER not in defaults.resources and "WebSocketAuthorizer" not in defaults.resources
    # API Gateway authorizes a WebSocket once, on $connect; it accepts no authorization elsewhere.
    assert {key: r["AuthorizationType"] for key, r in routes.items() if key != "$connect"} == {
        "$disconnect": "NONE", "sendMessage": "NONE", "$default": "NONE", "cancelTurn": "NONE"}


def test_websocket_connect_checks_the_jwt_from_the_query_string(alternative: Stack) -> None:
    connect = websocket_routes(alternative)["$connect"]
    authorizer = alternative.properties("WebSocketAuthorizer")
    permission = alternative.properties("WebSocketAuthorizerPermission")

    assert connect["AuthorizationType"] == "CUSTOM"
    assert connect["AuthorizerId"] == {"Ref": "WebSocketAuthorizer"}
    assert authorizer["AuthorizerType"] == "REQUEST"
    # browsers cannot set headers on a WebSocket
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
    assert "${WebSocketAuthorizerFunction.Arn}/invocations" in authorizer["AuthorizerUri"]["Fn::Sub"]
    assert permission["FunctionName"] == {"Fn::GetAtt": [AUTHORIZER, "Arn"]}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${WebSocketApi}/authorizers/${WebSocketAuthorizer}")


def test_only_this_websocket_api_may_invoke_the_alias(defaults: Stack, alias: str) -> None:
    permission = defaults.properties("WebSocketInvokePermission")

    assert permission["FunctionName"] == {"Ref": alias}
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::Sub": "arn:aws:execute-api:us-east-1:123456789012:${WebSocketApi}/*"}


def test_websocket_stage_deploys_itself_throttled(defaults: Stack) -> None:
    stage = defaults.resources["WebSocketStage"]

    assert stage["Properties"]["AutoDeploy"] is True
    assert stage["Properties"]["DefaultRouteSettings"] == {"ThrottlingRateLimit": "50", "ThrottlingBurstLimit": "100"}
    assert set(stage["DependsOn"]) == {name for name, r in defaults.of_type("AWS::ApiGatewayV2::Route").items()
                                       if r["Properties"]["ApiId"] == {"Ref": "WebSocketApi"}}
    assert "LoggingLevel" not in stage["Properties"].get("DefaultRouteSettings", {}), \
        "no execution logs: they would hold message bodies"


def test_websocket_access_logs_follow_enable_access_logs(transformed: dict, defaults: Stack) -> None:
    """WebSocket access logs need the account's API Gateway logging role: set here unless it exists."""
    logs = defaults.properties("WebSocketStage")["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": ["WebSocketAccessLogGroup", "Arn"]}
    assert "$context.connectionId" in logs["Format"] and "$context.eventType" in logs["Format"]
    assert defaults.properties("ApiGatewayAccount")["CloudWatchRoleArn"] == {
        "Fn::GetAtt": ["ApiGatewayLogsRoleForAccount", "Arn"]}
    assert "ApiGatewayAccount" in defaults.properties("WebSocketStage")["Description"]["Fn::Sub"], \
        "the stage must wait for the account setting"
    role = defaults.resources["ApiGatewayLogsRoleForAccount"]
    assert role["DeletionPolicy"] == "Retain", "other APIs of the account may log through it"
    assert role["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]

    existing = Stack(transformed, ApiGatewayLogsRole="existing")
    assert "ApiGatewayAccount" not in existing.resources
    assert "AccessLogSettings" in existing.properties("WebSocketStage")
    off = Stack(transformed, EnableAccessLogs="false")
    assert "AccessLogSettings" not in off.properties("WebSocketStage")
    assert not {"WebSocketAccessLogGroup", "ApiGatewayAccount", "ApiGatewayLogsRoleForAccount"} & set(off.resources)


