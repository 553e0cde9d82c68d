"""What the twin answers for a request it refuses itself, before any function sees it: the API's
error shape, `{"error": {"code", "message"}}` as application/json, never a word of the request.

aiohttp answers some requests on its own, in text/plain: one it cannot parse (a request line or a
header over 8,190 bytes, which it quotes back, a malformed request line) and, from its router and
its body reader, 404, 405 and 413. The first kind never reaches a middleware, only the connection's
`handle_error`; the second is raised as an HTTPException, which `json_refusals` answers.
"""

from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, BadStatusLine, LineTooLong
from aiohttp.web_protocol import RequestHandler

# The API's own codes where it has one for the status (src/handler/error_table.py)
CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
         500: "internal_error"}


def refusal(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    code = CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def unreadable(error: BaseException | None) -> str:
    """Why a request could not be parsed, in words of our own (aiohttp's quote the request)."""
    if isinstance(error, LineTooLong):
        return "A line of the request (its request line or a header) is longer than 8,190 bytes."
    if isinstance(error, BadHttpMethod):
        return "The request's method is not valid HTTP."
    if isinstance(error, BadStatusLine):
        return "The request line is not valid HTTP."
    if isinstance(error, BadHttpMessage):
        return "The request is not valid HTTP (its headers or its body framing)."
    return "The request could not be read."


class JsonRefusals(RequestHandler):
    """A connection whose own error answers (parse errors, a handler that failed) are JSON."""

    __slots__ = ()

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises if a response is under way
        if status == 400:
            answer = refusal(400, unreadable(exc))
        elif status == 500:
            answer = refusal(500, "The twin failed to handle this request; see its terminal.")
        else:
            answer = refusal(status, HTTPStatus(status).description or HTTPStatus(status).phrase)
        answer.force_close()  # as aiohttp's own: the connection may be out of step
        return answer


class JsonRefusingServer(web.Server):
    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = JsonRefusals  # the same connection; only its error answers differ
        return handler


class Runner(web.AppRunner):
    """web.AppRunner, with connections that refuse in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = JsonRefusingServer  # aiohttp builds the Server itself; it adds no state
        return server


@web.middleware
async def json_refusals(request: web.Request, handler: Any) -> web.StreamResponse:
    """404/405 of the router, 413 of the body reader, any other 4xx/5xx aiohttp raises: as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as raised:
        if raised.status < 400:
            raise
        allow = {"Allow": raised.headers["Allow"]} if "Allow" in raised.headers else None
        return refusal(raised.status, messages(raised.status), allow)


def messages(status: int) -> str:
    if status == 404:
        return "No such path."
    if status == 405:
        return "This method is not allowed on this path."
    if status == 413:
        return "The body is larger than API Gateway's 10 MB limit."
    return HTTPStatus(status).description or HTTPStatus(status).phrase
