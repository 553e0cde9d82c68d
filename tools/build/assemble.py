"""Assemble the Lambda artifact: installed wheels minus the trim list, plus our code, plus bytecode.

Runs under the build host's Python (3.11 or newer); the bytecode is compiled by a python3.13
(the runtime's version) in child processes, because a .pyc is specific to the interpreter
version that wrote it. Without a python3.13 the artifact is still built, without bytecode,
and says so: it works, but every cold start then compiles what it imports.

    python tools/build/assemble.py --arch x86_64 --deps build/deps-x86_64 --src src \
        --out build/artifact-x86_64 [--python313 PATH]
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Our packages under the code root (template CodeUri: src/); the handler is handler.app.
OUR_PACKAGES = ("agent", "handler", "agent_tools")  # agent_tools: the user's tool modules (docs/agent.md)
DEFAULT_TRIM_LISTS = ("trim.txt", "trim-dead.txt")


def read_trim_list(path: Path, deps: Path) -> tuple[list[str], list[str]]:
    """(drop, keep) glob lists; `!pattern` keeps what an earlier pattern would drop.

    A list stamped `# for: name==version ...` (a generated one) applies only while the
    installed versions match: a module that is dead in one release may be alive in the next.
    """
    drop: list[str] = []
    keep: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("# for:") and not versions_match(line.removeprefix("# for:").split(), deps):
            print(f"assemble: WARNING {path} was made for other versions ({line[6:].strip()}); "
                  "ignoring it (run `make trim-dead`)", file=sys.stderr)
            return [], []
        line = line.split("#", 1)[0].strip()
        if line:
            (keep if line.startswith("!") else drop).append(line.lstrip("!"))
    return drop, keep


def versions_match(pins: list[str], deps: Path) -> bool:
    for pin in pins:
        name, _, version = pin.partition("==")
        if not list(deps.glob(f"{name.replace('-', '_')}-{version}.dist-info")):
            return False
    return True


def read_names(path: Path) -> list[str]:
    return [n for n in (line.split("#", 1)[0].strip() for line in path.read_text().splitlines()) if n]


def trimmed(relative: str, drop: list[str], keep: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(relative, p) for p in drop) and not any(
        fnmatch.fnmatchcase(relative, p) for p in keep
    )


def copy_dependencies(deps: Path, out: Path, drop: list[str], keep: list[str]) -> int:
    """Copy installed dependencies into `out`, leaving out trimmed files; returns bytes left out.

    Copies rather than links: uv installs by hard-linking its cache, and the strip step below
    must never rewrite a file that is shared with that cache.
    """
    left_out = 0
    for root, dirs, files in os.walk(deps):
        dirs.sort()
        rel_root = Path(root).relative_to(deps)
        for name in sorted(files):
            relative = (rel_root / name).as_posix()
            source = Path(root) / name
            if trimmed(relative, drop, keep):
                left_out += source.stat().st_size
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return left_out


def copy_our_code(src: Path, out: Path) -> None:
    for package in OUR_PACKAGES:
        shutil.copytree(src / package, out / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def find_strip(arch: str) -> str | None:
    """A `strip` that reads the target's ELF files: the host's own when the architectures match,
    else a cross or multi-target one (binutils-aarch64-linux-gnu, llvm-strip)."""
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
    candidates = [f"{machine}-linux-gnu-strip", "llvm-strip"]
    if platform.machine() in (machine, "arm64" if machine == "aarch64" else machine):
        candidates.insert(0, "strip")
    return next((found for c in candidates if (found := shutil.which(c))), None)


def strip_native_libraries(out: Path, strip: str | None) -> int:
    """Drop symbol tables from shared libraries that ship unstripped; returns bytes saved.

    Only symbols go, not code: tracebacks of Python code are unaffected. A file the tool
    cannot read is left as it was.
    """
    if strip is None:
        return 0
    saved = 0
    for library in sorted(out.rglob("*.so*")):
        if not library.is_file() or library.is_symlink():
            continue
        before = library.stat().st_size
        with tempfile.NamedTemporaryFile(dir=library.parent, delete=False) as handle:
            stripped = Path(handle.name)
        done = subprocess.run(
            [strip, "--strip-unneeded", "-o", str(stripped), str(library)], capture_output=True
        )
        if done.returncode == 0 and stripped.stat().st_size < before:
            shutil.copymode(library, stripped)
            os.replace(stripped, library)
            saved += before - library.stat().st_size
        else:
            stripped.unlink(missing_ok=True)
    return saved


def compile_bytecode(out: Path, python313: str, jobs: int, keep_source: list[str] | None) -> None:
    """Compile every module with python3.13, in `jobs` processes we start ourselves.

    compileall's own worker pool re-executes sys.executable, which for the fetched Debian
    python3.13 would bypass the loader wrapper and fail to start, hence the manual sharding.
    Modules outside `keep_source` (top-level names) ship as bytecode only; None keeps all.
    """
    keep = "*" if keep_source is None else ",".join(keep_source)
    command = [python313, "-X", "no_debug_ranges", str(HERE / "compile313.py"), str(out), keep]
    workers = [subprocess.Popen([*command, str(index), str(jobs)]) for index in range(jobs)]
    failed = [w.args for w in workers if w.wait() != 0]
    if failed:
        raise SystemExit(f"assemble: bytecode compilation failed: {failed}")


def find_python313(explicit: str | None) -> str | None:
    """The interpreter to compile with: --python313, else a working python3.13 on PATH."""
    candidates = [explicit] if explicit else ["python3.13"]
    for candidate in candidates:
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True, text=True, timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == "cpython-313":
            return candidate
    if explicit:
        raise SystemExit(f"assemble: {explicit} is not a working CPython 3.13")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deps", type=Path, required=True, help="dependencies installed for the target")
    parser.add_argument("--src", type=Path, required=True, help="code root holding agent/ and handler/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--trim", type=Path, action="append",
                        help=f"trim list (repeatable; default {DEFAULT_TRIM_LISTS})")
    parser.add_argument("--keep-source", type=Path, default=HERE / "keep-source.txt",
                        help="top-level packages that ship their .py sources beside the bytecode")
    parser.add_argument("--all-sources", action="store_true", help="keep every .py source")
    parser.add_argument("--no-bytecode", action="store_true", help="skip compilation")
    parser.add_argument("--arch", choices=("x86_64", "arm64"), required=True, help="Lambda architecture")
    parser.add_argument("--python313", help="a CPython 3.13 to compile bytecode with")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    python313 = None if args.no_bytecode else find_python313(args.python313)
    drop, keep = [], []
    for trim_list in args.trim or [HERE / name for name in DEFAULT_TRIM_LISTS]:
        more_drop, more_keep = read_trim_list(trim_list, args.deps)
        drop += more_drop
        keep += more_keep
    keep_source = None if args.all_sources else [*OUR_PACKAGES, *read_names(args.keep_source)]
    staging = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    left_out = copy_dependencies(args.deps, staging, drop, keep)
    copy_our_code(args.src, staging)
    strip = find_strip(args.arch)
    if strip is None:
        print(f"assemble: note: no strip tool for {args.arch} (e.g. apt-get install "
              "binutils-aarch64-linux-gnu); native libraries keep their symbol tables", file=sys.stderr)
    saved = strip_native_libraries(staging, strip)
    if python313:
        compile_bytecode(staging, python313, args.jobs, keep_source)
    elif not args.no_bytecode:
        print(
            "assemble: WARNING no CPython 3.13 found (set PYTHON313 or put python3.13 on PATH): "
            "the artifact has no bytecode, so every cold start compiles what it imports",
            file=sys.stderr,
        )

    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    print(
        f"assemble: {args.out}: trimmed {left_out / 1e6:.1f} MB, stripped {saved / 1e6:.1f} MB, "
        f"bytecode {'cpython-313' if python313 else 'none'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
