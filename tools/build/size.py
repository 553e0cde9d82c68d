"""Unzipped size of a built artifact, broken down, checked against a budget.

Lambda counts the unzipped bytes of function plus layers against 262,144,000; this function
has no layers, so the artifact directory is the whole of it. Sizes are file sizes (what
unzip writes), not disk blocks.

    python tools/build/size.py build/artifact-arm64 [--budget 150000000] [--top 12]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

LAMBDA_LIMIT = 262_144_000


def kind(name: str) -> str:
    if name.endswith(".pyc"):
        return "bytecode"
    if name.endswith(".py"):
        return "source"
    if name.endswith(".so") or ".so." in name:
        return "native"
    return "data"


def measure(root: Path) -> tuple[collections.Counter, collections.Counter]:
    """(bytes by kind, bytes by top-level entry, dist-info folded into its package)."""
    by_kind: collections.Counter = collections.Counter()
    by_top: collections.Counter = collections.Counter()
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            size = path.lstat().st_size
            top = path.relative_to(root).parts[0]
            top = top.split("-")[0] if top.endswith(".dist-info") else top.removesuffix(".py").removesuffix(".pyc")
            by_kind[kind(name)] += size
            by_top[top.lower().replace("-", "_")] += size
    return by_kind, by_top


def report(root: Path, budget: int, top: int) -> int:
    by_kind, by_top = measure(root)
    total = sum(by_kind.values())
    print(f"{root}: {total:,} bytes ({total / 1e6:.1f} MB) unzipped; budget {budget / 1e6:.0f} MB, "
          f"Lambda limit {LAMBDA_LIMIT / 1e6:.1f} MB")
    print("  by kind:    " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in by_kind.most_common()))
    print("  largest:    " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in by_top.most_common(top)) + " (MB)")
    if total > budget:
        print(f"  OVER BUDGET by {(total - budget) / 1e6:.1f} MB", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--budget", type=int, default=LAMBDA_LIMIT, help="bytes; exit 1 above it")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    return report(args.artifact, args.budget, args.top)


if __name__ == "__main__":
    sys.exit(main())
