"""Fixtures for the template's tests: the template as written, SAM's transform of it (run once per
test session, about 2 s), and the stack it makes for the default and the alternative parameters."""

import pytest
from cfnlint.decode import decode_str

from tests.template.stack import AGENT, ALTERNATIVE, TEMPLATE, Stack, transform


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
