"""Round trips and time of a turn's store requests: this branch's store vs main's, same run.

moto's S3 server runs on 127.0.0.1 behind a proxy that holds every request for a fixed delay
(``--delay``, 25 ms: S3 within a region is 10-30 ms a request), so time follows round trips as on
S3. A turn is a synchronous one with an instant model (the Agent's own hooks store what a model
answer would): "before" is the time from the turn's start to the model's first byte (taking the
lease and reading the session), "after" from the model's last byte to the turn's end (commit,
list entry, release). Round trips are counted from the proxy's log: requests that arrive within
half a delay of the first of a group are sent together. The baseline is the store at ``--base``
(default: main just before a turn's round trips were cut, 341f1f1), extracted into a temporary
package and imported as agent.store_base.

Usage: python tools/bench_latency.py [--turns 20] [--delay 0.025] [--history 40] [--base REF]
"""

import argparse
import io
import os
import socket
import statistics
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import bench_store as bench  # the moto server, the Agent driven by its hooks, the seeded session
import boto3
from bench_store import BUCKET, CALLER, ROOT

import agent
from agent.aws_clients import AwsClients
from agent.deadline import Deadline
from agent.settings import Settings
from agent.store import open_store

BEFORE_ROUND_TRIPS = "341f1f1"  # main just before a turn went from 7 round trips to 3

METHODS = (b"GET ", b"PUT ", b"POST ", b"DELETE ", b"HEAD ")


class DelayingProxy:
    """TCP proxy to moto: each request (a chunk that starts with an HTTP method) waits ``delay``
    before it is passed on, and is logged with its arrival time."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.log: list[tuple[float, str]] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if requests and chunk.startswith(METHODS):
                    self.log.append((time.perf_counter(), chunk.split(b" ", 2)[0].decode()))
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """(requests, round trips) that arrived in [start, end)."""
        arrivals = sorted(t for t, _ in self.log if start <= t < end)
        trips, first = 0, -1.0
        for arrived in arrivals:
            if arrived - first > self.delay / 2:
                trips, first = trips + 1, arrived
        return len(arrivals), trips


def base_store_class(ref: str, into: Path) -> type:
    """SessionStore as ``ref`` has it: its src/agent/store as agent.store_base."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src/agent/store"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "src/agent/store").rename(into / "store_base")
    agent.__path__.append(str(into))  # its relative imports (..deadline, ..errors) are this tree's
    from agent.store_base.sessions import SessionStore as Base

    return Base


def timed_turns(store: Any, session_id: str, turns: int, history: int, proxy: DelayingProxy
                ) -> Iterator[tuple[float, float, int, int, int, int]]:
    """Per turn: seconds before and after the model, requests and round trips before and after."""
    with store.turn(CALLER, session_id, Deadline.never()) as turn:
        bench.seed(turn.session_manager, history, history)
    for number in range(turns):
        started = time.perf_counter()
        with store.turn(CALLER, session_id, Deadline.after(30)) as turn:
            first_byte = time.perf_counter()
            bench.drive_turn(bench.make_agent(turn.session_manager, history), history + 2 * number)
            last_byte = time.perf_counter()
        ended = time.perf_counter()
        yield (first_byte - started, ended - last_byte, *proxy.between(started, first_byte),
               *proxy.between(last_byte, ended + 0.001))


def report(name: str, runs: list[tuple[float, float, int, int, int, int]]) -> None:
    def p50(index: int) -> float:
        return statistics.median(run[index] for run in runs)

    print(f"{name:<22} {p50(3):>5.0f} RT {p50(0) * 1000:>6.0f} ms   {p50(5):>5.0f} RT {p50(1) * 1000:>6.0f} ms"
          f"   {p50(3) + p50(5):>3.0f} RT {p50(2) + p50(4):>3.0f} req  {(p50(0) + p50(1)) * 1000:>6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.025, help="seconds added to every S3 request")
    parser.add_argument("--history", type=int, default=40, help="stored messages (and the window)")
    parser.add_argument("--base", default=BEFORE_ROUND_TRIPS, help="the git ref whose store is compared")
    args = parser.parse_args()
    with bench.moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        host, port = endpoint.removeprefix("http://").split(":")
        proxy = DelayingProxy((host, int(port)), args.delay)
        os.environ["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{proxy.port}"
        clients = AwsClients(boto3.session.Session())
        clients.client("s3").create_bucket(Bucket=BUCKET)
        settings = Settings(session_bucket=BUCKET, session_prefix="latency")
        stores: dict[str, Callable[[], Any]] = {
            f"{args.base}'s store": lambda: base_store_class(args.base, Path(tmp))(
                open_store(settings, clients).objects, settings),
            "this store": lambda: open_store(settings, clients),
        }
        print(f"A synchronous turn's S3 requests, {args.delay * 1000:.0f} ms added to each (moto behind a "
              f"delaying proxy), {args.history} stored messages, p50 of {args.turns} turns\n")
        print(f"{'':<22} {'before the model':>17}   {'after the model':>17}   {'in all':>20}")
        for index, (name, make) in enumerate(stores.items()):
            store = make()
            report(name, list(timed_turns(store, f"s{index}", args.turns, args.history, proxy)))


if __name__ == "__main__":
    main()
