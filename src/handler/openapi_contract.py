"""What the generated OpenAPI document must say beyond what Powertools writes from the routes, so
that it declares exactly what the server does (schemathesis checks it, tests/contract):

- a 204 has no body (Powertools gives every response a JSON content), and no route has Powertools'
  422 (a request it cannot validate is our 400);
- an optional query or header parameter is a string or absent, never JSON null (it cannot be sent);
- how callers sign in: AWS_IAM (SigV4) or a JWT bearer token, one of them per deployment;
- a method a path does not have is 405 with an Allow header, for every path.
"""

from typing import Any

SECURITY_SCHEMES = {
    "iam": {"type": "apiKey", "in": "header", "name": "Authorization",
            "description": "AuthMode=IAM (the default): a request signed with AWS Signature Version 4 for "
                           "execute-api:Invoke", "x-amazon-apigateway-authtype": "awsSigv4"},
    "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "AuthMode=JWT: a token of JwtIssuer for JwtAudience"},
}
METHOD_NOT_ALLOWED = {
    "description": "method_not_allowed, on every path, for a method it does not have; Allow lists those it has",
    "headers": {"Allow": {"schema": {"type": "string"}, "description": "The path's methods, as GET, POST"}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}


def contract(document: dict[str, Any]) -> dict[str, Any]:
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422")):  # Powertools' own; ours is 400
                del responses["422"]
            for status, response in responses.items():
                if status == "204":
                    response.pop("content", None)
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _not_null(parameter["schema"])
    components = document.setdefault("components", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        components.get("schemas", {}).pop(unused, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    components["responses"] = {"MethodNotAllowed": METHOD_NOT_ALLOWED}
    document["security"] = [{"iam": []}, {"jwt": []}]
    return document


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` as X (keeping the title, description and default)."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**kept[0], **rest}
