"""A client of the agent's two APIs, as `make chat` uses them: turns over the WebSocket API (the
protocol of src/handler/frames.py) and the HTTP API's history, turn status and delete; against
the twin (`make dev`) or a deployed stack.

    async with AgentClient(Target.local(3000)) as agent:
        await agent.connect()
        final = await agent.turn("my_session", "Hello", on_delta=print)  # the "reply" or "error" frame
        messages = await agent.history("my_session")                    # every page; None: no such session

A deployed stack's $connect and HTTP routes want either AWS_IAM (SigV4, signed with the caller's
AWS credentials from botocore's default chain: environment, profile, SSO, role) or, with
AuthMode=JWT, a token (``?token=`` on the WebSocket URL, ``Authorization: Bearer`` over HTTP).
Every failure the user can act on is raised as ``Problem``, one line that says what to do.
"""

import asyncio
import json
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp
from yarl import URL

SERVICE = "execute-api"
CONNECT_SECONDS = 10.0
HTTP_SECONDS = 35.0  # API Gateway gives up on a request at 30 s
PRESIGNED_SECONDS = 300  # a signed $connect URL is used at once; a reconnect signs a new one
RECONNECTS = 3
POLL_SECONDS = 1.0
UNSEEN_SECONDS = 5.0  # without the HTTP API, how long a turn sent again may stay silent
PAGE_SIZE = 100
CLOSED = object()  # put on a connection's frame queue when the connection ends
TURN_CANCELLED = "turn_cancelled"  # the code of the error frame a stopped turn ends with


class Problem(Exception):
    """Something the user can act on, said in one line."""


# ---- signing ------------------------------------------------------------------------------------

def region_of(host: str) -> str | None:
    """The region in an API Gateway host name (<api id>.execute-api.<region>.amazonaws.com)."""
    match = re.fullmatch(r"[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?", host.lower())
    return match.group(1) if match else None


def presign_websocket_url(url: str, credentials: Any, region: str, expires: int = PRESIGNED_SECONDS) -> str:
    """``url`` with a SigV4 signature for execute-api in its query (X-Amz-*), the form API Gateway's
    AWS_IAM $connect accepts from clients that cannot sign the upgrade request's headers."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    request = AWSRequest(method="GET", url=urlunsplit(("https" if secure else "http", parts.netloc, parts.path or "/",
                                                      parts.query, "")))
    SigV4QueryAuth(credentials, SERVICE, region, expires=expires).add_auth(request)
    signed = urlsplit(str(request.url))
    return urlunsplit(("wss" if secure else "ws", signed.netloc, signed.path, signed.query, ""))


def signed_headers(method: str, url: str, body: bytes, credentials: Any, region: str) -> dict[str, str]:
    """The headers of an HTTP request signed with SigV4 for execute-api (Authorization, X-Amz-Date,
    X-Amz-Security-Token for temporary credentials)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


# ---- who the client is --------------------------------------------------------------------------

class NoAuth:
    """The twin: no authorizer (the handler's caller is "local")."""

    def websocket_url(self, url: str) -> str:
        return url

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        return "no credentials"

    def hint(self) -> str:
        return ""


class TokenAuth:
    """AuthMode=JWT: the token on the WebSocket URL (browsers cannot set headers there) and as a
    bearer token over HTTP."""

    def __init__(self, token: str) -> None:
        self.token = token

    def websocket_url(self, url: str) -> str:
        parts = urlsplit(url)
        query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("token", self.token)], quote_via=quote)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def describe(self) -> str:
        return "the JWT given with --token"

    def hint(self) -> str:
        return ("is it expired, or not from the stack's JwtIssuer for its JwtAudience? A stack with AuthMode=IAM "
                "wants AWS credentials instead (leave out --token)")


