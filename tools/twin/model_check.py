"""The twin's start-up check of MODEL_API_BASE: one cheap request, and when nothing answers, one
line saying why in the user's terms (no scheme, a host that does not resolve, the wrong port) and
what to do about it.

    await model_answers("http://127.0.0.1:8000/v1")  # "answering", or "not answering (…) — …"
"""

import asyncio
from urllib.parse import urlsplit

from aiohttp import ClientConnectorDNSError, ClientError, ClientSession, ClientTimeout

MODEL_CHECK_SECONDS = 3.0
MAKE_MODEL_PORT = 8000  # where `make model` listens (the Makefile's model target)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


async def model_answers(base: str) -> str:
    """GET {base}/models: any HTTP answer means something is listening."""
    shape = base_url_problem(base)
    if shape:
        return shape
    try:
        async with ClientSession(timeout=ClientTimeout(total=MODEL_CHECK_SECONDS)) as session, \
                session.get(base.rstrip("/") + "/models") as response:
            # Any status means it is listening; a 401 or 404 is worth showing (a key, a path).
            return "answering" if response.status < 300 else f"answering (GET /models: {response.status})"
    except TimeoutError:
        return f"not answering (no answer in {MODEL_CHECK_SECONDS:.0f} s) — check MODEL_API_BASE and the network"
    except ClientConnectorDNSError:
        return f"not answering (the host {urlsplit(base).hostname!r} does not resolve) — check MODEL_API_BASE"
    except ClientError as error:
        cause = getattr(error, "os_error", None)
        if isinstance(cause, ConnectionRefusedError):
            return f"not answering (connection refused) — {await refused_hint(base)}"
        return f"not answering ({cause or error}) — check MODEL_API_BASE and the network"


def base_url_problem(base: str) -> str | None:
    """A MODEL_API_BASE no HTTP client can use, named with its fix (`localhost:8000/v1`)."""
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018 (reading it validates it: a port that is not a number raises)
    except ValueError:
        return f"MODEL_API_BASE {base!r} is not a URL — write it as http://<host>:<port>/v1"
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    if "://" not in base:  # `localhost:8000/v1` reads as a scheme `localhost`
        return f"MODEL_API_BASE {base!r} has no scheme — add http:// (http://{base})"
    return f"MODEL_API_BASE {base!r} must start with http:// or https://"


async def refused_hint(base: str) -> str:
    """What to do when nothing listens where MODEL_API_BASE points: `make model` only helps on its port."""
    parts = urlsplit(base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.hostname not in LOCAL_HOSTS:
        return f"nothing listens on {parts.hostname}:{port}; check MODEL_API_BASE and the network"
    if port == MAKE_MODEL_PORT:
        return "start it with `make model`"
    if await listening(parts.hostname, MAKE_MODEL_PORT):
        return (f"nothing listens on port {port}, something does on {MAKE_MODEL_PORT} (make model's port): "
                f"check the port in MODEL_API_BASE")
    return (f"nothing listens on port {port}: start your server there, or run `make model` "
            f"(port {MAKE_MODEL_PORT}) and set MODEL_API_BASE=http://127.0.0.1:{MAKE_MODEL_PORT}/v1")


async def listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True
