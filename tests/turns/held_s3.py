"""An HTTP proxy in front of an S3 endpoint (moto's server) that holds chosen requests, then
applies them: what a slow S3 does to a write whose client gave up waiting.

    with HeldS3Proxy(moto.endpoint_url, hold=lambda method, path: method == "PUT" and ...) as proxy:
        ... the client times out; later ...
        proxy.apply_held()     # each held request reaches S3 now, with its own conditions

A held request is answered to no one (its client is gone); S3 decides what it does when it
finally arrives, as it would. Only the first request that matches is held, unless ``hold`` says
more. ``held`` and ``applied`` record (method, path); ``results`` the status S3 gave each held one.
"""

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import urlsplit

Hold = Callable[[str, str], bool]


class Answer(NamedTuple):
    """S3's answer to one forwarded request, read whole (the connection is closed after it)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class HeldS3Proxy:
    def __init__(self, upstream_url: str, hold: Hold = lambda method, path: False) -> None:
        self.upstream = urlsplit(upstream_url)
        self.hold = hold
        self.held: list[tuple[str, str]] = []
        self.results: list[int] = []
        self._release = threading.Event()
        self._done = threading.Condition()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def __enter__(self) -> "HeldS3Proxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def apply_held(self, timeout: float = 10.0) -> list[int]:
        """Let every held request through to S3 and wait for S3's answers: their statuses."""
        self._release.set()
        with self._done:
            self._done.wait_for(lambda: len(self.results) == len(self.held), timeout)
        return list(self.results)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Answer:
        upstream = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30)
        upstream.request(method, path, body=body, headers=headers)
        response = upstream.getresponse()
        answer = Answer(response.status, response.getheaders(), response.read())
        upstream.close()
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                if proxy.hold(self.command, self.path):
                    proxy.held.append((self.command, self.path))
                    proxy._release.wait()
                    response = proxy._forward(self.command, self.path, headers, body)
                    with proxy._done:
                        proxy.results.append(response.status)
                        proxy._done.notify_all()
                    self.close_connection = True  # its client stopped waiting long ago
                    return
                response = proxy._forward(self.command, self.path, headers, body)
                data = response.body
                self.send_response(response.status)
                for name, value in response.headers:
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any  # noqa: N815 (http.server's naming)

        return Handler
