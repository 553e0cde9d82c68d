"""`make dev`: the handler behind a local HTTP server, as `sam local start-api` would run it.

Each HTTP request becomes an API Gateway HTTP API (payload format 2.0) event, the handler runs
in this process, and its response is written back. No Docker, no AWS account: sessions go to
files under SESSION_DIR, or to S3 when SESSION_BUCKET is set.
"""

import base64
import multiprocessing
import os
import re
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

from lambda_twin import LambdaContext, handler, load_environment

# The routes of template.yaml, so events carry the routeKey and pathParameters API Gateway sets.
ROUTES = [
    ("POST", "/sessions/{session_id}/messages"),
    ("GET", "/sessions/{session_id}/messages"),
    ("DELETE", "/sessions/{session_id}"),
]


def route_of(method: str, path: str) -> tuple[str, dict[str, str]]:
    for route_method, template in ROUTES:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        match = re.fullmatch(pattern, path)
        if match and route_method == method:
            return f"{method} {template}", match.groupdict()
    return "$default", {}


def http_api_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    url = urlsplit(target)
    route_key, path_parameters = route_of(method, url.path)
    text_body = body.decode("utf-8", errors="strict") if body else None
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": {name.lower(): value for name, value in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("Host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": method, "path": url.path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("User-Agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if url.query:
        event["queryStringParameters"] = dict(parse_qsl(url.query))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if text_body is not None:
        event["body"] = text_body
    return event


# Warm "containers": like Lambda, each process serves one request at a time, and concurrent
# requests go to different processes (Powertools' router keeps the current event per process).
DEFAULT_WORKERS = 4
_lambda_handler: Callable | None = None


def _start_container(load: Callable[[], Callable]) -> None:
    global _lambda_handler
    if _lambda_handler is None:  # forked workers inherit the parent's warm import
        _lambda_handler = load()


def _invoke(event: dict) -> dict:
    return _lambda_handler(event, LambdaContext())


def _ready(_: int) -> bool:
    return True


def container_pool(load: Callable[[], Callable], workers: int) -> ProcessPoolExecutor:
    """``workers`` processes with the handler imported. On Linux they fork from a parent that
    imported it once (instant); elsewhere each imports it, like a cold start (fork is unsafe on macOS)."""
    global _lambda_handler
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    _lambda_handler = load() if context.get_start_method() == "fork" else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_container,
                               initargs=(load,))
    list(pool.map(_ready, range(workers)))  # start them now, not on the first request
    return pool


def build_server(port: int, load: Callable[[], Callable] = handler,
                 workers: int = DEFAULT_WORKERS) -> ThreadingHTTPServer:
    """The local API on 127.0.0.1:port (0 picks a free port); ``server.pool`` must be shut down."""
    pool = container_pool(load, workers)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _invoke(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                event = http_api_event(self.command, self.path, dict(self.headers), raw, self.client_address[0])
            except UnicodeDecodeError:
                event = http_api_event(self.command, self.path, dict(self.headers), b"", self.client_address[0])
                event.update(body=base64.b64encode(raw).decode(), isBase64Encoded=True)
            result = pool.submit(_invoke, event).result()
            body = result.get("body") or ""
            data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
            self.send_response(result.get("statusCode", 200))
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, value)
            for cookie in result.get("cookies") or []:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _invoke

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.pool = pool  # type: ignore[attr-defined]
    return server


def serve(port: int) -> None:
    server = build_server(port, workers=int(os.environ.get("WORKERS", DEFAULT_WORKERS)))
    where = f"S3 bucket {os.environ['SESSION_BUCKET']}" if os.environ.get("SESSION_BUCKET") else \
        f"files under {os.environ.get('SESSION_DIR', '.sessions')}/"
    model = os.environ.get("MODEL_ID") or "none configured (chat answers 503 until MODEL_ID is set)"
    print(f"Serving the agent on http://127.0.0.1:{port}  (sessions: {where}; model: {model})", flush=True)
    print(f"  curl -s -X POST http://127.0.0.1:{port}/sessions/user_arindam_convo_123/messages "
          "-H 'content-type: application/json' -d '{\"message\": \"Hey, my name is Arindam.\"}'", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.pool.shutdown(cancel_futures=True)


if __name__ == "__main__":
    load_environment()
    serve(int(os.environ.get("PORT", "3000")))