class AwsAuth:
    """AuthMode=IAM: SigV4 with the caller's AWS credentials (botocore's default chain)."""

    def __init__(self, credentials: Any, region: str | None = None, profile: str | None = None) -> None:
        self.credentials, self.region, self.profile = credentials, region, profile

    @classmethod
    def from_default_chain(cls, region: str | None = None, profile: str | None = None) -> "AwsAuth":
        import botocore.exceptions
        import botocore.session

        try:
            session = botocore.session.Session(profile=profile)
            credentials = session.get_credentials()
            configured = session.get_config_variable("region")
        except botocore.exceptions.BotoCoreError as error:
            raise Problem(f"AWS credentials could not be read: {error}") from None
        if credentials is None:
            raise Problem("No AWS credentials found (environment, ~/.aws, SSO, instance role): configure some "
                          "(e.g. `aws configure sso`), or pass --token <JWT> for a stack with AuthMode=JWT.")
        return cls(credentials, region or configured, profile)

    def region_for(self, host: str) -> str:
        region = region_of(host) or self.region
        if not region:
            raise Problem(f"Cannot tell the region from {host}: pass --region.")
        return region

    def websocket_url(self, url: str) -> str:
        return presign_websocket_url(url, self._frozen(), self.region_for(urlsplit(url).hostname or ""))

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        return signed_headers(method, url, body, self._frozen(), self.region_for(urlsplit(url).hostname or ""))

    def _frozen(self) -> Any:
        return self.credentials.get_frozen_credentials()  # refreshed first when they are about to expire

    def describe(self) -> str:
        key = self.credentials.get_frozen_credentials().access_key or ""
        source = getattr(self.credentials, "method", None) or "the default chain"
        profile = f", profile {self.profile}" if self.profile else ""
        return f"AWS credentials (access key …{key[-4:]} from {source}{profile})"

    def hint(self) -> str:
        return ("that principal needs execute-api:Invoke on the API (the $connect route for the WebSocket API); "
                "a stack with AuthMode=JWT wants --token <JWT> instead")


# ---- where the agent is ---------------------------------------------------------------------------

@dataclass
class Target:
    ws_url: str
    api_url: str | None
    auth: Any = field(default_factory=NoAuth)

    @classmethod
    def local(cls, port: int) -> "Target":
        """The twin (`make dev`) on this machine."""
        return cls(f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}", NoAuth())

    @property
    def where(self) -> str:
        """The WebSocket URL as it can be shown (a presigned query is never printed)."""
        return urlunsplit(urlsplit(self.ws_url)._replace(query="", fragment=""))


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


# ---- the client ---------------------------------------------------------------------------------

@dataclass
class TurnState:
    turn_id: str | None = None
    resent: bool = False
    accepted: asyncio.Event = field(default_factory=asyncio.Event)  # set with turn_id: it can be stopped


