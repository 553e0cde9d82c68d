"""The twin's own pages: the chat page at /, the API's docs at /docs (Swagger UI, served from the
copy Powertools ships, so it works offline) and the OpenAPI document at /openapi.json.

These paths, /ws and /_aws/... are the twin's; tests/template checks that no route of the API
uses them.
"""

import html
from pathlib import Path

from aiohttp import web

from .events import OPENAPI, ROOT

CHAT_PAGE = ROOT / "tools" / "chat" / "index.html"
RESERVED_PATHS = ("/", "/ws", "/docs", "/openapi.json")
RESERVED_PREFIXES = ("/docs/", "/_aws/")

NO_CHAT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Stateful agent</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Stateful agent</h1>
<p>The agent is running. Its API is described, and can be tried, at <a href="/docs">/docs</a>.</p>
<p>WebSocket: <code>{ws_url}</code>, then send
<code>{{"action": "sendMessage", "session_id": "demo", "message": "Hello"}}</code>.</p>
</body></html>
"""


def swagger_ui_folder() -> Path:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    return Path(swagger_ui.__file__).parent


class Pages:
    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.chat)
        app.router.add_get("/docs", self.docs)
        app.router.add_get("/docs/swagger-ui-bundle.min.js", self.asset)
        app.router.add_get("/docs/swagger-ui.min.css", self.asset)
        app.router.add_get("/openapi.json", self.openapi)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        if CHAT_PAGE.is_file():
            return web.FileResponse(CHAT_PAGE, headers={"Cache-Control": "no-cache"})
        return web.Response(text=NO_CHAT_PAGE.format(ws_url=html.escape(self.ws_url)), content_type="text/html")

    async def docs(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("format") == "json":  # what Swagger UI asks for when it loads
            return await self.openapi(request)
        from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

        page = generate_swagger_html(OPENAPI.read_text(), "/docs/swagger-ui-bundle.min.js", "/docs/swagger-ui.min.css",
                                     swagger_base_url="/docs", oauth2_config=None)
        return web.Response(text=page, content_type="text/html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(swagger_ui_folder() / Path(request.path).name,
                                headers={"Cache-Control": "max-age=3600"})

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(OPENAPI, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
