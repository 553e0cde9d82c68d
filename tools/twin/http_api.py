"""The HTTP API: each request becomes a payload format 2.0 event for AgentFunction, and the
function's answer becomes the response, as API Gateway's Lambda proxy integration does.

What API Gateway adds around the function, the twin adds too: the 30 s integration timeout
(503), 502 when the function fails (raised, crashed or timed out), 413 past Lambda's 6 MB
request limit, and the apigw-requestid header.
"""

import asyncio
import base64
import json
from typing import Any

from aiohttp import web

from .containers import Outcome, Pool
from .events import http_api_event
from .terminal import Terminal

INTEGRATION_TIMEOUT_SECONDS = 30.0
MAX_EVENT_BYTES = 6 * 1024 * 1024
MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's payload limit; aiohttp answers 413 beyond it
# Set on a request whose terminal line this module wrote (the server writes the others').
HAS_LINE = web.RequestKey("has_line", bool)


class HttpApi:
    def __init__(self, pool: Pool, terminal: Terminal, timeout: float = INTEGRATION_TIMEOUT_SECONDS) -> None:
        self.pool, self.terminal, self.timeout = pool, terminal, timeout

    async def handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        body = await request.read()
        headers = {name: ",".join(request.headers.getall(name)) for name in request.headers}
        event = http_api_event(request.method, request.raw_path, headers, body, request.remote or "127.0.0.1")
        request_id = event["requestContext"]["requestId"]
        session = (event.get("pathParameters") or {}).get("session_id")
        response, note = await self._answer(event, request_id)
        request[HAS_LINE] = True
        self.terminal.request(f"{request.method} {request.rel_url.path}", response.status, loop.time() - started,
                              session, note)
        return response

    async def _answer(self, event: dict[str, Any], request_id: str) -> tuple[web.Response, str]:
        if len(json.dumps(event).encode()) > MAX_EVENT_BYTES:
            return _message(413, "Request Entity Too Large", request_id), "over Lambda's 6 MB request limit"
        invocation = asyncio.ensure_future(self.pool.invoke(event))
        try:
            # The function goes on after API Gateway gives up on it, holding its container.
            outcome = await asyncio.wait_for(asyncio.shield(invocation), self.timeout)
        except TimeoutError:
            return _message(503, "Service Unavailable", request_id), f"no answer in {self.timeout:.0f} s"
        except asyncio.CancelledError:
            if not invocation.cancelled():  # this request was cancelled, not its invocation
                raise
            return _message(502, "Internal Server Error", request_id), "the twin is stopping"
        return response_of(outcome, request_id)


def response_of(outcome: Outcome, request_id: str) -> tuple[web.Response, str]:
    if outcome.failed:
        error = outcome.error or {}
        where = f" ({error['where']})" if error.get("where") else ""
        return _message(502, "Internal Server Error", request_id), \
            f"function error {error.get('errorType')}: {_first_line(error.get('errorMessage'))}{where}"
    result = outcome.result
    if not (isinstance(result, dict) and "statusCode" in result):
        # Payload 2.0: any other JSON is the body of a 200.
        return web.Response(status=200, text=json.dumps(result), content_type="application/json",
                            headers={"apigw-requestid": request_id}), ""
    try:
        status = int(result["statusCode"])
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        response = web.Response(status=status, body=data, headers={
            **{str(k): str(v) for k, v in (result.get("headers") or {}).items()}, "apigw-requestid": request_id})
        for cookie in result.get("cookies") or []:
            response.headers.add("Set-Cookie", str(cookie))
    except (TypeError, ValueError, AttributeError) as error:
        return _message(502, "Internal Server Error", request_id), f"malformed Lambda response: {error}"
    return response, ""


def _message(status: int, message: str, request_id: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"message": message}), content_type="application/json",
                        headers={"apigw-requestid": request_id})


def _first_line(text: Any) -> str:
    lines = str(text or "").splitlines()
    return lines[0][:200] if lines else ""
