"""Shared fixtures: the test model, AWS (moto), and the handler built for a chosen environment.

The handler is built with `handler.composition.build(env)` from an explicit environment, as a new
Lambda container would be, so tests never share state through the process environment or
sys.modules. Only what boto3 itself reads (credentials, region, endpoints) goes to os.environ.
"""

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from model_server import ModelServer
from moto import mock_aws

from tests.fixtures.moto_server import FAKE_CREDENTIALS, MotoServer

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "test-sessions"

# Importing handler.app builds a container from os.environ: keep a developer's shell or .env out.
for _name in [n for n in os.environ if n.startswith(("MODEL_", "SESSION_", "HISTORY_", "MEMORY", "TURN_",
                                                      "IDEMPOTENCY_", "AWS_ENDPOINT_URL", "WEBSOCKET_"))]:
    del os.environ[_name]
os.environ.update({**FAKE_CREDENTIALS, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                   "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)

from agent.aws_clients import AwsClients  # noqa: E402  (after the environment is clean)
from handler.app import handler_for  # noqa: E402  (after the environment is clean)
from handler.composition import Services, build  # noqa: E402  (after the environment is clean)
from handler.worker import worker_handler  # noqa: E402  (after the environment is clean)
from twin.events import http_api_event  # noqa: E402  (after the environment is clean)
from twin.lambda_context import LambdaContext  # noqa: E402  (after the environment is clean)


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def s3() -> Iterator[Any]:
    """An in-process S3 (moto) holding an empty sessions bucket, for the test's duration."""
    with mock_aws():
        client = BOTO3_SESSION.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def bucket_keys(s3_client: Any) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def stored_files(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()
                  and p.name not in (".lock", ".leases.lock"))


# One boto3 session for the run: a new one loads every service model again (~0.1 s a client).
# Each container still makes its own clients from it, as each Lambda container would.
BOTO3_SESSION = boto3.session.Session()


class Api:
    """The real handler, built for ``env``, called with the events API Gateway sends."""

    def __init__(self, env: dict[str, str], clients: AwsClients | None = None) -> None:
        self.env = env
        self.services: Services = build(env, clients or AwsClients(BOTO3_SESSION))
        self.lambda_handler: Callable = handler_for(self.services)
        # TurnWorkerFunction's handler, on the same container (the two functions share the store).
        self.worker_handler: Callable = worker_handler(self.services.worker, self.services.observe)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                caller: str | None = None, raw_body: str | None = None,
                timeout: float = 29.0) -> tuple[int, dict[str, str], Any]:
        data = raw_body.encode() if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        event = http_api_event(method, path, {"content-type": "application/json", **(headers or {})}, data,
                               "127.0.0.1")
        if caller:
            event["requestContext"]["authorizer"] = {"iam": {"userArn": caller, "accountId": "123456789012"}}
        response = self.lambda_handler(event, LambdaContext(timeout_seconds=timeout))
        text = response.get("body") or ""
        return response["statusCode"], response.get("headers") or {}, json.loads(text) if text else None

    def post(self, session_id: str, message: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", f"/sessions/{session_id}/messages", {"message": message}, **kwargs)

    def history(self, session_id: str, query: str = "", **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("GET", f"/sessions/{session_id}/messages" + (f"?{query}" if query else ""), **kwargs)

    def delete(self, session_id: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("DELETE", f"/sessions/{session_id}", **kwargs)

    def invoke(self, event: Any, timeout: float = 29.0) -> Any:
        return self.lambda_handler(event, LambdaContext(timeout_seconds=timeout))

    def invoke_worker(self, event: Any, timeout: float = 300.0) -> Any:
        """TurnWorkerFunction, as the turn queue's event source mapping invokes it."""
        return self.worker_handler(event, LambdaContext(timeout_seconds=timeout))

    def texts(self, session_id: str, **kwargs: Any) -> list[str]:
        status, _, body = self.history(session_id, **kwargs)
        assert status == 200, body
        return [m["text"] for m in body["messages"]]


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def env(model_server: ModelServer, session_dir: Path) -> dict[str, str]:
    """The function's environment on local files, talking to the test model."""
    return {"MODEL_ID": "openai/test-model", "MODEL_API_BASE": model_server.base_url, "MODEL_API_KEY": "sk-test-key",
            "SESSION_DIR": str(session_dir), "LOG_LEVEL": "WARNING"}


@pytest.fixture
def api(env: dict[str, str]) -> Api:
    """The handler on local files, talking to the test model."""
    return Api(env)


@pytest.fixture
def s3_api(env: dict[str, str], s3: Any) -> Api:
    """The handler on S3 (moto, in-process), talking to the test model."""
    return Api({**env, "SESSION_BUCKET": BUCKET})


@pytest.fixture(params=["files", "s3"])
def any_api(request: pytest.FixtureRequest) -> Api:
    """The same test on local files and on S3."""
    return request.getfixturevalue("api" if request.param == "files" else "s3_api")


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a fresh process running the handler (tools/invoke.py)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "DOTENV_FILE": os.devnull, **extra}