class AgentClient:
    def __init__(self, target: Target, page_size: int = PAGE_SIZE) -> None:
        self.target = target
        self.page_size = page_size
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: asyncio.Queue = asyncio.Queue()
        self.reader: asyncio.Task | None = None
        self.following: TurnState | None = None  # the turn turn() follows, for cancel_turn

    async def __aenter__(self) -> "AgentClient":
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._drop_connection()
        if self.http is not None:
            await self.http.close()
            self.http = None

    # ---- the WebSocket ------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed and self.reader is not None and not self.reader.done()

    async def connect(self) -> None:
        await self._drop_connection()
        assert self.http is not None, "use AgentClient as an async context manager"
        url = self.target.auth.websocket_url(self.target.ws_url)
        try:
            # $connect runs the function (API Gateway gives it 29 s)
            self.ws = await asyncio.wait_for(self.http.ws_connect(
                URL(url, encoded=True), max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)),
                CONNECT_SECONDS + 30)
        except aiohttp.WSServerHandshakeError as error:
            raise Problem(self._refused("The WebSocket API", error.status, "connection")) from None
        except aiohttp.ClientConnectorError as error:
            raise Problem(self._unreachable(error)) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise Problem(f"No answer from {_host(self.target.ws_url)} (connecting to {self.target.where}).") from None
        except aiohttp.ClientError as error:
            raise Problem(f"Cannot connect to {self.target.where}: {error}") from None
        self.frames = asyncio.Queue()
        self.reader = asyncio.create_task(_read_frames(self.ws, self.frames))

    async def _drop_connection(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
            self.reader = None
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def turn(self, session_id: str, message: str, on_delta: Callable[[str], None],
                   on_reconnect: Callable[[int], None] | None = None,
                   on_restart: Callable[[], None] | None = None,
                   interrupt_responses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Send one message (or, with ``interrupt_responses``, answers to the tool calls a paused
        turn waits on, which resume it) and follow its turn to the end: ``on_delta`` with each piece of the
        reply as it arrives (``on_restart`` when the pieces so far are void: the turn runs again),
        then the "reply" or "error" frame is returned.

        The message carries an idempotency key, so when the connection is lost it is sent again
        on a new one: a turn that never arrived runs then, and one that did is not run twice (its
        end comes as a frame, or, while it is still running, from GET .../turns/{turn_id})."""
        asked = {"interrupt_responses": interrupt_responses} if interrupt_responses else {"message": message}
        body = json.dumps({"action": "sendMessage", "session_id": session_id, **asked,
                           "idempotency_key": f"chat-{uuid.uuid4().hex}"})
        state = self.following = TurnState()
        for attempt in range(RECONNECTS + 1):
            if attempt:
                if on_reconnect is not None:
                    on_reconnect(attempt)
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
                state.resent = True
            try:
                if not self.connected:
                    await self.connect()
                assert self.ws is not None
                await self.ws.send_str(body)
            except Problem:
                if attempt in (0, RECONNECTS):  # nothing sent yet: say why at once
                    raise
                continue
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                continue
            final = await self._end_of_turn(session_id, state, on_delta, on_restart)
            if final is not None:
                return final
        raise Problem("The connection kept closing before the reply came; the turn may still finish "
                      "(/history will show it).")

    async def _end_of_turn(self, session_id: str, state: TurnState, on_delta: Callable[[str], None],
                           on_restart: Callable[[], None] | None = None) -> dict[str, Any] | None:
        """Frames until this turn's reply or error (returned); None when the connection is lost.

        A message sent again whose turn was already under way gets its "accepted" and nothing
        more (the worker posts to the lost connection): its end is read from the turn's status."""
        waited = 0.0
        while True:
            try:
                frame = await asyncio.wait_for(self.frames.get(), POLL_SECONDS if state.resent else None)
            except TimeoutError:
                waited += POLL_SECONDS
                ended = await self._ended(session_id, state.turn_id)
                if ended is not None:
                    return ended
                if not self.target.api_url and waited >= UNSEEN_SECONDS:
                    raise Problem("The turn went on while the connection was lost, and its reply went there; "
                                  "/history shows it once stored (pass --api to use it).") from None
                continue
            if frame is CLOSED:
                return None
            final = _follow(frame, session_id, state, on_delta, on_restart)
            if final is not None:
                return final

    async def _ended(self, session_id: str, turn_id: str | None) -> dict[str, Any] | None:
        """The turn's end from its status record, as the frame that would have said it."""
        if turn_id is None or not self.target.api_url:
            return None
        try:
            status = await self.turn_status(session_id, turn_id)
        except Problem:  # asked again a second later; the frame may come first anyway
            return None
        if status and status.get("status") == "done":
            return {"type": "reply", "turn_id": turn_id, **status["reply"]}
        if status and status.get("status") in ("failed", "cancelled"):  # cancelled: error.code turn_cancelled
            return {"type": "error", "session_id": session_id, "turn_id": turn_id, "error": status["error"]}
        return None

    async def cancel_turn(self, session_id: str, turn_id: str) -> None:
        """Ask the server to stop a turn (WebSocket cancelTurn). Nothing comes back for it: the
        turn ends with its "error" frame, code turn_cancelled (or with its reply, if it ended
        first); a refusal is an "error" frame that names no turn."""
        if not self.connected:
            raise Problem("The connection was lost; the turn could not be stopped.")
        assert self.ws is not None
        body = {"action": "cancelTurn", "session_id": session_id, "turn_id": turn_id}
        try:
            await self.ws.send_str(json.dumps(body))
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            raise Problem("The connection was lost; the turn could not be stopped.") from None

    # ---- the HTTP API -------------------------------------------------------------------------
    async def request(self, method: str, path: str, query: dict[str, Any] | None = None) -> tuple[int, Any]:
        if not self.target.api_url:
            raise Problem("This needs the HTTP API: pass --api https://… (the stack's ApiUrl output).")
        assert self.http is not None, "use AgentClient as an async context manager"
        url = self.target.api_url.rstrip("/") + path
        if query:
            url += "?" + urlencode(query, quote_via=quote)  # encoded once, as SigV4 signs it
        headers = self.target.auth.headers(method, url, b"")
        try:
            async with self.http.request(method, URL(url, encoded=True), headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=HTTP_SECONDS)) as response:
                status, text = response.status, await response.text()
        except aiohttp.ClientConnectorError as error:
            raise Problem(self._unreachable(error)) from None
        except TimeoutError:
            raise Problem(f"No answer from {_host(url)} in {HTTP_SECONDS:.0f} s.") from None
        except aiohttp.ClientError as error:
            raise Problem(f"{method} {path} failed: {error}") from None
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        if status in (401, 403) and not _error_code(body):  # API Gateway's own refusal
            raise Problem(self._refused("The HTTP API", status, "request"))
        return status, body

    async def history(self, session_id: str) -> list[dict[str, Any]] | None:
        """Every message of the session, following next_cursor; None when there is no such session."""
        messages: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"limit": self.page_size, **({"cursor": cursor} if cursor else {})}
            status, body = await self.request("GET", f"/sessions/{quote(session_id, safe='')}/messages", query)
            if status == 404 and _error_code(body) == "session_not_found":
                return None
            _expect(status, body, 200, "GET the history")
            messages += body["messages"]
            cursor = body.get("next_cursor")
            if not cursor:
                return messages

    async def delete(self, session_id: str) -> bool:
        """Delete the session; False when there was none."""
        status, body = await self.request("DELETE", f"/sessions/{quote(session_id, safe='')}")
        if status == 404 and _error_code(body) == "session_not_found":
            return False
        _expect(status, body, 204, "DELETE the session")
        return True

    async def list_sessions(self, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the caller's sessions, most recent activity first, and the next page's cursor."""
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        status, body = await self.request("GET", "/sessions", query)
        _expect(status, body, 200, "GET the sessions")
        return body["sessions"], body.get("next_cursor")

    async def session(self, session_id: str) -> dict[str, Any] | None:
        """The caller's session (title, times, message count); None when there is no such session."""
        status, body = await self.request("GET", f"/sessions/{quote(session_id, safe='')}")
        if status == 404 and _error_code(body) == "session_not_found":
            return None
        _expect(status, body, 200, "GET the session")
        return dict(body)

    async def turn_status(self, session_id: str, turn_id: str) -> dict[str, Any] | None:
        status, body = await self.request("GET", f"/sessions/{quote(session_id, safe='')}/turns/{turn_id}")
        return body if status == 200 and isinstance(body, dict) else None

    # ---- what went wrong, said once -----------------------------------------------------------
    def _unreachable(self, error: aiohttp.ClientConnectorError) -> str:
        if error.host in ("127.0.0.1", "localhost", "::1") and isinstance(error.os_error, ConnectionRefusedError):
            port = f" PORT={error.port}" if error.port != 3000 else ""
            return f"Nothing is listening on {error.host}:{error.port} — start it with `make dev{port}`."
        return f"Cannot reach {error.host}:{error.port}: {_reason(error.os_error or error)}."

    def _refused(self, api: str, status: int, what: str) -> str:
        auth = self.target.auth
        said = f"{api} refused the {what} ({status}), which carried {auth.describe()}"
        if isinstance(auth, NoAuth):
            return f"{said}: a deployed stack needs AWS credentials (the default) or --token <JWT>."
        return f"{said}: {auth.hint()}."


class Repeats:
    """The frames of each turn seen on one connection, by their seq: one seen again is a post the
    function tried again (after a read timeout) that arrived twice. A restart starts a turn's
    count again: the new attempt numbers its frames from the restart's seq."""

    def __init__(self) -> None:
        self.seen: dict[str, set[int]] = {}
        self.last: dict[str, tuple[Any, int]] = {}

    def repeated(self, frame: Any) -> bool:
        turn_id = frame.get("turn_id") if isinstance(frame, dict) else None
        seq = frame.get("seq") if isinstance(frame, dict) else None
        if not isinstance(turn_id, str) or not isinstance(seq, int) or isinstance(seq, bool):
            return False  # a refusal that names no turn, or a server that does not number its frames
        kind, seen = frame.get("type"), self.seen.setdefault(turn_id, set())
        if kind == "restart":
            if self.last.get(turn_id) == (kind, seq):
                return True
            seen.intersection_update({0})  # the attempt's frames are new; "accepted" stays seen
        elif seq in seen:
            return True
        seen.add(seq)
        self.last[turn_id] = (kind, seq)
        return False


async def _read_frames(ws: aiohttp.ClientWebSocketResponse, frames: asyncio.Queue) -> None:
    """Every text frame of the connection, parsed, onto ``frames`` (but repeats); then CLOSED."""
    repeats = Repeats()
    try:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    continue
                if not repeats.repeated(frame):
                    frames.put_nowait(frame)
    finally:
        frames.put_nowait(CLOSED)


def _follow(frame: Any, session_id: str, state: TurnState, on_delta: Callable[[str], None],
            on_restart: Callable[[], None] | None = None) -> dict[str, Any] | None:
    """One frame of the connection, seen by the turn ``state`` follows; the turn's end when it is one."""
    if not isinstance(frame, dict):
        return None
    kind = frame.get("type")
    if kind is None and "message" in frame:
        # API Gateway's own frame when the route's invocation failed ("Internal server error").
        if state.turn_id is None:
            return {"type": "error", "session_id": session_id,
                    "error": {"code": "internal_error", "message": f"API Gateway: {frame['message']}"}}
        return None
    if frame.get("session_id") != session_id:
        return None
    if kind == "accepted" and state.turn_id is None:
        state.turn_id = frame.get("turn_id")
        state.accepted.set()
        return None
    ours = state.turn_id is not None and frame.get("turn_id") == state.turn_id
    if kind == "error" and (ours or frame.get("turn_id") is None):
        return frame  # an error without a turn id: the message was refused before it was queued
    if ours and kind == "delta":
        on_delta(str(frame.get("text", "")))
    elif ours and kind == "restart" and on_restart is not None:
        on_restart()
    elif ours and kind == "reply":
        return frame
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):  # the name did not resolve
        return str(error.strerror).lower()
    number = getattr(error, "errno", None)
    return os.strerror(number).lower() if isinstance(number, int) and number > 0 else str(error)


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _expect(status: int, body: Any, wanted: int, doing: str) -> None:
    if status == wanted:
        return
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        retry = f" (retry in {error['retry_after']} s)" if error.get("retry_after") else ""
        raise Problem(f"Could not {doing}: {status} {error.get('code')}: {error.get('message')}{retry}")
    said = body.get("message") if isinstance(body, dict) else body
    raise Problem(f"Could not {doing}: {status} {said or ''}".rstrip())


def error_line(frame: dict[str, Any]) -> str:
    """An error frame in one line: its code, its message, and when to retry."""
    error = frame.get("error") or {}
    retry = f" (retry in {error['retry_after']} s)" if error.get("retry_after") else ""
    return f"{error.get('code', 'error')}: {error.get('message', '')}{retry}"
