"""The model's API key from Secrets Manager: it reaches the provider, never a log or a client,
and a rotated key is read again when it has to be."""

import io
import json
import logging
import uuid

import pytest
from model_server import Reply
from moto import mock_aws

from tests.api.test_bad_input import assert_error
from tests.conftest import BOTO3_SESSION, Api

SESSION = "user_arindam_convo_123"


@pytest.fixture
def secret(env):
    """``put(value)`` creates or rotates the secret holding the model's key; ``env`` uses it."""
    with mock_aws():
        client = BOTO3_SESSION.client("secretsmanager", region_name="us-east-1")
        arns: list[str] = []

        def put(value: str) -> dict[str, str]:
            if arns:
                client.put_secret_value(SecretId=arns[0], SecretString=value)
            else:
                arns.append(client.create_secret(Name=f"model-key-{uuid.uuid4().hex}", SecretString=value)["ARN"])
            return {**{k: v for k, v in env.items() if k != "MODEL_API_KEY"}, "MODEL_API_KEY_SECRET_ARN": arns[0]}

        yield put


@pytest.fixture
def log_lines():
    """What the function logs (Powertools JSON lines), whichever logger wrote it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    loggers = [logging.getLogger(name) for name in ("stateful-agent", "agent", "handler", "strands")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: stream.getvalue()
    for logger in loggers:
        logger.removeHandler(handler)


def test_the_key_from_secrets_manager_reaches_the_model_and_never_the_log(secret, model_server, log_lines):
    key = "sk-from-secrets-manager-0123456789"
    api = Api({**secret(key), "LOG_LEVEL": "DEBUG"})
    model_server.queue(Reply.error(500))
    status, _, body = api.post(SESSION, "first fails")
    assert status == 502 and key not in json.dumps(body)
    assert api.post(SESSION, "hello")[0] == 200
    assert model_server.request_headers[-1]["authorization"] == f"Bearer {key}"
    assert "model call failed" in log_lines()  # the failure was logged...
    assert key not in log_lines()  # ...without the key


def test_a_json_secret_with_an_api_key_field_works(secret, model_server):
    api = Api(secret(json.dumps({"api_key": "sk-json"})))
    assert api.post(SESSION, "hello")[0] == 200
    assert model_server.request_headers[-1]["authorization"] == "Bearer sk-json"


def test_a_rotated_secret_is_read_again_after_a_snapstart_restore(secret, model_server):
    from handler import snapstart

    api = Api(secret("sk-before"))  # init reads the key: this is what a snapshot would hold
    secret("sk-after")
    snapstart.restore()  # what the runtime runs in each environment resumed from the snapshot
    assert api.post(SESSION, "hello")[0] == 200
    assert model_server.request_headers[-1]["authorization"] == "Bearer sk-after"


def test_a_key_the_provider_rejects_is_read_again_on_the_next_turn(secret, model_server):
    api = Api(secret("sk-old"))
    secret("sk-new")
    model_server.queue(Reply.error(401))
    assert api.post(SESSION, "hello")[0] == 502
    assert api.post(SESSION, "hello")[0] == 200
    assert model_server.request_headers[-1]["authorization"] == "Bearer sk-new"


def test_an_unreadable_secret_is_503_and_says_nothing_of_it(env, model_server):
    with mock_aws():
        api = Api({**env, "MODEL_API_KEY": "",
                   "MODEL_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there-AbCdEf"})
        status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    assert "not-there" not in json.dumps(body) and model_server.requests == []
