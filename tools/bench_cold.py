"""Cold-start benchmark: how long `import handler.app` takes under Python 3.13, built two ways.

- artifact: what `sam build` ships (trimmed, cpython-313 bytecode, LITELLM_LOCAL_MODEL_COST_MAP).
- naive: the same pinned packages installed plainly for the target (no trimming, no bytecode)
  with LiteLLM's default settings, so LiteLLM tries to download its price map at import.

Each sample is a fresh interpreter (`-I -S -B`: no site-packages, no user environment, and no
bytecode written, as on Lambda's read-only code directory) with nothing on sys.path but the
build under test and the standard library. Samples of the two builds alternate so that load
from other processes falls on both alike. Wall time is what a cold start waits; CPU time is
printed too because it is steadier on a shared machine.

The naive build's price-map download is measured as it happens, bounded by --timeout per
sample: without internet it fails at name resolution (here, within milliseconds) and LiteLLM
falls back to its packaged copy, retrying in a background thread that the sample does not wait
for. Inside a VPC without egress the connection would instead hang until LiteLLM's 5 s timeout.

    python tools/bench_cold.py --python313 build/python313/bin/python3.13 \
        --artifact build/artifact-x86_64 --naive build/deps-x86_64:src --samples 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

TARGET_RATIO = 0.4

# The deployed function's environment (template.yaml), with a key in place of the secret so
# that init makes no AWS call, and the Lambda markers that make Powertools behave as deployed.
FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench-cold",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "MODEL_ID": "openai/gpt-4o-mini",
    "MODEL_API_BASE": "http://127.0.0.1:9/v1",
    "MODEL_API_KEY": "bench",
    "SESSION_BUCKET": "bench-sessions",
    "SESSION_DIR": "/tmp/sessions",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "POWERTOOLS_SERVICE_NAME": "stateful-agent",
    "POWERTOOLS_METRICS_NAMESPACE": "StatefulAgent",
    "LOG_LEVEL": "WARNING",
}

SAMPLE = """
import json, os, sys, time
sys.path[:0] = {paths!r}
wall, cpu = time.perf_counter(), time.process_time()
import handler.app
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
source = sys.modules.get("litellm.litellm_core_utils.get_model_cost_map")
info = source.get_model_cost_map_source_info() if source else {{}}
print("BENCH " + json.dumps({{"wall": wall, "cpu": cpu, "modules": len(sys.modules),
    "cost_map": info.get("source"), "fallback": info.get("fallback_reason")}}), flush=True)
os._exit(0)  # do not wait for LiteLLM's background retry of the price-map download
"""


def sample(python313: str, paths: list[str], env: dict[str, str], timeout: float) -> dict:
    command = [python313, "-I", "-S", "-B", "-c", SAMPLE.format(paths=[os.path.abspath(p) for p in paths])]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"wall": timeout, "cpu": float("nan"), "modules": 0, "timeout": True}
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise SystemExit(f"bench_cold: sample failed ({paths}):\n{done.stderr[-3000:]}")


def build_env(local_cost_map: bool) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "TZ": "UTC", **FUNCTION_ENV}
    # Naive: LiteLLM's default is to download the map. Our code sets the variable only if unset
    # (a safety net), so "False" here keeps LiteLLM's default behaviour in force.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True" if local_cost_map else "False"
    return env


def assert_no_bytecode(paths: list[str]) -> None:
    """The naive build must not have picked up cpython-313 bytecode from an earlier run."""
    for path in paths:
        for root, _, files in os.walk(path):
            if any(f.endswith(".cpython-313.pyc") for f in files):
                raise SystemExit(f"bench_cold: {root} holds cpython-313 bytecode; the naive build must not")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python313", required=True)
    parser.add_argument("--artifact", required=True, help="the built artifact directory")
    parser.add_argument("--naive", required=True, help="naive build: directories, joined by ':'")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on one sample, seconds")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the wall ratio exceeds {TARGET_RATIO}")
    args = parser.parse_args()

    builds = {"artifact": ([args.artifact], build_env(True)), "naive": (args.naive.split(":"), build_env(False))}
    assert_no_bytecode(builds["naive"][0])
    for paths, env in builds.values():  # one unrecorded run each: page cache, not bytecode
        sample(args.python313, paths, env, args.timeout)
    results: dict[str, list[dict]] = {name: [] for name in builds}
    for index in range(args.samples):
        order = list(builds) if index % 2 == 0 else list(reversed(builds))
        for name in order:
            paths, env = builds[name]
            results[name].append(sample(args.python313, paths, env, args.timeout))
            print(f"  sample {index + 1}/{args.samples} {name:8s} wall {results[name][-1]['wall']:6.2f} s  "
                  f"cpu {results[name][-1]['cpu']:6.2f} s", file=sys.stderr)
    report(args, results)
    ratio = median(results["artifact"], "wall") / median(results["naive"], "wall")
    return 1 if args.check and ratio > TARGET_RATIO else 0


def median(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def report(args: argparse.Namespace, results: dict[str, list[dict]]) -> None:
    version = subprocess.run([args.python313, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    print(f"Cold import of handler.app under Python {version}: median of {args.samples} fresh processes each")
    print(f"  {'build':10s} {'wall':>8s} {'cpu':>8s} {'modules':>8s}  price map")
    for name, samples in results.items():
        last = samples[-1]
        where = last.get("cost_map") or "?"
        if last.get("fallback"):
            where += f" ({last['fallback']})"
        timeouts = sum(1 for s in samples if s.get("timeout"))
        note = f"  {timeouts} sample(s) hit the {args.timeout:.0f} s bound" if timeouts else ""
        print(f"  {name:10s} {median(samples, 'wall'):7.2f}s {median(samples, 'cpu'):7.2f}s "
              f"{last['modules']:8d}  {where}{note}")
    wall = median(results["artifact"], "wall") / median(results["naive"], "wall")
    cpu = median(results["artifact"], "cpu") / median(results["naive"], "cpu")
    # Each artifact sample ran right before or after its naive twin: the ratio of each pair is
    # less sensitive to load that comes and goes than the ratio of the two medians.
    pairs = zip(results["artifact"], results["naive"], strict=True)
    paired = statistics.median(a["wall"] / n["wall"] for a, n in pairs)
    verdict = "meets" if wall <= TARGET_RATIO else "MISSES"
    print(f"  ratio artifact/naive: wall {wall:.2f} (paired {paired:.2f}), cpu {cpu:.2f}  "
          f"({verdict} the target <= {TARGET_RATIO} on wall time)")


if __name__ == "__main__":
    sys.exit(main())
