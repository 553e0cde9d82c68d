#!/usr/bin/env bash
# Fetch CPython 3.13 (the Lambda python3.13 runtime's version) from Debian trixie into a folder
# and write a wrapper that runs it through trixie's own loader, so a host with another Python
# (bookworm's 3.11 here) can compile cpython-313 bytecode and run the built artifact.
#
# Nothing is installed system-wide: apt-get uses a private sources list, package lists and
# cache under DEST, `apt-get download` fetches the .debs and `dpkg -x` unpacks them.
#
# Usage: tools/python313/fetch.sh [DEST]      (default build/python313)
# Result: DEST/bin/python3.13 (a wrapper script). Re-running is a no-op once it works.
set -euo pipefail

DEST="$(mkdir -p "${1:-build/python313}" && cd "${1:-build/python313}" && pwd)"
SUITE="${PYTHON313_SUITE:-trixie}"
MIRROR="${PYTHON313_MIRROR:-http://deb.debian.org/debian}"
WRAPPER="$DEST/bin/python3.13"

if [ -x "$WRAPPER" ] && "$WRAPPER" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
    echo "fetch.sh: needs apt-get and dpkg (Debian/Ubuntu); install a python3.13 instead" >&2
    exit 1
}

ARCH="$(dpkg --print-architecture)"
case "$ARCH" in
    amd64) TRIPLET=x86_64-linux-gnu; LOADER=ld-linux-x86-64.so.2 ;;
    arm64) TRIPLET=aarch64-linux-gnu; LOADER=ld-linux-aarch64.so.1 ;;
    *) echo "fetch.sh: unsupported architecture $ARCH" >&2; exit 1 ;;
esac

# The interpreter, its standard library, and the shared libraries they link against, all from
# the same suite: trixie's python3.13 needs glibc >= 2.38, newer than bookworm's.
PACKAGES=(
    python3.13-minimal libpython3.13-minimal libpython3.13-stdlib
    libc6 libgcc-s1 libssl3t64 libzstd1 zlib1g libexpat1 libbz2-1.0 libffi8 liblzma5
    libsqlite3-0 libuuid1 libncursesw6 libtinfo6
)

APT="$DEST/apt"
rm -rf "$APT" "$DEST/debs" "$DEST/root"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$DEST/debs" "$DEST/root" "$DEST/bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" >"$APT/sources.list"
: >"$APT/status"
APT_OPTS=(
    -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Dir::State::status=$APT/status"
    -o "APT::Architecture=$ARCH" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1"
)
echo "fetch.sh: downloading python3.13 from Debian $SUITE ($ARCH)" >&2
apt-get "${APT_OPTS[@]}" -qq update
(cd "$DEST/debs" && apt-get "${APT_OPTS[@]}" -qq download "${PACKAGES[@]}")
for deb in "$DEST"/debs/*.deb; do dpkg -x "$deb" "$DEST/root"; done
rm -rf "$APT"

cat >"$WRAPPER" <<WRAP
#!/bin/sh
# Runs Debian $SUITE's python3.13 with its own loader and libraries (see tools/python313/fetch.sh).
# Child processes started via sys.executable bypass this wrapper and will not start on this host.
ROOT="\$(cd "\$(dirname "\$0")/.." && pwd)/root"
LIB="\$ROOT/usr/lib/$TRIPLET"
exec "\$LIB/$LOADER" --library-path "\$LIB" "\$ROOT/usr/bin/python3.13" "\$@"
WRAP
chmod +x "$WRAPPER"

# Debian compiles the standard library at install time (py3compile); do it here so imports
# under this interpreter measure the same as under Lambda's, which ships the bytecode.
# One process: compileall's workers would start sys.executable without the loader.
"$WRAPPER" -m compileall -q "$DEST/root/usr/lib/python3.13" >/dev/null || true
"$WRAPPER" -c 'import sys, ssl; print("fetch.sh: ready:", sys.version.split()[0], ssl.OPENSSL_VERSION)' >&2
