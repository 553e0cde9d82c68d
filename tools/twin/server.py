"""The twin: one aiohttp server on 127.0.0.1 that is API Gateway (HTTP API and WebSocket API),
the management API, the turn queue and Lambda's poller, in front of the functions' containers.

    twin = Twin(Config(port=0), env)      # env: the environment the functions get
    await twin.open()                     # binds, runs init, starts the containers, serves
    ...twin.url, twin.ws_url...
    await twin.close()

`TwinThread` runs one in a background thread, for tests and benchmarks.
"""

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from . import environment
from .config import Config
from .connections import Connections
from .containers import InitFailed, Pool, launcher
from .http_api import HAS_LINE, MAX_BODY_BYTES, HttpApi
from .model_check import model_answers
from .pages import Pages
from .poller import MAX_RECEIVES, TurnPoller
from .refusals import Runner, json_refusals
from .terminal import Terminal, quiet_aiohttp_logs
from .turn_queue import FifoQueue, SqsApi
from .websocket_api import WebSocketApi


class PortTaken(Exception):
    def __init__(self, port: int) -> None:
        super().__init__(f"Port {port} is taken; run `make dev PORT={port + 1}`.")


class Twin:
    def __init__(self, config: Config, env: Mapping[str, str], terminal: Terminal | None = None) -> None:
        self.config = config
        self.env = dict(env)
        self.terminal = terminal or Terminal()
        self.launcher = launcher(config.start_method)
        self.connections = Connections()
        self.runner: Runner | None = None
        self.pools: dict[str, Pool] = {}
        self.poller: TurnPoller | None = None
        self.dead_letter_poller: TurnPoller | None = None
        self.websocket: WebSocketApi | None = None
        self.background: list[asyncio.Task] = []
        self.port = config.port
        self.report: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def open(self) -> None:
        started = time.monotonic()
        sock = bind(self.config.port)
        self.port = sock.getsockname()[1]
        try:
            await self._start(sock, started)
        except BaseException:
            sock.close()
            await self.close()
            raise

    async def _start(self, sock: socket.socket, started: float) -> None:
        config, loop = self.config, asyncio.get_running_loop()
        how = "forked after one init" if config.start_method == "fork" else "each runs init"
        self.terminal.line(f"starting {config.workers} AgentFunction and {config.turn_workers} TurnWorkerFunction "
                           f"containers ({how})…")
        function_env = environment.function_environment(self.env, self.url, config.function_timeout,
                                                        config.turn_timeout, config.aws_endpoint)
        self.launcher.begin(function_env)
        self.report = await loop.run_in_executor(None, self.launcher.wait_ready)
        if "failed" in self.report:
            raise InitFailed(self.report["failed"], self.report["message"])
        model_line = asyncio.create_task(self._model_line())

        for function in (config.agent, config.worker):
            self.pools[function.name] = Pool(function, self.launcher.launch, self.terminal.line)
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

        dead_letters = FifoQueue(environment.DEAD_LETTER_QUEUE_NAME)
        queue = FifoQueue(environment.QUEUE_NAME, redrive_policy={
            "deadLetterTargetArn": environment.queue_arn(dead_letters.name), "maxReceiveCount": MAX_RECEIVES})
        worker = self.pools[config.worker.name]
        self.poller = TurnPoller(queue, worker, environment.queue_arn(), self.terminal, dead_letter_queue=dead_letters)
        self.dead_letter_poller = TurnPoller(dead_letters, worker, environment.queue_arn(dead_letters.name),
                                             self.terminal)
        self.background += [asyncio.create_task(self.poller.run()), asyncio.create_task(self.dead_letter_poller.run())]
        self.websocket = WebSocketApi(self.pools[config.agent.name], self.connections, self.terminal,
                                      f"127.0.0.1:{self.port}")
        app = self._app(queue)
        quiet_aiohttp_logs(self.terminal)
        self.runner = Runner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()
        self.terminal.line(f"ready in {time.monotonic() - started:.1f} s: serving {self.url} (chat page /, API docs "
                           f"/docs) and {self.ws_url} · sessions in {self._sessions()} · model "
                           f"{self.report.get('model_id') or '(none: set MODEL_ID)'}")
        self.terminal.line(await model_line)

    def _app(self, queue: FifoQueue) -> web.Application:
        assert self.websocket is not None, "made by _start before the routes"
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._page_lines, json_refusals])
        Pages(self.ws_url).add_routes(app)
        app.router.add_get("/ws", self.websocket.handle)
        self.connections.add_routes(app)
        SqsApi(queue, environment.queue_url(self.url)).add_routes(app)
        app.router.add_route("*", r"/_aws/{rest:[\s\S]*}", _no_such_aws_api)
        # Everything else is the HTTP API's (a GET of a page path falls through for other methods),
        # whatever the path holds: an encoded newline (`.` would not match it) goes to the function too.
        app.router.add_route("*", r"/{path:[\s\S]*}", HttpApi(self.pools[self.config.agent.name], self.terminal).handle)
        return app

    @web.middleware
    async def _page_lines(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The line of a request for one of the twin's pages. The API's requests and WebSocket
        events have lines of their own; the function's calls to /_aws/... (a frame, a queued turn)
        are not requests of yours."""
        started = time.monotonic()
        response = await handler(request)
        if not request.get(HAS_LINE) and request.path != "/ws" and not request.path.startswith("/_aws/"):
            self.terminal.request(f"{request.method} {request.path}", response.status, time.monotonic() - started)
        return response

    def _sessions(self) -> str:
        report = self.report
        if report.get("session_bucket"):
            return f"S3 bucket {report['session_bucket']} (under {report.get('session_prefix')}/)"
        return f"files under {report.get('session_dir')}/"

    async def _model_line(self) -> str:
        report = self.report
        model = report.get("model_id")
        if report.get("model_problem"):
            return f"model: {report['model_problem']}"
        base = report.get("model_api_base")
        where = f"model {model} at {base}" if base else f"model {model}"
        if not self.config.model_check:
            return f"{where}: not checked (MODEL_CHECK=off)"
        if not base:
            return f"{where}: not checked (no HTTP endpoint to ask; the first message will tell)"
        return f"{where}: {await model_answers(base)}"

    async def close(self) -> None:
        """Stop the functions first (what is under way ends; nothing posts frames to a server that is
        going), then the server; no traceback, and no process left behind."""
        websocket = self.websocket
        if websocket is not None:
            websocket.closing = True  # no $disconnect invocations for the connections closed below
        pollers = [poller for poller in (self.poller, self.dead_letter_poller) if poller is not None]
        tasks = [*self.background, *(websocket.tasks if websocket else ()), *(t for p in pollers for t in p.tasks)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pool in self.pools.values():
            await pool.close()
        for connection in list(self.connections.live.values()):
            await connection.socket.close(code=1001, message=b"Server going away")
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await asyncio.get_running_loop().run_in_executor(None, self.launcher.stop)


async def _no_such_aws_api(request: web.Request) -> web.Response:
    return web.json_response({"message": f"The twin has no AWS API at {request.path}"}, status=404)


def bind(port: int) -> socket.socket:
    """The listening socket, bound before the slow start-up so a taken port is said at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortTaken(port) from None
        raise
    sock.listen(128)
    return sock


class TwinThread:
    """A twin on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, config: Config, env: Mapping[str, str], terminal: Terminal | None = None) -> None:
        self.twin = Twin(config, env, terminal)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="twin", daemon=True)

    def __enter__(self) -> Twin:
        self.thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.twin.open(), self.loop).result()
        except BaseException:
            self._stop_loop()
            raise
        return self.twin

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.twin.close(), self.loop).result(timeout=30)
        self._stop_loop()

    def call(self, work: Any) -> Any:
        """Run a coroutine on the twin's loop (e.g. to read its state consistently)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
