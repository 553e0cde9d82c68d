"""The events API Gateway and SQS send a function, built from local requests.

The HTTP routes (for routeKey and pathParameters) come from docs/openapi.json, the document
generated from the app's routes, and the WebSocket routes from template.yaml, so the twin never
keeps a list of its own.
"""

import json
import re
import time
import uuid
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.json"
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"


@cache
def routes() -> list[tuple[str, str]]:
    """(METHOD, /path/{param}) of every route of the HTTP API."""
    paths = json.loads(OPENAPI.read_text())["paths"]
    return sorted((method.upper(), path) for path, item in paths.items() for method in item)


@cache
def websocket_routes() -> frozenset[str]:
    """The route keys of the WebSocket API ($connect, $disconnect, $default and the actions).

    Read with a pattern rather than a YAML parser: the template's CloudFormation tags (!Ref, !Sub)
    need a loader of their own, and a RouteKey is always a plain scalar.
    """
    return frozenset(re.findall(r"^\s+RouteKey:\s*['\"]?([^\s'\"]+)", TEMPLATE.read_text(), re.M))


def route_of(method: str, path: str) -> tuple[str, dict[str, str]]:
    for route_method, template in routes():
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        match = re.fullmatch(pattern, path)
        if match and route_method == method:
            return f"{method} {template}", match.groupdict()
    return "$default", {}


def http_api_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    """An HTTP API payload format 2.0 event (as `sam local start-api` builds it)."""
    url = urlsplit(target)
    route_key, path_parameters = route_of(method, url.path)
    now = time.time()
    lowered = {name.lower(): value for name, value in headers.items()}
    # Payload 2.0 moves the Cookie header to a list of its own.
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": method, "path": url.path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": lowered.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if url.query:
        event["queryStringParameters"] = joined(parse_qsl(url.query, keep_blank_values=True))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    return event


def joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Repeated names as payload 2.0 has them: one value, joined by commas."""
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return {name: ",".join(found) for name, found in values.items()}


def websocket_event(route_key: str, connection_id: str, body: str | None = None, *, domain: str,
                    stage: str = "local", identity: dict | None = None, authorizer: dict | None = None,
                    query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                    disconnect: tuple[int, str] = (1000, "Client closed the connection")) -> dict:
    """A WebSocket API event: $connect, $disconnect, or a message routed by its "action"."""
    now = time.time()
    request_time = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    context = {
        "routeKey": route_key, "eventType": kind, "messageDirection": "IN", "stage": stage,
        "connectionId": connection_id, "domainName": domain, "apiId": "local", "requestId": str(uuid.uuid4()),
        "extendedRequestId": str(uuid.uuid4()), "requestTime": request_time,
        "requestTimeEpoch": int(now * 1000), "connectedAt": int(now * 1000),
        "identity": {"sourceIp": "127.0.0.1", **(identity or {})},
    }
    if authorizer:
        context["authorizer"] = authorizer
    event: dict = {"requestContext": context, "isBase64Encoded": False}
    if kind == "MESSAGE":
        context["messageId"] = str(uuid.uuid4())
        event["body"] = body
    elif kind == "CONNECT":
        event["headers"] = headers or {}
        event["multiValueHeaders"] = {name: [value] for name, value in (headers or {}).items()}
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = {name: [value] for name, value in query.items()}
    else:
        context.update(disconnectStatusCode=disconnect[0], disconnectReason=disconnect[1])
        event["headers"] = headers or {}
        event["multiValueHeaders"] = {}
    return event


def sqs_event(records: list[dict], queue_arn: str) -> dict:
    """The event Lambda's SQS event source mapping sends: ``records`` are {"id", "body", ...}."""
    now = str(int(time.time() * 1000))
    return {"Records": [{
        "messageId": record["id"], "receiptHandle": record.get("receipt", record["id"]), "body": record["body"],
        "attributes": {"ApproximateReceiveCount": str(record.get("receive_count", 1)), "SentTimestamp": now,
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": now,
                       **({"MessageGroupId": record["group"]} if "group" in record else {})},
        "messageAttributes": {}, "md5OfBody": record.get("md5", "0" * 32), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": queue_arn.split(":")[3],
    } for record in records]}
