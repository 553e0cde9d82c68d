"""Infrastructure cost per 1,000 turns, per path, beside AgentCore Runtime + Memory.

Prices: tools/prices.json (one file, with its date and sources). Requests per turn: measured, by
`make bench-latency` on this tree's code (build/bench-latency.json; when absent, or measured on
other code than src holds now, it is re-measured here: the twin at zero delay, 3 turns a path):
S3 requests by method, SQS calls, @connections posts of a whole turn, and for async HTTP its one
GET of the result. Modelled on top: S3's DELETE is free; the SQS event source mapping's receive and
delete (+2 a queued turn, outside the function); the client's WebSocket message (+1); the Lambda
invocations (1, or 2 when queued) and API requests (async: the POST and one GET). The model's wait
is billed by Lambda at the function's memory for its whole length, so it is the input that matters
most: --model-seconds (default 3).

Assumptions (each an option): summaries every --summary-every turns cost one more model wait of
the same length; memory on reads the caller's facts (1 GET) and rewrites them on half of the
turns (1 PUT); a WebSocket reply is --frames postToConnection messages (default: the posts measured)
and a connection is open --connected-minutes per turn. AgentCore Runtime bills CPU only while it
works (not while waiting on the model) at --agentcore-vcpu and memory (--agentcore-gb) for the
whole session until its idle timeout (--idle-minutes, AgentCore's default 15) after the last turn,
over sessions of --session-turns turns --think-seconds apart; AgentCore Memory stores each turn
as --events short-term events (the user message and the reply).

Usage: python tools/bench_cost.py [--model-seconds 3] [--memory-mb 1024] [--overhead-seconds 0.15]
"""

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench_latency import REPORT, median_counts, src_digest

TOOLS = Path(__file__).resolve().parent
PRICES = TOOLS / "prices.json"
SQS_EVENT_SOURCE_REQUESTS = 2  # the mapping's ReceiveMessage and DeleteMessage of the turn


@dataclass(frozen=True)
class TurnPath:
    name: str
    s3_put: float  # PUT, COPY, POST, LIST: one price
    s3_get: float  # GET, HEAD and the rest
    invocations: int  # Lambda invocations per turn
    http_requests: int = 0
    ws_messages: float = 0
    sqs_requests: float = 0
    short_invocation_seconds: float = 0.0  # the invocation that only queues the turn


def turn_path(name: str, requests: Mapping[str, float], frames: int | None = None) -> TurnPath:
    """A path's billed requests from the requests a turn made (kinds as bench_latency names them);
    ``frames`` replaces the @connections posts measured (the test model's reply is short)."""
    s3 = {kind.removeprefix("S3 "): count for kind, count in requests.items() if kind.startswith("S3 ")}
    put = sum(s3.get(method, 0) for method in ("PUT", "POST", "LIST"))
    get = sum(count for method, count in s3.items() if method not in ("PUT", "POST", "LIST", "DELETE"))
    sqs = sum(count for kind, count in requests.items() if kind.startswith("SQS "))
    posts = sum(count for kind, count in requests.items() if kind.startswith("@connections "))
    if name == "sync HTTP":
        return TurnPath(name, s3_put=put, s3_get=get, invocations=1, http_requests=1)
    queued = dict(s3_put=put, s3_get=get, invocations=2, sqs_requests=sqs + SQS_EVENT_SOURCE_REQUESTS,
                  short_invocation_seconds=0.1)
    if name == "WebSocket":
        return TurnPath(name, ws_messages=1 + (posts if frames is None else frames), **queued)  # type: ignore[arg-type]
    return TurnPath(name, http_requests=2, **queued)  # type: ignore[arg-type]  # the POST and one GET of the result


def measured_requests() -> tuple[dict[str, dict[str, float]], str]:
    """Requests a turn by kind, per path, of this tree's code; and where they come from."""
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    if report.get("src_digest") != src_digest() or "current" not in report.get("variants", {}):
        print(f"measuring this tree's requests per turn (no {REPORT.name} of the code in src)...", file=sys.stderr,
              flush=True)
        subprocess.run([sys.executable, str(TOOLS / "bench_latency.py"), "--only", "current", "--delay", "0",
                        "--turns", "3", "--warmup", "2"], check=True, stdout=subprocess.DEVNULL)
        report = json.loads(REPORT.read_text())
    requests = {}
    for name, turns in report["variants"]["current"]["paths"].items():
        counts = median_counts([turn["requests"] for turn in turns])
        for kind, count in median_counts([turn.get("result_requests", {}) for turn in turns]).items():
            counts[kind] = counts.get(kind, 0) + count
        requests[name] = counts
    return requests, f"{REPORT.relative_to(REPORT.parents[1])}, {report['turns']} turns a path"


