"""The built artifact, run as Lambda runs it: under Python 3.13, from its own directory alone.

What `sam build` ships is trimmed (tools/build/trim.txt) and mostly bytecode-only; these tests
are what shows the trimming safe. They serve the reference conversation from the x86_64
artifact (the architecture this host can execute; arm64 differs only in its wheels' native
libraries) with nothing but the artifact and the standard library on sys.path, against the
test model server and moto's S3 and DynamoDB on 127.0.0.1. Each turn is a fresh process, as
each cold container is.

The artifact and a python3.13 come from `make artifact-test-prereqs`, run by the first test
here: about two minutes on a fresh machine (Debian's python3.13, the wheels, the assembly),
a no-op when nothing changed.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from model_server import ModelServer

from tests.fixtures.moto_server import FAKE_CREDENTIALS, MotoServer

# Builds the artifact (minutes on a fresh machine) and starts Python 3.13 processes.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("artifact_driver.py")
SESSION = "user_arindam_convo_123"
BUCKET = "artifact-smoke-sessions"
HOST_ARCH = "arm64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"

# The deployed function's environment (template.yaml), pointed at local servers.
FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "AgentFunction",
    "AWS_LAMBDA_FUNCTION_VERSION": "1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_REGION": "us-east-1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "POWERTOOLS_SERVICE_NAME": "stateful-agent",
    "POWERTOOLS_METRICS_NAMESPACE": "StatefulAgent",
    "SESSION_DIR": "/tmp/sessions",
    "LOG_LEVEL": "WARNING",
    "TZ": "UTC",
    **FAKE_CREDENTIALS,
}


@pytest.fixture(scope="module")
def built() -> tuple[str, Path]:
    """(python3.13, artifact directory), built by make if needed."""
    make = subprocess.run(["make", "-s", "--no-print-directory", "artifact-test-prereqs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    python313 = subprocess.run(["tools/python313/find.sh"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not python313 and not os.environ.get("CI"):
        pytest.skip("no CPython 3.13 on this machine (set PYTHON313); CI fetches Debian's")
    assert make.returncode == 0, make.stdout[-3000:] + make.stderr[-3000:]
    return python313, ROOT / "build" / f"artifact-{HOST_ARCH}"


def run_driver(python: str, artifact: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    # Nothing of this process's environment leaks in: no venv, no PYTHONPATH, no AWS profile.
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run([python, "-I", "-S", "-B", str(DRIVER), str(artifact), *args], env={**base, **env},
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("DRIVER ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1][len("DRIVER "):])


@pytest.fixture
def aws(moto_server: MotoServer) -> Iterator[dict[str, str]]:
    """The sessions bucket (idempotency records live in it too) on the moto server."""
    clients = {"s3": boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    yield {"SESSION_BUCKET": BUCKET, "AWS_ENDPOINT_URL": moto_server.endpoint_url}
    for page in clients["s3"].get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            clients["s3"].delete_object(Bucket=BUCKET, Key=item["Key"], VersionId=item["VersionId"])
    clients["s3"].delete_bucket(Bucket=BUCKET)


def message_event(tmp_path: Path, text: str, headers: dict[str, str] | None = None) -> Path:
    """The HTTP API v2 event of events/post_message.json, with another message."""
    event = json.loads((ROOT / "events" / "post_message.json").read_text())
    event["body"] = json.dumps({"message": text})
    event["headers"] = {**event["headers"], **(headers or {})}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/sessions/{SESSION}/messages"
    event["pathParameters"] = {"session_id": SESSION}
    path = tmp_path / f"event-{abs(hash(text))}.json"
    path.write_text(json.dumps(event))
    return path


def test_reference_conversation_from_the_artifact_alone(built, aws, model_server: ModelServer, tmp_path):
    python313, artifact = built
    env = {**FUNCTION_ENV, **aws, "MODEL_ID": "openai/test-model", "MODEL_API_BASE": model_server.base_url,
           "MODEL_API_KEY": "sk-test-key", "_X_AMZN_TRACE_ID": "Root=1-6b074c50-aa5b0318c45c620e34a3217e"}

    first = run_driver(python313, artifact, env, "invoke",
                       str(message_event(tmp_path, "Hey, my name is Arindam.", {"idempotency-key": "turn-1"})))
    second = run_driver(python313, artifact, env, "invoke", str(message_event(tmp_path, "Do you remember my name?")))

    for run in (first, second):
        assert run["python"].startswith("3.13.")
        assert run["handler_file"].startswith(str(artifact)) and run["litellm_file"].startswith(str(artifact))
        assert run["foreign_modules"] == []
    assert first["response"]["statusCode"] == 200, first["response"]
    assert second["response"]["statusCode"] == 200, second["response"]
    assert "Arindam" in json.loads(second["response"]["body"])["reply"]
    # The second process knew turn one only from S3: it sent it to the model.
    assert model_server.user_texts(-1) == ["Hey, my name is Arindam.", "Do you remember my name?"]
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1")
            .list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(key.endswith(f"session_{SESSION}/session.json") for key in keys)


def deployed_env(**overrides: str) -> dict[str, str]:
    """The deployed environment with unreachable endpoints: any attempt to use them is recorded."""
    env = {**FUNCTION_ENV, "MODEL_ID": "openai/gpt-4o-mini", "MODEL_API_KEY": "sk-test-key",
           "SESSION_BUCKET": BUCKET}
    env.update(overrides)
    return {name: value for name, value in env.items() if value}


@pytest.mark.parametrize("cost_map_variable", ["True", ""], ids=["template-env", "variable-unset"])
def test_importing_the_handler_opens_no_connection(built, cost_map_variable):
    """Init must not reach the network: not LiteLLM's price map (also when the template's
    variable is missing, which our code defaults), not AWS, not the model."""
    python313, artifact = built
    run = run_driver(python313, artifact, deployed_env(LITELLM_LOCAL_MODEL_COST_MAP=cost_map_variable), "import")
    assert run["network"] == []
    assert run["foreign_modules"] == []


def test_importing_the_handler_from_source_opens_no_connection():
    """The same under this Python (3.11) from src/, for machines without a python3.13."""
    python = sys.executable
    env = {**deployed_env(LITELLM_LOCAL_MODEL_COST_MAP=""), "PYTHONPATH": ""}
    code = (f"import runpy, sys; sys.path[:0] = [{str(ROOT / 'src')!r}]; "
            f"sys.argv = ['driver', {str(ROOT / 'src')!r}, 'import']; "
            f"runpy.run_path({str(DRIVER)!r}, run_name='__main__')")
    done = subprocess.run([python, "-B", "-c", code], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
                          capture_output=True, text=True, timeout=300, cwd="/")
    lines = [line for line in done.stdout.splitlines() if line.startswith("DRIVER ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    assert json.loads(lines[-1][len("DRIVER "):])["network"] == []


def test_artifact_ships_unchecked_cpython_313_bytecode_for_every_module(built):
    """Every module imports from bytecode Python 3.13 accepts without looking at a source:
    a .py kept for tracebacks has its __pycache__ twin, everything else is a bare .pyc."""
    python313, artifact = built
    magic = subprocess.run([python313, "-I", "-c", "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"],
                           capture_output=True, text=True).stdout.strip()
    pycs = list(artifact.rglob("*.pyc"))
    sources = list(artifact.rglob("*.py"))
    assert len(pycs) > 3000
    for pyc in pycs:
        header = pyc.read_bytes()[:8]
        assert header[:4].hex() == magic and int.from_bytes(header[4:8], "little") == 0b01, pyc  # unchecked hash
    for source in sources:
        assert (source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc").exists(), source


def test_both_architectures_fit_the_size_budget(built):
    """The deployed function (no layers) stays within 150 MB unzipped, on arm64 and x86_64."""
    done = subprocess.run(["make", "-s", "--no-print-directory", "size"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("unzipped; budget 150 MB") == 2, done.stdout
