"""With S3 or Secrets Manager stalling (a proxy in front of moto's server that never answers
some requests), a turn still answers its JSON before the function's timeout, stores nothing, and
the session works again as soon as AWS does."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.api.test_bad_input import assert_error
from tests.conftest import Api
from tests.fixtures.slow_s3 import SlowS3Proxy

pytestmark = pytest.mark.slow
SESSION = "user_arindam_convo_123"
TIMEOUT = 8.0  # the function's timeout in these tests


@pytest.fixture
def stalling(moto_server, env, monkeypatch) -> Iterator[tuple[SlowS3Proxy, Api, Any]]:
    """The handler on S3 (and Secrets Manager) through the proxy; nothing stalls until told."""
    bucket = f"stall-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    with SlowS3Proxy(moto_server.endpoint_url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", proxy.url)
        yield proxy, Api({**env, "SESSION_BUCKET": bucket}), lambda: sorted(
            o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def timed_post(api: Api, message: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, _, body = api.post(SESSION, message, timeout=TIMEOUT)
    return status, body, time.monotonic() - started


def test_s3_stalling_on_the_commit_answers_503_in_time_stores_nothing_and_releases_the_session(stalling):
    proxy, api, keys = stalling
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    before = keys()
    # The commit point (agent.json); the new messages go in the same round trip and may land:
    # leftovers past the committed count, never read, overwritten by the next turn.
    proxy.hang_on = lambda method, path: method == "PUT" and path.endswith("agent.json")

    status, body, elapsed = timed_post(api, "This turn cannot be stored.")

    assert_error(status, body, 503, "store_unavailable")
    assert elapsed < TIMEOUT, elapsed
    proxy.hang_on = lambda method, path: False
    kept = [k for k in keys() if not k.endswith((".lease", "message_2.json", "message_3.json"))]
    assert kept == [k for k in before if not k.endswith(".lease")]
    status, _, reply = api.post(SESSION, "Do you remember my name?")
    assert status == 200 and "Arindam" in reply["reply"] and reply["message_count"] == 4


def test_s3_stalling_on_every_request_answers_503_in_time(stalling):
    proxy, api, keys = stalling
    proxy.hang_on = lambda method, path: True

    status, body, elapsed = timed_post(api, "hello")

    assert_error(status, body, 503, "store_unavailable")
    assert elapsed < TIMEOUT, elapsed
    proxy.hang_on = lambda method, path: False
    assert keys() == []


def test_secrets_manager_stalling_answers_503_in_time(stalling, env, moto_server):
    proxy, _, keys = stalling
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    arn = secrets.create_secret(Name=f"model-key-{uuid.uuid4().hex}", SecretString="sk-secret")["ARN"]
    proxy.hang_on = lambda method, path: method == "POST" and path == "/"  # Secrets Manager's JSON API
    api = Api({**{k: v for k, v in env.items() if k != "MODEL_API_KEY"}, "MODEL_API_KEY_SECRET_ARN": arn})

    status, body, elapsed = timed_post(api, "hello")

    assert_error(status, body, 503, "model_not_configured")
    assert elapsed < TIMEOUT, elapsed
    proxy.hang_on = lambda method, path: False
    assert api.post(SESSION, "hello")[0] == 200  # the key is read again once Secrets Manager answers