def lambda_cost(prices: dict, seconds: float, memory_mb: int, arch: str) -> float:
    return seconds * memory_mb / 1024 * prices[f"lambda_gb_second_{arch}"]


def turn_cost(prices: dict, path: TurnPath, args: argparse.Namespace, summaries: bool, memory: bool) -> float:
    wait = args.model_seconds * (1 + (1 / args.summary_every if summaries else 0))
    seconds = wait + args.overhead_seconds
    put, get = path.s3_put + (0.5 if memory else 0), path.s3_get + (1 if memory else 0)
    return (lambda_cost(prices, seconds + path.short_invocation_seconds, args.memory_mb, args.arch)
            + path.invocations * prices["lambda_request"]
            + put * prices["s3_put_copy_post_list"] + get * prices["s3_get"]
            + path.http_requests * prices["http_api_request"]
            + path.ws_messages * prices["websocket_message"]
            + (args.connected_minutes * prices["websocket_connection_minute"] if path.ws_messages else 0)
            + path.sqs_requests * prices["sqs_fifo_request"])


def agentcore_cost(prices: dict, args: argparse.Namespace, summaries: bool) -> float:
    wait = args.model_seconds * (1 + (1 / args.summary_every if summaries else 0))
    active_cpu_hours = args.overhead_seconds * args.agentcore_vcpu / 3600
    held = wait + args.overhead_seconds + args.think_seconds + args.idle_minutes * 60 / args.session_turns
    return (active_cpu_hours * prices["agentcore_runtime_vcpu_hour"]
            + held / 3600 * args.agentcore_gb * prices["agentcore_runtime_gb_hour"]
            + args.events * prices["agentcore_memory_short_term_event"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-seconds", type=float, default=3.0, help="the model's wait per turn")
    parser.add_argument("--overhead-seconds", type=float, default=0.15, help="the turn's own time (S3, CPU)")
    parser.add_argument("--memory-mb", type=int, default=768, help="FunctionMemorySize (template.yaml's default)")
    parser.add_argument("--arch", choices=["arm64", "x86_64"], default="arm64")
    parser.add_argument("--summary-every", type=int, default=20)
    parser.add_argument("--frames", type=int, help="postToConnection messages per reply (default: as measured)")
    parser.add_argument("--connected-minutes", type=float, default=1.0)
    parser.add_argument("--idle-minutes", type=float, default=15)
    parser.add_argument("--session-turns", type=int, default=10)
    parser.add_argument("--think-seconds", type=float, default=30)
    parser.add_argument("--agentcore-vcpu", type=float, default=1.0)
    parser.add_argument("--agentcore-gb", type=float, default=1.0)
    parser.add_argument("--events", type=int, default=2)
    args = parser.parse_args()
    prices = json.loads(PRICES.read_text())
    requests, source = measured_requests()
    print(f"Infrastructure cost per 1,000 turns, USD ({prices['region']} list prices of {prices['date']}, "
          f"tools/prices.json), model wait {args.model_seconds:g} s, Lambda {args.memory_mb} MB {args.arch}\n")
    print(f"{'path':<12}{'plain':>10}{'summaries':>11}{'memory':>10}{'both':>10}")
    for name, counts in requests.items():
        path = turn_path(name, counts, args.frames)
        options = ((False, False), (True, False), (False, True), (True, True))  # (summaries, memory)
        row = [turn_cost(prices, path, args, s, m) * 1000 for s, m in options]
        print(f"{path.name:<12}" + "".join(f"{value:>10.4f} " for value in row))
    core = [agentcore_cost(prices, args, s) * 1000 for s in (False, True)]
    print(f"{'AgentCore':<12}{core[0]:>10.4f} {core[1]:>10.4f}  (Runtime {args.agentcore_vcpu:g} vCPU/"
          f"{args.agentcore_gb:g} GB held {args.think_seconds:g} s between turns and {args.idle_minutes:g} min "
          f"idle after a {args.session_turns}-turn session; Memory {args.events} events a turn)")
    print("\nThe model's own price is not included. Lambda's share is the model wait at the function's memory: "
          f"{lambda_cost(prices, args.model_seconds, args.memory_mb, args.arch) * 1000:.4f} USD per 1,000 turns.")
    print(f"\nRequests a turn, measured ({source}; summaries and memory are modelled on top):")
    for name, counts in requests.items():
        print(f"  {name:<11} " + " · ".join(f"{kind} {count:g}" for kind, count in counts.items() if count))


if __name__ == "__main__":
    main()
