"""Run a command while holding an exclusive lock on a file: python3 locked.py LOCKFILE COMMAND...

`sam build --parallel` builds the three functions at the same time, each through
`make sam-artifact`, and all of them share build/. Under the lock the first one builds and the
others, finding everything up to date, only copy the artifact. (fcntl: Linux and macOS, where
`make` and this build run; `flock(1)` is not on macOS.)
"""

import fcntl
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    lock_path, command = Path(argv[0]), argv[1:]
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
