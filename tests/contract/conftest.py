"""The twin of tests/twin (its fixtures, its test model), for the contract's fuzzer."""

from tests.twin.conftest import model, orders_mcp_server, running, sessions  # noqa: F401  (fixtures, shared by name)
