"""What the twin answers for requests it refuses itself (before any function sees them), over a
real socket: the API's JSON error shape, never text, never a word of the request echoed back."""

import contextlib
import json
import socket
from typing import Any

import pytest

from twin.server import Twin

pytestmark = pytest.mark.slow

ECHO = "zqxj" * 2_500  # 10,000 bytes no answer may quote


def exchange(twin: Twin, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; the status, headers and body of the answer (read until the twin closes)."""
    with socket.create_connection(("127.0.0.1", twin.port), timeout=30) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it answered before reading all
            connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received or not complete(received):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False


def json_error(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, dict[str, Any]]:
    status, headers, body = answer
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:300])
    assert ECHO[:40].encode() not in body, "the request must not be echoed"
    error = json.loads(body)["error"]
    assert set(error) >= {"code", "message"} and isinstance(error["message"], str), error
    return status, error


def test_a_path_with_an_encoded_newline_reaches_the_function_and_is_answered_in_json(twin: Twin) -> None:
    """Today aiohttp's router did not match it (`.` stops at a newline): 404 text/plain."""
    status, error = json_error(exchange(twin, b"GET /sessions/abc%0Adef/messages HTTP/1.1\r\nHost: x\r\n"
                                              b"Connection: close\r\n\r\n"))

    assert 400 <= status < 500 and error["code"] in {"invalid_request", "not_found", "invalid_session_id"}, error


def test_a_request_line_over_8190_bytes_is_a_json_400_that_quotes_nothing(twin: Twin) -> None:
    status, error = json_error(exchange(twin, f"GET /sessions/{ECHO}/messages HTTP/1.1\r\nHost: x\r\n\r\n".encode()))

    assert status == 400 and error == {
        "code": "invalid_request",
        "message": "A line of the request (its request line or a header) is longer than 8,190 bytes."}


def test_a_header_over_8190_bytes_is_a_json_400(twin: Twin) -> None:
    status, error = json_error(exchange(twin, f"GET / HTTP/1.1\r\nHost: x\r\nX-Long: {ECHO}\r\n\r\n".encode()))

    assert status == 400 and error["code"] == "invalid_request"


@pytest.mark.parametrize("request_line", [b"G\x01T / HTTP/1.1", b"GET / HTTP/9.x", b"zqxjzqxj"])
def test_a_request_that_is_not_http_is_a_json_400(twin: Twin, request_line: bytes) -> None:
    status, headers, body = exchange(twin, request_line + b"\r\nHost: x\r\n\r\n")

    assert (status, headers["content-type"].split(";")[0]) == (400, "application/json"), body
    assert json.loads(body)["error"]["code"] == "invalid_request" and b"zqxj" not in body


def test_a_body_over_the_10_mb_limit_is_a_json_413(twin: Twin) -> None:
    body = b"x" * (10 * 1024 * 1024 + 1)
    status, error = json_error(exchange(twin, b"POST /sessions/abc/messages HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: %d\r\n\r\n" % len(body) + body))

    assert status == 413 and error["code"] == "payload_too_large"
