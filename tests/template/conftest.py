"""Fixtures for the template's tests: the template as written, SAM's transform of it (run once per
test session, about 2 s), and the stack it makes for the default and the alternative parameters.

Checkov's scan (tests/template/checkov.py: 15 s of one core idle, over a minute under load) starts
as soon as the run is collected, when a selected test asks for it, and runs beside the other tests
on the second core; only the test that reads its report waits for it."""

from collections.abc import Iterator

import pytest
from cfnlint.decode import decode_str

from tests.template.checkov import CheckovScan
from tests.template.stack import AGENT, ALTERNATIVE, TEMPLATE, Stack, transform

_scan: CheckovScan | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _scan
    if _scan is None and any("checkov_report" in getattr(item, "fixturenames", ()) for item in session.items):
        _scan = CheckovScan()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _scan is not None:
        _scan.stop()  # a run stopped early (-x, Ctrl-C) leaves no checkov behind


@pytest.fixture(scope="session")
def checkov_report() -> Iterator[dict]:
    """Checkov's report on the template and its two transforms (see checkov.py), with its exit code."""
    global _scan
    if _scan is None:  # asked for by a test collected some other way
        _scan = CheckovScan()
    yield _scan.report()


@pytest.fixture(scope="session")
def transformed() -> dict:
    return transform(TEMPLATE.read_text())


@pytest.fixture(scope="session")
def template() -> dict:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return decoded


@pytest.fixture(scope="session")
def defaults(transformed: dict) -> Stack:
    return Stack(transformed)


@pytest.fixture(scope="session")
def alternative(transformed: dict) -> Stack:
    return Stack(transformed, **ALTERNATIVE)


@pytest.fixture(scope="session")
def alias(template: dict) -> str:
    """The logical ID SAM gives the alias that AutoPublishAlias creates (what SnapStart applies to)."""
    return f"{AGENT}Alias{template['Resources'][AGENT]['Properties']['AutoPublishAlias']}"
