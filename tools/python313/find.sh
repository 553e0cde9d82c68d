#!/usr/bin/env bash
# Print the path of a CPython 3.13 to build and test with, or nothing if there is none.
#
# In order: $PYTHON313; a working python3.13 on PATH; one fetched earlier into build/python313;
# else, on a Debian/Ubuntu host, fetch Debian trixie's (tools/python313/fetch.sh, a few seconds).
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail
cd "$(dirname "$0")/../.."

works() { "$1" -c 'import sys; sys.exit(sys.implementation.cache_tag != "cpython-313")' >/dev/null 2>&1; }

if [ -n "${PYTHON313:-}" ]; then
    works "$PYTHON313" || { echo "find.sh: PYTHON313=$PYTHON313 is not a working CPython 3.13" >&2; exit 1; }
    echo "$PYTHON313"; exit 0
fi
if command -v python3.13 >/dev/null && works python3.13; then
    command -v python3.13; exit 0
fi
FETCHED="$PWD/build/python313/bin/python3.13"
if [ -x "$FETCHED" ] && works "$FETCHED"; then
    echo "$FETCHED"; exit 0
fi
if command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
    tools/python313/fetch.sh build/python313 >&2 && works "$FETCHED" && { echo "$FETCHED"; exit 0; }
fi
echo "find.sh: no CPython 3.13 (set PYTHON313, install python3.13, or use a Debian/Ubuntu host)" >&2
