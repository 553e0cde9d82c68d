"""The functions' containers: processes that each serve one invocation at a time, as Lambda's
execution environments do, and a pool per function that replaces any that dies.

On Linux every container is forked from one process that ran init once (snapshot.py), so a new
one is ready in milliseconds; elsewhere each is spawned and runs init itself, like a cold start.

An invocation ends one of three ways, as in Lambda: a result, a function error (the handler
raised), or the environment's end (the process died, or overran its timeout and was killed);
the last two are both errors to whoever invoked it, and the container is replaced.
"""

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any

from . import runtime, snapshot
from .config import Function

READY_TIMEOUT_SECONDS = 300.0  # init may be slow on a first run (bytecode not cached yet)
STOP_SECONDS = 5.0  # for the init process to end its containers and exit


class InitFailed(Exception):
    """The function's init raised: ``kind`` is "settings" (a SettingsError) or "init"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Outcome:
    """What an invocation gave back: the handler's result, or Lambda's error payload."""

    result: Any = None
    error: dict[str, str] | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(eq=False)
class Container:
    pid: int
    channel: Connection
    dead: bool = False
    busy: bool = False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has died already
            os.kill(self.pid, signal.SIGKILL)


# ---- starting containers ----------------------------------------------------------------------
class ForkLauncher:
    """Containers forked from the snapshot process, which runs init once."""

    def __init__(self) -> None:
        self.process: Any = None
        self.control: Connection | None = None
        self.lock = threading.Lock()  # one fork request at a time on the control channel
        self.ready = False

    def begin(self, env: Mapping[str, str]) -> None:
        """Start the init process (quick; from the main thread, see _start_ignoring_ctrl_c)."""
        context = multiprocessing.get_context("spawn")  # a clean interpreter, whatever the twin's threads
        self.control, theirs = context.Pipe()
        self.process = context.Process(target=snapshot.main, args=(theirs, dict(env)), name="twin-init", daemon=True)
        _start_ignoring_ctrl_c(self.process)
        theirs.close()

    def wait_ready(self) -> dict[str, Any]:
        """Block until init has run: what it reports (start-up facts, or what stopped it)."""
        assert self.control is not None
        report = _report(self.control)
        self.ready = "failed" not in report
        return report

    def launch(self) -> Container:
        ours, theirs = multiprocessing.Pipe()
        with self.lock:
            assert self.control is not None
            self.control.send("fork")
            reduction.send_handle(self.control, theirs.fileno(), self.process.pid)
            pid = self.control.recv()
        theirs.close()
        return Container(pid, ours)

    def stop(self) -> None:
        if self.process is not None and not self.ready:  # still in init, which reads no request
            self.process.kill()
        elif self.control is not None:
            try:
                with self.lock:
                    self.control.send("stop")
            except OSError:
                pass
        if self.process is not None:
            self.process.join(STOP_SECONDS)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


class SpawnLauncher:
    """Containers spawned one by one, each running init itself (where fork is unsafe: macOS, Windows)."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.processes: list[Any] = []
        self.spare: Container | None = None
        self.lock = threading.Lock()

    def begin(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.spare = self._spawn()

    def wait_ready(self) -> dict[str, Any]:
        assert self.spare is not None
        return _report(self.spare.channel)

    def launch(self) -> Container:
        with self.lock:
            spare, self.spare = self.spare, None
        if spare is not None:
            return spare
        container = self._spawn()
        report = _report(container.channel)
        if "failed" in report:
            raise InitFailed(report["failed"], report["message"])
        return container

    def _spawn(self) -> Container:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=runtime.spawned, args=(theirs, self.env), name="twin-container", daemon=True)
        _start_ignoring_ctrl_c(process)
        theirs.close()
        self.processes.append(process)
        assert process.pid is not None  # started just above
        return Container(process.pid, ours)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()  # containers ignore SIGTERM (see runtime.init)
        for process in self.processes:
            process.join()


def launcher(start_method: str) -> ForkLauncher | SpawnLauncher:
    return ForkLauncher() if start_method == "fork" else SpawnLauncher()


