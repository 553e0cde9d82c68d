"""Memory size: init, a SnapStart restore's own work and a warm turn at a share of one CPU.

Lambda gives CPU in proportion to memory (1,769 MB = one vCPU); this runs the built artifact
under CPython 3.13, as `make bench-cold` does, in a child held to the share of each memory size
(tools/cpu_share.py: a CPU cgroup when one can be created, else a SIGSTOP/SIGCONT duty cycle).
Each child, a fresh process:

1. init: `import handler.app` (the deployed function's environment, no SnapStart);
2. the SnapStart hooks (src/handler/snapstart.py): before the snapshot (once per published
   version, not on a user's path) and after a restore (on every restored environment's path);
3. the first turn after the restore, then --turns synchronous turns of one conversation
   (POST /sessions/{id}/messages through the handler, as API Gateway sends it): wall time, and
   CPU time of the whole process (every thread) during the turn.

The model is the project's test model (tools/model_server.py, instant replies) and S3 is moto's
server, both in this process or its children on 127.0.0.1 and not held to the share, as neither
runs in the function on Lambda; the turn's own work (botocore's signing and parsing included) is.
S3's network latency is not in these numbers: a turn's round trips on S3 (--s3-ms, 110 ms for a
synchronous turn as `make bench-latency` measures it with 25 ms a request) are added to its
overhead. Sizes take turns within each round, so load from other processes falls on all alike.

    python tools/bench_memory.py --python313 build/python313/bin/python3.13 \
        --artifact build/artifact-x86_64 [--sizes 512,768,1024,1769] [--samples 3] [--turns 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import boto3
import cpu_share
from bench_cold import FUNCTION_ENV
from bench_store import moto_server
from model_server import ModelServer

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_MB = 1024  # the ratios are against 1 GB, the size the issue compares with
ONE_VCPU = cpu_share.ONE_VCPU_MB  # always measured: a turn's waits are read off it
TOLERANCE = 0.10
CLOCK_MS = 0.1  # differences between processes below this are noise here (scheduling, caches)
BUCKET = "bench-memory"

CHILD = """
import json, os, sys, time
sys.path[:0] = {paths!r}
event, turns = json.loads({event!r}), {turns!r}

def now():
    return time.perf_counter(), time.process_time()

def emit(phase, start, **extra):
    wall, cpu = now()
    record = {{"phase": phase, "wall": wall - start[0], "cpu": cpu - start[1], **extra}}
    print("BENCH " + json.dumps(record), flush=True)

class Context:
    function_name, function_version, memory_limit_in_mb = "bench-memory", "1", {memory_mb!r}
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-memory"
    aws_request_id, log_group_name, log_stream_name = "bench", "/aws/lambda/bench-memory", "bench"
    def __init__(self):
        self.ends = time.monotonic() + 29
    def get_remaining_time_in_millis(self):
        return int((self.ends - time.monotonic()) * 1000)

start = now()
import handler.app
emit("init", start)
from handler import snapstart
start = now(); snapstart.snapshot(); emit("before_snapshot", start)
start = now(); snapstart.restore(); emit("after_restore", start)
for number in range(turns + 1):
    event["body"] = json.dumps({{"message": f"Turn {{number}}: tell me something about Japan."}})
    event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    start = now()
    answer = handler.app.lambda_handler(event, Context())
    if answer.get("statusCode") != 200:
        print("BENCH " + json.dumps({{"phase": "error", "answer": answer}}), flush=True)
        os._exit(1)
    emit("first_turn" if number == 0 else "turn", start)
os._exit(0)  # LiteLLM's and botocore's threads: nothing to wait for
"""


def child_env(memory_mb: int, model_url: str, s3_url: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "TZ": "UTC", **FUNCTION_ENV}
    env.update({
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MODEL_API_BASE": model_url,
        "SESSION_BUCKET": BUCKET,
        "AWS_ENDPOINT_URL_S3": s3_url,
    })
    env.pop("SESSION_DIR", None)
    return env


def sample(throttle: cpu_share.Throttle, python313: str, artifact: str, memory_mb: int, env: dict[str, str],
           turns: int, timeout: float) -> dict[str, list[dict]]:
    event = json.loads((ROOT / "events" / "post_message.json").read_text())
    session_id = f"bench_memory_{uuid.uuid4().hex[:12]}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/sessions/{session_id}/messages"
    event["pathParameters"] = {"session_id": session_id}
    code = CHILD.format(paths=[os.path.abspath(artifact)], event=json.dumps(event), turns=turns, memory_mb=memory_mb)
    done = throttle.run([python313, "-I", "-S", "-B", "-c", code], env, cpu_share.share_of(memory_mb), timeout)
    phases: dict[str, list[dict]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            record = json.loads(line[6:])
            phases.setdefault(record["phase"], []).append(record)
    if done.returncode != 0 or "error" in phases or "turn" not in phases:
        raise SystemExit(f"bench_memory: the {memory_mb} MB sample failed: {phases.get('error')}\n"
                         f"{done.stderr[-3000:]}")
    return phases


SPIN = """
import time
wall, cpu = time.perf_counter(), time.process_time()
while time.process_time() - cpu < {seconds!r}:
    sum(range(1000))
