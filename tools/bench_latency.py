"""`make bench-latency`: a turn's round trips and time before and after the model, on the twin, for
the synchronous, WebSocket and async HTTP paths, this tree's code beside a git ref's (one run).

Each variant runs in a subprocess of its own, whose twin's containers import that variant's code
(the ref's src, from `git archive`, as LAMBDA_TASK_ROOT); this process imports nothing from src.
In it, moto's S3 server and the twin each sit behind a DelayingProxy that holds every request
``--delay`` (25 ms: S3 and the regional APIs answer in 10-30 ms) and logs its arrival and request
line: the functions reach S3 through one (AWS_ENDPOINT_URL_S3) and the twin's SQS and @connections
through the other (Config.aws_endpoint), so the queue hop and each frame cost a round trip as on
AWS. The model is the test model, answering at once and streaming its words --word-delay apart
(30 ms: a model's usual pace; at 0 the whole reply lands in one instant and the WebSocket's first
delta is still being posted when the last word comes, so the reply frame waits for one more).

Per turn, in a session with history (the warm-up turns'), four time points: the client's send; the
model receiving the completion request; the model's last byte; the client's answer (sync: the HTTP
response; WebSocket: the reply frame; async HTTP: the 202 and, apart, the turn record reading
"done", polled from moto directly, unlogged). Round trips come from the proxies' log: the longest
chain of requests each sent after the one before it was answered. A turn's requests are
all those from its send until the proxies fall quiet (a lease released after the answer counts).

Writes build/bench-latency.json (every turn of both variants), which `make bench-cost` reads.

Usage: python tools/bench_latency.py [--turns 15] [--warmup 4] [--delay 0.025] [--base REF]
                                     [--only current|base]
"""

import argparse
import asyncio
import hashlib
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_timing import TimedModel  # noqa: E402
from moto_process import moto_process  # noqa: E402

