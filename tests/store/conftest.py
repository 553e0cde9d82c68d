"""Store tests run against both backends: S3 (moto, in-process) and local files.

The lease clock is a test's own (``clock.advance``), so lease expiry costs no sleeping. moto's
HTTP server (for the slow tests) comes from tests/conftest.py.
"""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from model_server import ModelServer
from moto import mock_aws

from agent.aws_clients import AwsClients
from agent.store import SessionStore

from .helpers import BUCKET, Backend, Clock, S3Requests


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """tests/conftest.py's, but not waited for at the end: its shutdown polls every 0.5 s."""
    server = ModelServer().start()
    yield server
    threading.Thread(target=server.stop, daemon=True).start()


@pytest.fixture
def clock() -> Clock:
    return Clock()


class SharedAws:
    """One boto3 session (and its clients) for the whole run: a new session reloads S3's service
    model (~0.1 s). moto's mock is per test, so every test still gets an empty S3."""

    def __init__(self) -> None:
        self.session = boto3.session.Session()
        self.requests = S3Requests(self.session)
        self.clients = AwsClients(self.session)
        self._own: Any = None

    @property
    def own(self) -> Any:
        """A client of a separate session, so that the tests' own reads are not counted."""
        if self._own is None:
            self._own = boto3.session.Session().client("s3")
        return self._own


@pytest.fixture(scope="session")
def shared_aws() -> SharedAws:
    return SharedAws()


@pytest.fixture
def s3_backend(shared_aws: SharedAws, tmp_path: Path) -> Iterator[Backend]:
    """A bucket in moto's in-process S3; the store's clients share one counted boto3 session."""
    with mock_aws():
        shared_aws.own.create_bucket(Bucket=BUCKET)
        shared_aws.requests.take()
        yield Backend("s3", tmp_path / "unused", shared_aws.own, shared_aws.clients, shared_aws.requests)


@pytest.fixture
def files_backend(tmp_path: Path) -> Backend:
    return Backend("files", tmp_path / "sessions")


@pytest.fixture(params=["s3", "files"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def store(backend: Backend, clock: Clock) -> SessionStore:
    return backend.store(clock)


@pytest.fixture
def short_lease_store(backend: Backend, clock: Clock) -> SessionStore:
    """Leases of one second: the test's clock runs a dead holder's lease out."""
    return backend.store(clock, lease_seconds=1)


@pytest.fixture
def s3_store(s3_backend: Backend, clock: Clock) -> SessionStore:
    return s3_backend.store(clock)


@pytest.fixture
def requests(s3_backend: Backend) -> Any:
    assert s3_backend.requests is not None
    s3_backend.requests.take()
    return s3_backend.requests