def _start_ignoring_ctrl_c(process: Any) -> None:
    """Start ``process`` with SIGINT ignored from its first instruction (a disposition a new
    interpreter keeps), so a Ctrl-C during its start prints no traceback; the twin stops it.
    Only the main thread may change it; elsewhere (tests, replacements spawned from a worker
    thread) the child ignores it once its init begins."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        process.start()
        return
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(channel: Connection) -> dict[str, Any]:
    if not channel.poll(READY_TIMEOUT_SECONDS):
        return {"failed": "init", "message": f"init did not finish in {READY_TIMEOUT_SECONDS:.0f} s"}
    try:
        return channel.recv()
    except (EOFError, OSError):
        return {"failed": "init", "message": "the init process exited (see the lines above)"}


# ---- a function's pool ------------------------------------------------------------------------
@dataclass
class Pool:
    """One function's containers. ``invoke`` waits for a free one, as a reserved concurrency
    would; a container that dies, idle or busy, is replaced at once."""

    function: Function
    launch: Callable[[], Container]
    say: Callable[[str], None] = lambda line: None  # a line for the terminal
    containers: set[Container] = field(default_factory=set)
    idle: asyncio.Queue = field(default_factory=asyncio.Queue)
    invocations: set[asyncio.Task] = field(default_factory=set)
    replacements: set[asyncio.Task] = field(default_factory=set)  # held: the loop keeps only weak references
    closing: bool = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        started = await asyncio.gather(*(loop.run_in_executor(None, self.launch)
                                         for _ in range(self.function.containers)))
        for container in started:
            self._add(container)

    def pids(self) -> list[int]:
        return sorted(c.pid for c in self.containers if not c.dead)

    def busy_pids(self) -> list[int]:
        return sorted(c.pid for c in self.containers if c.busy and not c.dead)

    async def invoke(self, event: Any) -> Outcome:
        task = asyncio.current_task()
        if task is not None:  # so that close() can end it, whoever was waiting for it
            self.invocations.add(task)
            task.add_done_callback(self.invocations.discard)
        loop = asyncio.get_running_loop()
        started = loop.time()
        message = {"event": json.dumps(event), "timeout": self.function.timeout, "function": self.function.name,
                   "handler": self.function.handler, "request_id": str(uuid.uuid4())}
        while True:
            container = await self._checkout()
            try:
                await loop.run_in_executor(None, container.channel.send, message)
            except OSError:  # it died before it got the event: Lambda would use another environment
                self._lost(container, "exited while idle")
                continue
            break
        outcome = await self._wait(container, loop)
        outcome.seconds = loop.time() - started
        return outcome

    async def _checkout(self) -> Container:
        while True:
            container = await self.idle.get()
            if not container.dead:
                asyncio.get_running_loop().remove_reader(container.channel.fileno())
                container.busy = True
                return container

    async def _wait(self, container: Container, loop: asyncio.AbstractEventLoop) -> Outcome:
        answer: asyncio.Future = loop.create_future()

        def readable() -> None:
            loop.remove_reader(container.channel.fileno())
            try:
                message = container.channel.recv()
            except (EOFError, OSError):
                message = None
            if not answer.done():
                answer.set_result(message)

        loop.add_reader(container.channel.fileno(), readable)
        try:
            message = await asyncio.wait_for(answer, self.function.timeout)
        except TimeoutError:
            loop.remove_reader(container.channel.fileno())
            container.kill()  # Lambda ends the environment of an invocation that overran
            self._lost(container, f"timed out after {self.function.timeout:.0f} s")
            return Outcome(error={"errorType": "Sandbox.Timedout",
                                  "errorMessage": f"Task timed out after {self.function.timeout:.2f} seconds"})
        except asyncio.CancelledError:
            loop.remove_reader(container.channel.fileno())
            container.kill()  # the twin is stopping
            self._lost(container, "stopped")
            raise
        if message is None:
            self._lost(container, "exited during an invocation")
            return Outcome(error={"errorType": "Runtime.ExitError",
                                  "errorMessage": "Runtime exited without providing a reason"})
        self._release(container)
        if "error" in message:
            return Outcome(error=message["error"])
        return Outcome(result=json.loads(message["result"]))

    def _add(self, container: Container) -> None:
        self.containers.add(container)
        self._release(container)

    def _release(self, container: Container) -> None:
        """Back to idle, watched: an idle container's channel is readable only when it has died."""
        container.busy = False
        loop = asyncio.get_running_loop()
        loop.add_reader(container.channel.fileno(), self._died_idle, container)
        self.idle.put_nowait(container)

    def _died_idle(self, container: Container) -> None:
        asyncio.get_running_loop().remove_reader(container.channel.fileno())
        self._lost(container, "exited while idle")

    def _lost(self, container: Container, reason: str) -> None:
        if container.dead:
            return
        container.dead = True
        self.containers.discard(container)
        container.channel.close()
        if not self.closing:
            task = asyncio.get_running_loop().create_task(self._replace(reason))
            self.replacements.add(task)
            task.add_done_callback(self.replacements.discard)

    async def _replace(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            container = await loop.run_in_executor(None, self.launch)
        except Exception as error:
            self.say(f"{self.function.name}: a container {reason} and none could be started ({error})")
            return
        if self.closing:
            container.channel.close()
            return
        self._add(container)
        self.say(f"{self.function.name}: a container {reason}; replaced (pid {container.pid})")

    async def close(self) -> None:
        """End the invocations under way; no more replacements (the containers end with the launcher)."""
        self.closing = True
        for task in list(self.invocations):
            task.cancel()
        await asyncio.gather(*self.invocations, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for container in list(self.containers):
            if not container.channel.closed:
                loop.remove_reader(container.channel.fileno())
                container.channel.close()
