"""Compile one shard of an artifact's modules to cpython-313 bytecode (run BY python3.13).

    python3.13 -X no_debug_ranges compile313.py ARTIFACT_DIR KEEP_SOURCE SHARD SHARDS

KEEP_SOURCE is a comma-separated list of top-level names whose modules keep their .py beside
the bytecode (in __pycache__), or `*` for all. Every other module ships as bytecode only: a
`name.pyc` where `name.py` was, which CPython imports without a source (sourceless import).

Why unchecked-hash pycs: Lambda's code directory is read-only and never changes after deploy,
so the interpreter never needs to compare a pyc against its source. Timestamp pycs would be
compared on every import, and the zip SAM uploads keeps mtimes only to 2 s, so a mismatch
would silently recompile in memory on every cold start; checked-hash pycs would read and
hash every source file on every import. Unchecked-hash pycs are loaded without looking at the
source at all.

Why `-X no_debug_ranges`: it leaves out the column tables (the ^^^^ under a traceback line),
about a fifth of each pyc; file names and line numbers in tracebacks stay.

Why bytecode-only for most libraries: sources and bytecode together do not fit the size
budget. A bytecode-only module still names its file and line in a traceback, with the path
relative to the code root (e.g. `litellm/main.py`), just without the source line.
"""

import os
import py_compile
import sys
import zlib

UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH


def modules(root: str) -> list[str]:
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        found.extend(os.path.join(directory, f) for f in sorted(files) if f.endswith(".py"))
    return found


def keeps_source(relative: str, keep: set[str]) -> bool:
    top = relative.split(os.sep, 1)[0].removesuffix(".py")
    return "*" in keep or top in keep


def compile_one(path: str, root: str, keep: set[str]) -> None:
    relative = os.path.relpath(path, root)
    if keeps_source(relative, keep):
        py_compile.compile(path, doraise=True, invalidation_mode=UNCHECKED)
        return
    # dfile: importlib corrects a module's file name only when it has a source, so give
    # bytecode-only modules their path relative to the code root, not the build folder's.
    py_compile.compile(path, cfile=path + "c", dfile=relative, doraise=True, invalidation_mode=UNCHECKED)
    os.remove(path)


def main() -> int:
    root, keep_arg, shard, shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    assert sys.implementation.cache_tag == "cpython-313", sys.implementation.cache_tag
    keep = set(keep_arg.split(","))
    # A module's shard comes from its own path, not its place in a listing: the shards run at once,
    # each replacing the .py files it compiles, so a listing taken a moment later is shorter and
    # its positions would hand one module to two shards (one then finds its source gone).
    mine = [path for path in modules(root) if zlib.crc32(os.path.relpath(path, root).encode()) % shards == shard]
    for path in mine:
        try:
            compile_one(path, root, keep)
        except py_compile.PyCompileError as error:
            # Left as source: it could never be imported anyway (e.g. Python 2 syntax).
            print(f"compile313: not compiled: {os.path.relpath(path, root)}: {error.exc_type_name}",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
