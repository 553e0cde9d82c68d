"""The process that ran the function's init once, and forks every container from it (Linux).

This is what SnapStart does when deployed: init runs once, and each execution environment
resumes from a copy of that memory, running the handler's after-restore hooks (handler/snapstart.py)
first. Forking a process that imported the handler takes milliseconds; importing it takes seconds.

The process is single-threaded (the handler starts no thread at import), so forking it is safe.
It talks to the twin over one control channel: "fork" with a channel's file descriptor for the
new container, then "stop" (or the channel closing), which ends every container it forked.
"""

import contextlib
import os
import signal
from collections.abc import Mapping
from multiprocessing import reduction
from multiprocessing.connection import Connection

from . import runtime


def main(control: Connection, env: Mapping[str, str]) -> None:
    report = runtime.init(env)
    control.send(report)
    if "failed" in report:
        return
    from handler import snapstart

    snapstart.snapshot()
    children: set[int] = set()
    signal.signal(signal.SIGCHLD, lambda *_: _reap(children))
    try:
        while True:
            try:
                request = control.recv()
            except (EOFError, OSError):
                break  # the twin has gone
            if request != "fork":
                break
            fd = reduction.recv_handle(control)
            pid = os.fork()
            if pid == 0:
                _container(control, fd)  # never returns
            os.close(fd)
            children.add(pid)
            control.send(pid)
    finally:
        _stop(children)


def _container(control: Connection, fd: int) -> None:
    """In the forked child: a fresh environment resumed from the snapshot."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    code = 0
    try:
        control.close()
        from handler import snapstart

        snapstart.restore()
        runtime.serve(Connection(fd))
    except BaseException:
        code = 1
    finally:
        os._exit(code)  # never back into the snapshot's loop, nor its atexit handlers


def _reap(children: set[int]) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)


def _stop(children: set[int]) -> None:
    """End every container at once (they ignore SIGTERM, which the twin handles for the whole
    process group), and wait for each, so none is left behind."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