from twin.config import Config  # noqa: E402
from twin.server import Twin, TwinThread  # noqa: E402
from twin.terminal import Terminal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "build" / "bench-latency.json"
BEFORE_ISSUE_21 = "341f1f1"  # main before issue 21's work: a sync turn in 5 round trips
CURRENT = "this tree"
BUCKET = "bench-latency"
PATHS = ("sync HTTP", "WebSocket", "async HTTP")
METHODS = (b"GET ", b"PUT ", b"POST ", b"DELETE ", b"HEAD ")
TARGET = re.compile(rb"^x-amz-target:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


# ---- the proxies and their log ---------------------------------------------------------------
def request_kind(head: bytes) -> str:
    """What a request is, from its first bytes (request line and headers): "S3 PUT", "S3 LIST" (a
    GET with list-type), "SQS SendMessage" (X-Amz-Target's operation), "@connections POST"."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, target = (line.split(" ") + ["", ""])[:2]
    path, _, query = target.partition("?")
    if path.startswith("/_aws/sqs"):
        found = TARGET.search(head)
        return f"SQS {found.group(1).decode().rsplit('.', 1)[-1] if found else '?'}"
    if path.startswith("/_aws/connections"):
        return f"@connections {method}"
    if method == "GET" and re.search(r"(^|&)list-type=", query):
        return "S3 LIST"
    return f"S3 {method}"


def round_trips(requests: Iterable[tuple[float, float]]) -> int:
    """The longest chain of requests (arrival, answer), each sent once the one before it was
    answered: the round trips a turn waits for, however many requests go together."""
    depth: list[tuple[float, int]] = []  # (answered, chain length) of the requests so far
    longest = 0
    for arrived, answered in sorted(requests):
        length = 1 + max((n for done, n in depth if done <= arrived), default=0)
        depth.append((answered, length))
        longest = max(longest, length)
    return longest


class DelayingProxy:
    """TCP proxy to ``target``: each request (a chunk that starts with an HTTP method) is logged with
    its arrival time and kind into ``log``, then held ``delay`` before it is passed on; the time its
    answer starts back goes into ``answers`` (by the log entry's id)."""

    def __init__(self, target: tuple[str, int], delay: float, log: list[tuple[float, str, str]],
                 answers: dict[int, float]) -> None:
        self.target, self.delay, self.log, self.answers = target, delay, log, answers
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(self.target)
            asked: list[tuple[float, str, str]] = []  # the connection's request awaiting its answer
            threading.Thread(target=self._pump, args=(client, upstream, True, asked), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, asked), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool,
              asked: list[tuple[float, str, str]]) -> None:
        try:
            while chunk := source.recv(65536):
                if requests and chunk.startswith(METHODS):
                    line = chunk.split(b"\r\n", 1)[0].decode("latin-1")
                    entry = (time.perf_counter(), request_kind(chunk), line)
                    self.log.append(entry)
                    asked[:] = [entry]
                    time.sleep(self.delay)
                elif not requests and asked:  # HTTP/1.1: one request at a time on a connection
                    self.answers[id(asked.pop())] = time.perf_counter()
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


# ---- one turn's numbers ----------------------------------------------------------------------
@dataclass(frozen=True)
class Points:
    """A turn's time points (perf_counter); ``accepted``: the 202 of an async turn."""

    sent: float
    answered: float
    accepted: float | None = None


def turn_numbers(points: Points, log: list[tuple[float, str, str]], model_in: list[float], model_out: list[float],
                 until: float, answers: dict[int, float]) -> dict[str, Any]:
    """Round trips and ms before the model, after it and in all; requests by kind up to ``until``."""
    calls = [t for t in model_in if points.sent <= t <= points.answered]
    ends = [t for t in model_out if points.sent <= t <= points.answered]
    first, last = (calls[0], ends[-1]) if calls and ends else (points.answered, points.answered)

    def trips(start: float, end: float) -> int:
        return round_trips((entry[0], answers.get(id(entry), float("inf"))) for entry in log if start <= entry[0] < end)

    numbers = {"model_calls": len(calls),
               "before_rt": trips(points.sent, first), "before_ms": (first - points.sent) * 1000,
               "after_rt": trips(last, points.answered), "after_ms": (points.answered - last) * 1000,
               # the turn's own: what it adds to the model's time (frames posted while it streams wait on it)
               "all_rt": trips(points.sent, first) + trips(last, points.answered),
               "all_ms": (first - points.sent + points.answered - last) * 1000,
               "requests": dict(Counter(kind for t, kind, _ in log if points.sent <= t <= until)),
               "trace": trace(points, log, first, last, until)}
    if points.accepted is not None:
        numbers |= {"accepted_rt": trips(points.sent, points.accepted),
                    "accepted_ms": (points.accepted - points.sent) * 1000}
    return numbers


def trace(points: Points, log: list[tuple[float, str, str]], first: float, last: float, until: float) -> list[str]:
    """The turn's requests as --trace prints them: ms after the send, the request line; and the
    model's request, its last byte and the answer among them."""
    marks = [(first, "", "-- the model receives the request"), (last, "", "-- the model's last byte"),
             (points.answered, "", "-- the answer")]
    if points.accepted is not None:
        marks.append((points.accepted, "", "-- the 202"))
    entries = sorted([entry for entry in log if points.sent <= entry[0] <= until] + marks)
    return [f"{(at - points.sent) * 1000:7.1f} ms  {line.removesuffix(' HTTP/1.1')[:150]}" for at, _, line in entries]


# ---- driving the paths -----------------------------------------------------------------------
class Paths:
    """The three ways to send a message, each returning its turn's time points."""

    def __init__(self, twin: Twin, client: aiohttp.ClientSession, s3: Any) -> None:
        self.twin, self.client, self.s3 = twin, client, s3
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def sync(self, session_id: str, message: str) -> Points:
        sent = time.perf_counter()
        async with self.client.post(f"{self.twin.url}/sessions/{session_id}/messages",
                                    json={"message": message}) as response:
            body = await response.read()
        answered = time.perf_counter()
        if response.status != 200:
            raise SystemExit(f"a synchronous turn failed: {response.status} {body[:300]!r}")
        return Points(sent, answered)

    async def websocket(self, session_id: str, message: str) -> Points:
        if self.ws is None:  # one connection for every turn: $connect is not a turn's
            self.ws = await self.client.ws_connect(self.twin.ws_url, max_msg_size=0)
        sent = time.perf_counter()
        await self.ws.send_str(json.dumps({"action": "sendMessage", "session_id": session_id, "message": message}))
        while True:
            frame = json.loads((await self.ws.receive(timeout=60)).data)
            if frame["type"] == "reply":
                return Points(sent, time.perf_counter())
            if frame["type"] == "error":
                raise SystemExit(f"a WebSocket turn failed: {frame}")

    async def async_http(self, session_id: str, message: str) -> Points:
        sent = time.perf_counter()
        async with self.client.post(f"{self.twin.url}/sessions/{session_id}/messages", json={"message": message},
                                    headers={"Prefer": "respond-async"}) as response:
            body = await response.read()
        accepted = time.perf_counter()
        if response.status != 202:
            raise SystemExit(f"an async turn was not accepted: {response.status} {body[:300]!r}")
        self.location = response.headers["Location"]
        done = await asyncio.to_thread(record_done, self.s3, self.location.rsplit("/", 1)[-1])
        return Points(sent, done, accepted)

    async def result(self) -> None:
        """The one GET of an async turn's result that the caller makes."""
        async with self.client.get(f"{self.twin.url}{self.location}") as response:
            await response.read()


def record_done(s3: Any, turn_id: str, timeout: float = 60.0) -> float:
    """When the turn record reads "done": polled from moto directly (not through the proxy, so not
    counted), the record found as the object whose key names the turn."""
    deadline, key = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if key is None:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            key = next((o["Key"] for page in pages for o in page.get("Contents", []) if turn_id in o["Key"]), None)
        if key is not None:
            with suppress(s3.exceptions.NoSuchKey):
                if _says_done(json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())):
                    return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"the turn record of {turn_id} never read done")


