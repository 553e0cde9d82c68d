"""The artifact build installs only the lock's wheels, each checked against the lock's hash.

These run the build's real install step (the Makefile's install_wheels, through
`make install-wheels`) on one package's lines of the real build/requirements.txt: untampered it
installs; with the wheel's hash altered it fails, offline, from the uv cache (the wheel is the
real one, the lock says otherwise: what a swapped file on an index or a mirror looks like); and
a requirement without any hash fails too.
"""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A small pure-Python wheel of the lock, the same for every platform.
PACKAGE = "six"
ARCH = "x86_64"


def make(*args: str, offline: bool = False) -> subprocess.CompletedProcess:
    env_prefix = ["env", "UV_OFFLINE=1"] if offline else []
    return subprocess.run([*env_prefix, "make", "-s", "--no-print-directory", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def requirement() -> str:
    """The package's entry in the build's requirements file (uv export of uv.lock), hashes included."""
    built = make("build/requirements.txt")
    assert built.returncode == 0, built.stdout + built.stderr
    text = (ROOT / "build" / "requirements.txt").read_text()
    match = re.search(rf"^{PACKAGE}==\S+(?: \\\n\s+--hash=sha256:[0-9a-f]{{64}})+", text, re.M)
    assert match, f"{PACKAGE} with its hashes is not in build/requirements.txt"
    return match.group(0) + "\n"


def wheel_hash() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == PACKAGE]
    (wheel,) = package["wheels"]
    return wheel["hash"].removeprefix("sha256:")


def install(requirements: Path, target: Path, offline: bool = False) -> subprocess.CompletedProcess:
    return make("install-wheels", f"REQUIREMENTS={requirements}", f"DEPS_DIR={target}", f"ARCH={ARCH}",
                offline=offline)


def installed(target: Path) -> bool:
    return any(target.glob(f"{PACKAGE}-*.dist-info"))


@pytest.mark.slow
def test_the_build_installs_a_wheel_whose_hash_matches(requirement: str, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(requirement)

    result = install(requirements, tmp_path / "deps")  # fills the uv cache if needed (PyPI)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(tmp_path / "deps")


@pytest.mark.slow
def test_a_wheel_whose_hash_does_not_match_fails_the_build(requirement: str, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(requirement)
    assert install(good, tmp_path / "warm").returncode == 0, "the wheel must be in the uv cache"
    real = wheel_hash()
    assert real in requirement
    forged = ("0" if real[0] != "0" else "1") + real[1:]
    tampered = tmp_path / "tampered.txt"
    tampered.write_text(requirement.replace(real, forged))

    result = install(tampered, tmp_path / "deps", offline=True)
    output = result.stdout + result.stderr

    assert result.returncode != 0
    assert re.search(r"hash mismatch", output, re.I), output
    assert forged in output and real in output, "uv names the expected and the computed hash"
    assert not installed(tmp_path / "deps")


@pytest.mark.slow
def test_a_requirement_without_a_hash_fails_the_build(requirement: str, tmp_path: Path) -> None:
    unhashed = tmp_path / "unhashed.txt"
    unhashed.write_text(requirement.split(" \\", 1)[0] + "\n")

    result = install(unhashed, tmp_path / "deps", offline=True)

    assert result.returncode != 0
    assert "hash" in (result.stdout + result.stderr).lower()
    assert not installed(tmp_path / "deps")


def test_the_artifact_build_uses_that_install_step() -> None:
    """build/deps-<arch> is installed by the same macro, from the exported lock, with --require-hashes."""
    makefile = (ROOT / "Makefile").read_text()
    macro_found = re.search(r"^define install_wheels\n(.*?)^endef", makefile, re.M | re.S)
    rule_found = re.search(r"^build/deps-%\.stamp: build/requirements\.txt\n((?:\t.*\n)+)", makefile, re.M)
    assert macro_found and rule_found, "the Makefile has lost the install macro or the deps rule"
    macro, deps_rule = macro_found.group(1), rule_found.group(1)

    assert "pip install" in macro and "--require-hashes" in macro and "--no-deps" in macro
    assert "--only-binary :all:" in macro, "wheels only: no sdist build runs code at install time"
    assert "$(call install_wheels,$*,build/deps-$*,$<)" in deps_rule
    assert re.search(r"export --frozen --no-dev", makefile), "the requirements come from the lock, unchanged"
    assert "--no-hashes" not in makefile
