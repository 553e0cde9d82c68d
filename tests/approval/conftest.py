"""The function with an acting tool that needs approval: ``cancel_order`` (acting_tools.py), given
as a tool module (AGENT_TOOLS) and named in APPROVAL_TOOLS."""

import pytest

APPROVAL_ENV = {"AGENT_TOOLS": "tests.approval.acting_tools", "APPROVAL_TOOLS": "cancel_order"}


@pytest.fixture
def approval_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, **APPROVAL_ENV}
