"""Store tests run against both backends: S3 (moto's server on 127.0.0.1) and local files."""

from pathlib import Path
from typing import Any

import pytest

from agent.store import SessionStore

from .helpers import make_store


@pytest.fixture(params=["s3", "files"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "s3":
        request.getfixturevalue("s3_bucket")
    return request.param


@pytest.fixture
def store(kind: str, tmp_path: Path) -> SessionStore:
    return make_store(kind, tmp_path)


@pytest.fixture
def short_lease_store(kind: str, tmp_path: Path) -> SessionStore:
    """A store whose leases last one second, so a dead holder's lease runs out within the test."""
    return make_store(kind, tmp_path, lease_seconds=1)


@pytest.fixture
def s3_store(s3_bucket: Any, tmp_path: Path) -> SessionStore:
    return make_store("s3", tmp_path)
