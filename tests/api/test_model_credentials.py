"""What a model needs before it can be called: a local server answers with no key at all; a
hosted provider without its key, or Bedrock without AWS credentials, is named at init (one log
line) and in each response (503 model_not_configured), never a generic 502."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tests.api.test_bad_input import assert_error
from tests.conftest import Api, stored_files

SESSION = "user_arindam_convo_123"
BEDROCK = "bedrock/us.amazon.nova-2-lite-v1:0"


@pytest.fixture
def setup_lines() -> Iterator[io.StringIO]:
    """What the function says at init about its model's set-up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("agent.model.setup")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A machine with no AWS credentials anywhere botocore looks (and no instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def without_key(env: dict[str, str], **settings: str) -> dict[str, str]:
    return {**{k: v for k, v in env.items() if k != "MODEL_API_KEY"}, **settings}


def test_a_local_server_needs_no_key(env, model_server, setup_lines):
    api = Api(without_key(env))
    status, _, reply = api.post(SESSION, "Hey, my name is Arindam.")
    assert status == 200, reply
    assert model_server.request_headers[-1]["authorization"] == "Bearer not-needed"
    assert setup_lines.getvalue() == ""  # nothing to warn about


def test_a_server_on_a_private_network_needs_no_key_either(env, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    api = Api(without_key(env, MODEL_API_BASE="http://ollama:11434/v1"))  # a compose service name
    assert api.services.models.problem() is None


@pytest.mark.parametrize("settings, named", [
    ({"MODEL_ID": "openai/gpt-4o-mini"}, "OPENAI_API_KEY"),
    ({"MODEL_ID": "nebius/deepseek-ai/DeepSeek-V3-0324"}, "NEBIUS_API_KEY"),
    ({"MODEL_ID": "openai/gpt-4o-mini", "MODEL_API_BASE": "https://api.example.com/v1"}, "OPENAI_API_KEY"),
])
def test_a_hosted_provider_without_its_key_is_named_at_init_and_in_the_response(
        env, session_dir, settings, named, monkeypatch, setup_lines):
    monkeypatch.delenv(named, raising=False)
    environment = {k: v for k, v in without_key(env).items() if k != "MODEL_API_BASE"}
    api = Api({**environment, **settings})
    said = setup_lines.getvalue().splitlines()
    assert len(said) == 1 and "MODEL_API_KEY" in said[0] and named in said[0], said

    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    message = body["error"]["message"]
    assert settings["MODEL_ID"] in message and "MODEL_API_KEY" in message and named in message
    assert "example.com" not in message and stored_files(session_dir) == []


def test_bedrock_without_aws_credentials_is_named_at_init_and_in_the_response(
        env, session_dir, no_aws_credentials, setup_lines):
    api = Api({"MODEL_ID": BEDROCK, "SESSION_DIR": env["SESSION_DIR"]})
    said = setup_lines.getvalue().splitlines()
    assert len(said) == 1 and "uses AWS credentials and none were found" in said[0], said

    status, _, body = api.post(SESSION, "hello")
    assert_error(status, body, 503, "model_not_configured")
    assert "none were found" in body["error"]["message"] and "AWS_PROFILE" in body["error"]["message"]
    assert stored_files(session_dir) == [] and "testing" not in json.dumps(body)


def test_bedrock_with_credentials_says_nothing_at_init(env, setup_lines):
    Api({"MODEL_ID": BEDROCK, "SESSION_DIR": env["SESSION_DIR"]})  # the test run's (fake) credentials
    assert setup_lines.getvalue() == ""