def _says_done(document: Any) -> bool:
    if isinstance(document, dict):
        return document.get("status") == "done" or any(_says_done(v) for v in document.values())
    return False


async def quiet(log: list[tuple[float, str, str]], delay: float) -> float:
    """Wait until no request has arrived for a while (what a turn does after its answer is over)."""
    window = max(0.2, 4 * delay)
    while True:
        last = log[-1][0] if log else 0.0
        if time.perf_counter() - last >= window:
            return time.perf_counter()
        await asyncio.sleep(window / 4)


async def drive(twin: Twin, model: TimedModel, s3: Any, log: list[tuple[float, str, str]],
                answers: dict[int, float], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    async with aiohttp.ClientSession() as client:
        paths = Paths(twin, client, s3)
        send: dict[str, Callable[[str, str], Any]] = {
            "sync HTTP": paths.sync, "WebSocket": paths.websocket, "async HTTP": paths.async_http}
        for name in PATHS:
            session_id = f"bench-{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}"
            for number in range(args.warmup):  # warm containers; the session's history
                await send[name](session_id, f"Warm-up message {number}.")
                await quiet(log, args.delay)
            turns = []
            for number in range(args.turns):
                points = await send[name](session_id, f"Message {number}: what did I say first?")
                until = await quiet(log, args.delay)
                numbers = turn_numbers(points, log, model.request_times, model.reply_ends, until, answers)
                if name == "async HTTP":
                    asked = time.perf_counter()
                    await paths.result()
                    got = await quiet(log, args.delay)
                    numbers["result_requests"] = dict(Counter(kind for t, kind, _ in log if asked <= t <= got))
                turns.append(numbers)
            for earlier in turns[:-1]:
                del earlier["trace"]  # the last turn's is enough
            results[name] = turns
            print(f"  {name}: {args.turns} turns", file=sys.stderr, flush=True)
        if paths.ws is not None:
            await paths.ws.close()
    return results


# ---- one variant, in its own process ---------------------------------------------------------
@contextmanager
def moto_server() -> Iterator[int]:
    with moto_process() as port:
        yield port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def code_of(ref: str, into: Path) -> Path:
    """``ref``'s src, extracted under ``into``: the code root its containers import."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_variant(ref: str | None, args: argparse.Namespace) -> dict[str, Any]:
    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("LITELLM_LOCAL_MODEL_COST_MAP", "True")):
        os.environ.setdefault(name, value)
    log: list[tuple[float, str, str]] = []
    answers: dict[int, float] = {}
    model = TimedModel(word_delay=args.word_delay)  # (its __enter__ is typed as the base class's)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as moto_port, model:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}")
        s3.create_bucket(Bucket=BUCKET)
        twin_port = free_port()
        s3_proxy = DelayingProxy(("127.0.0.1", moto_port), args.delay, log, answers)
        aws_proxy = DelayingProxy(("127.0.0.1", twin_port), args.delay, log, answers)
        env = {**os.environ, "MODEL_ID": "openai/test-model", "MODEL_API_BASE": model.base_url, "MODEL_API_KEY": "x",
               "SESSION_BUCKET": BUCKET, "SESSION_DIR": "", "AWS_ENDPOINT_URL_S3": s3_proxy.url,
               "LOG_LEVEL": "WARNING"}
        if ref is not None:
            env["LAMBDA_TASK_ROOT"] = str(code_of(ref, Path(tmp)))
        config = Config(port=twin_port, workers=2, turn_workers=2, model_check=False, aws_endpoint=aws_proxy.url)
        with TwinThread(config, env, Terminal(io.StringIO())) as twin:
            paths = asyncio.run(drive(twin, model, s3, log, answers, args))
    return {"code": ref or CURRENT, "paths": paths}


# ---- the report --------------------------------------------------------------------------------
def p50(turns: list[dict[str, Any]], key: str) -> float:
    return statistics.median(turn[key] for turn in turns)


def median_counts(counts: list[dict[str, int]]) -> dict[str, float]:
    """Requests a turn by kind: each kind's median over the turns."""
    kinds = sorted({kind for count in counts for kind in count})
    return {kind: statistics.median(count.get(kind, 0) for count in counts) for kind in kinds}


def requests_line(counts: list[dict[str, int]]) -> str:
    """Requests a turn by kind, e.g. "7 = S3 GET 1 · S3 PUT 4 · S3 DELETE 2"."""
    medians = median_counts(counts)
    parts = [f"{kind} {value:g}" for kind, value in medians.items() if value]
    return f"{sum(medians.values()):g} = " + " · ".join(parts)


def print_variant(title: str, paths: dict[str, list[dict[str, Any]]], show_trace: bool = False) -> None:
    print(f"\n{title}")
    print(f"{'':<18}{'before the model':>17}{'after the model':>18}{'in all':>16}   requests a turn (all kinds)")
    for name, turns in paths.items():
        if "accepted_rt" in turns[0]:
            print(f"{name + ' 202':<18}{'':>35}{p50(turns, 'accepted_rt'):>5.0f} RT"
                  f"{p50(turns, 'accepted_ms'):>6.0f} ms")
            name += " done"
        print(f"{name:<18}{p50(turns, 'before_rt'):>4.0f} RT{p50(turns, 'before_ms'):>6.0f} ms"
              f"{p50(turns, 'after_rt'):>6.0f} RT{p50(turns, 'after_ms'):>6.0f} ms"
              f"{p50(turns, 'all_rt'):>5.0f} RT{p50(turns, 'all_ms'):>6.0f} ms   "
              f"{requests_line([t['requests'] for t in turns])}")
        if "result_requests" in turns[0]:
            print(f"{'':<70}+ its GET of the result: {requests_line([t['result_requests'] for t in turns])}")
    for name, turns in paths.items():
        if show_trace:
            print(f"\n  the last {name} turn's requests:\n    " + "\n    ".join(turns[-1]["trace"]))


def src_digest(root: Path = ROOT / "src") -> str:
    """What the code under src is (committed or not): a measurement of other code is stale."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def measure(args: argparse.Namespace, ref: str | None) -> dict[str, Any]:
    """One variant, in a subprocess (its containers must import its code, and this process none)."""
    print(f"measuring {ref or CURRENT} (the twin's start takes a few seconds)...", file=sys.stderr, flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--variant", ref or "", "--out", out.name, "--turns", str(args.turns),
                   "--warmup", str(args.warmup), "--delay", str(args.delay), "--word-delay", str(args.word_delay)]
        subprocess.run(command, check=True)
        return json.loads(Path(out.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=15, help="measured turns per path (default 15)")
    parser.add_argument("--warmup", type=int, default=4, help="turns before them, in the same session (default 4)")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds added to every AWS request")
    parser.add_argument("--word-delay", type=float, default=0.03,
                        help="seconds between the model's words (default 0.03, ~30 tokens/s; 0: all at once)")
    parser.add_argument("--base", default=BEFORE_ISSUE_21, help=f"the git ref compared (default {BEFORE_ISSUE_21})")
    parser.add_argument("--only", choices=["base", "current"], help="measure one variant only")
    parser.add_argument("--trace", action="store_true", help="print each path's last turn, request by request")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # in the subprocess: the ref ("" for this tree)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant is not None:
        Path(args.out).write_text(json.dumps(run_variant(args.variant or None, args)))
        return
    variants = {"base": args.base, "current": None}
    if args.only:
        variants = {args.only: variants[args.only]}
    results = {name: measure(args, ref) for name, ref in variants.items()}
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps({"delay": args.delay, "turns": args.turns, "src_digest": src_digest(),
                                  "variants": results}, indent=1))
    print(f"\nTurns on the twin, {args.delay * 1000:g} ms added to every S3, SQS and @connections request "
          f"(delaying proxies); the test model answers at once and streams a word every "
          f"{args.word_delay * 1000:g} ms; p50 of {args.turns} turns in sessions with "
          f"{2 * args.warmup}+ messages. RT: round trips.")
    for name, result in results.items():
        title = f"{args.base} (before issue 21)" if name == "base" else f"{CURRENT} ({git_head()})"
        print_variant(title, result["paths"], args.trace)
    print(f"\nbefore: send -> the model's request; after: its last byte -> the answer (sync: the response; "
          f"WebSocket: the reply frame; async: the record reads done); in all: both, what the turn adds to the "
          f"model's time. Written to {REPORT.relative_to(ROOT)}.")


def git_head() -> str:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    return head.stdout.strip() + (" + changes" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    main()
