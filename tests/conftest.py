"""Shared fixtures: the test model server, moto, and the handler loaded under a chosen environment."""

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest

from model_server import ModelServer
from tests.fixtures.moto_server import FAKE_CREDENTIALS, MotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from dev_server import http_api_event  # noqa: E402  (the twin's event builder, as make dev uses it)
from lambda_twin import LambdaContext  # noqa: E402

BUCKET = "test-sessions"
# Variables the handler reads; cleared before each test so a developer's shell or .env can't leak in.
HANDLER_VARIABLES = [
    "MODEL_ID", "MODEL_API_BASE", "MODEL_API_KEY", "MODEL_API_KEY_SECRET_ARN", "MODEL_PARAMS", "SYSTEM_PROMPT",
    "SESSION_BUCKET", "SESSION_PREFIX", "SESSION_DIR", "HISTORY_WINDOW", "MAX_MESSAGE_CHARS",
    "SESSION_LEASE_SECONDS", "SESSION_TTL_DAYS", "IDEMPOTENCY_TABLE", "IDEMPOTENCY_TTL_SECONDS",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_LAMBDA_FUNCTION_NAME", "AWS_PROFILE",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HANDLER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def s3_bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh bucket on the moto server; the handler is pointed at it through the environment."""
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("SESSION_BUCKET", BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server.endpoint_url)
    yield s3
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=BUCKET)


def bucket_keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


class Api:
    """Calls the real handler with HTTP API v2 events and gives back (status, headers, json)."""

    def __init__(self, lambda_handler: Callable) -> None:
        self.lambda_handler = lambda_handler

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                caller: str | None = None, raw_body: str | None = None) -> tuple[int, dict[str, str], Any]:
        data = raw_body.encode() if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        event = http_api_event(method, path, {"content-type": "application/json", **(headers or {})}, data,
                               "127.0.0.1")
        if caller:
            event["requestContext"]["authorizer"] = {"iam": {"userArn": caller, "accountId": "123456789012"}}
        response = self.lambda_handler(event, LambdaContext())
        text = response.get("body") or ""
        return response["statusCode"], response.get("headers") or {}, json.loads(text) if text else None

    def post(self, session_id: str, message: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", f"/sessions/{session_id}/messages", {"message": message}, **kwargs)

    def history(self, session_id: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("GET", f"/sessions/{session_id}/messages", **kwargs)

    def delete(self, session_id: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("DELETE", f"/sessions/{session_id}", **kwargs)

    def invoke(self, event: Any) -> Any:
        return self.lambda_handler(event, LambdaContext())


def load_handler() -> Callable:
    """Import the handler afresh, as a new Lambda container would, under the current environment."""
    for name in [m for m in sys.modules if m == "handler" or m.startswith("handler.")]:
        del sys.modules[name]
    return importlib.import_module("handler.app").lambda_handler


@pytest.fixture
def session_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "sessions"
    monkeypatch.setenv("SESSION_DIR", str(directory))
    return directory


@pytest.fixture
def model_env(model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> ModelServer:
    monkeypatch.setenv("MODEL_ID", "openai/test-model")
    monkeypatch.setenv("MODEL_API_BASE", model_server.base_url)
    monkeypatch.setenv("MODEL_API_KEY", "sk-test-key")
    return model_server


@pytest.fixture
def api(model_env: ModelServer, session_dir: Path) -> Api:
    """The handler on local files, talking to the test model server."""
    return Api(load_handler())


@pytest.fixture
def s3_api(model_env: ModelServer, session_dir: Path, s3_bucket: Any) -> Api:
    """The handler on S3 (moto server), talking to the test model server."""
    return Api(load_handler())


def stored_files(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a fresh process running the handler (tools/invoke.py)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "DOTENV_FILE": os.devnull, **extra}