print((time.process_time() - cpu) / (time.perf_counter() - wall))
"""


def calibrate(throttle: cpu_share.Throttle, python313: str, sizes: list[int], rounds: int,
              seconds: float) -> dict[int, list[float]]:
    """The share of one CPU a CPU-bound loop gets at each size (cpu time / wall time)."""
    measured: dict[int, list[float]] = {size: [] for size in sizes}
    for index in range(rounds):
        for size in rotate(sizes, index):
            done = throttle.run([python313, "-I", "-S", "-c", SPIN.format(seconds=seconds)], {"PATH": "/usr/bin:/bin"},
                                cpu_share.share_of(size), timeout=60)
            measured[size].append(float(done.stdout))
    return measured


def rotate(items: list[int], index: int) -> list[int]:
    shift = index % len(items)
    return items[shift:] + items[:shift]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def spread(values: list[float]) -> str:
    """p10 and p90 (min and max under 10 values) around the median, as a percentage of it."""
    middle = median(values)
    low, high = (min(values), max(values)) if len(values) < 10 else (lambda q: (q[0], q[-1]))(
        statistics.quantiles(values, n=10))
    return f"{(low - middle) / middle:+.0%}/{(high - middle) / middle:+.0%}" if middle else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python313", required=True)
    parser.add_argument("--artifact", required=True, help="the built artifact directory")
    parser.add_argument("--sizes", default="512,768,1024,1769", help="memory sizes in MB, comma-separated")
    parser.add_argument("--samples", type=int, default=3, help="fresh processes per size")
    parser.add_argument("--turns", type=int, default=30, help="warm turns per process")
    parser.add_argument("--throttle", choices=("auto", "cgroup", "signals"), default="auto")
    parser.add_argument("--period-ms", type=float, default=20.0, help="the throttle's period")
    parser.add_argument("--s3-ms", type=float, default=110.0,
                        help="S3 round trips of a synchronous turn, added to its overhead (make bench-latency)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on one process, seconds")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    sizes += [size for size in (REFERENCE_MB, ONE_VCPU) if size not in sizes]

    throttle = cpu_share.choose(args.throttle, args.period_ms / 1000)
    version = subprocess.run([args.python313, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    print(f"CPU share: {throttle.describe()}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start", flush=True)
    calibration = calibrate(throttle, args.python313, sizes, rounds=3, seconds=0.5)
    print_calibration(sizes, calibration)

    results: dict[int, dict[str, list[dict]]] = {size: {} for size in sizes}
    with ModelServer() as model, moto_server() as s3_url:
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket=BUCKET)
        # one unrecorded process: the artifact's files into the page cache, moto's first requests
        sample(throttle, args.python313, args.artifact, max(sizes), child_env(max(sizes), model.base_url, s3_url),
               1, args.timeout)
        for index in range(args.samples):
            for size in rotate(sizes, index):
                started = time.perf_counter()
                phases = sample(throttle, args.python313, args.artifact, size,
                                child_env(size, model.base_url, s3_url), args.turns, args.timeout)
                for phase, records in phases.items():
                    results[size].setdefault(phase, []).extend({**record, "round": index} for record in records)
                print(f"  sample {index + 1}/{args.samples} {size:5d} MB  init {phases['init'][0]['wall']:6.2f} s  "
                      f"turn p50 {median(r['wall'] for r in phases['turn']) * 1000:6.1f} ms  "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nPython {version}, {args.artifact}, {args.samples} processes per size, {args.turns} warm turns each "
          f"(test model instant, moto S3 on 127.0.0.1); load average {os.getloadavg()[0]:.1f} at the end\n")
    report(sizes, results, args.s3_ms)
    return 0


def print_calibration(sizes: list[int], calibration: dict[int, list[float]]) -> None:
    runs = len(next(iter(calibration.values())))
    print(f"Calibration: a CPU-bound loop's share of one CPU (cpu time / wall time), {runs} runs per size")
    for size in sizes:
        target, got = cpu_share.share_of(size), median(calibration[size])
        print(f"  {size:5d} MB  target {target:5.3f}  measured {got:5.3f} ({got / target - 1:+.1%}; "
              f"runs {', '.join(f'{value:.3f}' for value in calibration[size])})")
    print(flush=True)


ROWS = (
    ("init: import handler.app (s)", "init", "wall", 1),
    ("  its CPU time (s)", "init", "cpu", 1),
    ("SnapStart before snapshot (ms)", "before_snapshot", "wall", 1000),
    ("SnapStart after restore (ms)", "after_restore", "wall", 1000),
    ("first turn after restore (ms)", "first_turn", "wall", 1000),
    ("  its CPU time (ms)", "first_turn", "cpu", 1000),
    ("warm turn p50 wall (ms)", "turn", "wall", 1000),
    ("warm turn p50 CPU (ms)", "turn", "cpu", 1000),
)


def report(sizes: list[int], results: dict[int, dict[str, list[dict]]], s3_ms: float) -> None:
    def value(size: int, phase: str, key: str) -> float:
        return median(record[key] for record in results[size][phase])

    header = "".join(f"{f'{size} MB ({cpu_share.share_of(size):.2f})':>24s}" for size in sizes)
    print(f"{'median (ratio to 1024 MB; spread)':40s}{header}")
    for label, phase, key, scale in ROWS:
        cells = []
        for size in sizes:
            ratio = value(size, phase, key) / value(REFERENCE_MB, phase, key)
            samples = [record[key] for record in results[size][phase]]
            cells.append(f"{value(size, phase, key) * scale:7.2f} ({ratio:4.2f}; {spread(samples)})")
        print(f"{label:40s}" + "".join(f"{cell:>24s}" for cell in cells))

    # A turn's wall time here includes its waits on moto and the test model, which are no CPU of
    # the function's: measured at one full vCPU as wall - CPU, and taken out at every size.
    wait = value(ONE_VCPU, "turn", "wall") - value(ONE_VCPU, "turn", "cpu")

    def overhead(size: int) -> float:  # a warm turn's own work at the share, plus S3's round trips
        return (value(size, "turn", "wall") - wait) * 1000 + s3_ms

    def hooks(size: int) -> float:
        return value(size, "after_restore", "wall") * 1000

    def restored(size: int) -> float:  # what a restored environment's first request waits for, beyond Lambda's restore
        own = value(size, "after_restore", "wall") + value(size, "first_turn", "wall") - wait
        return own * 1000 + s3_ms

    # Each round ran every size back to back: the ratio within a round is less sensitive to load that
    # comes and goes (other processes on this machine) than the ratio of the medians.
    rounds = sorted({record["round"] for record in results[REFERENCE_MB]["turn"]})

    def paired(size: int) -> float:
        def in_round(of: int, number: int) -> float:
            walls = [r["wall"] for r in results[of]["turn"] if r["round"] == number]
            return (median(walls) - wait) * 1000 + s3_ms
        return median(in_round(size, number) / in_round(REFERENCE_MB, number) for number in rounds)

    print(f"\nWaits on moto and the model in a turn (wall - CPU at {ONE_VCPU} MB): {wait * 1000:.1f} ms, "
          f"taken out below; S3's round trips on AWS added instead: {s3_ms:.0f} ms")
    print(f"{'warm turn overhead (ms)':40s}" + "".join(
        f"{f'{overhead(s):7.1f} ({overhead(s) / overhead(REFERENCE_MB):4.2f})':>24s}" for s in sizes))
    print(f"{'  ratio paired by round':40s}" + "".join(f"{f'{paired(s):4.2f}':>24s}" for s in sizes))
    print(f"{'after-restore hooks (ms)':40s}" + "".join(
        f"{f'{hooks(s):7.2f} ({hooks(s) / hooks(REFERENCE_MB):4.2f})':>24s}" for s in sizes))
    print(f"{'restored: hooks + first turn + S3 (ms)':40s}" + "".join(
        f"{f'{restored(s):7.1f} ({restored(s) / restored(REFERENCE_MB):4.2f})':>24s}" for s in sizes))
    fits = [s for s in sorted(sizes) if paired(s) <= 1 + TOLERANCE and within(hooks(s), hooks(REFERENCE_MB))]
    print(f"\nCheapest size whose warm turn overhead (paired) and after-restore hooks stay within {TOLERANCE:.0%} "
          f"of {REFERENCE_MB} MB's (hooks: or within {CLOCK_MS} ms): {fits[0] if fits else REFERENCE_MB} MB")


def within(measured_ms: float, reference_ms: float) -> bool:
    """Within the tolerance of the reference, or closer to it than this machine tells processes apart."""
    return measured_ms <= reference_ms * (1 + TOLERANCE) or measured_ms - reference_ms < CLOCK_MS


if __name__ == "__main__":
    sys.exit(main())
