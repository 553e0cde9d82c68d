"""AwsClients: the client a call gets fits the time left, judged on the client's actual config."""

from typing import Any

import boto3
import pytest

from agent.aws_clients import AwsClients
from agent.deadline import Deadline


def worst_case(client: Any) -> float:
    """attempts x (connect + read), plus standard mode's longest backoff between attempts."""
    config = client.meta.config
    assert config.retries["mode"] == "standard"
    attempts = config.retries["total_max_attempts"]
    backoff = sum(min(2.0**retry, 20.0) for retry in range(attempts - 1))
    return attempts * (config.connect_timeout + config.read_timeout) + backoff


@pytest.fixture(scope="module")
def clients() -> AwsClients:
    return AwsClients(boto3.session.Session(region_name="us-east-1"))


def test_with_plenty_of_time_a_client_gets_the_default_tier(clients: AwsClients) -> None:
    client = clients.client("s3", Deadline.after(300))
    config = client.meta.config
    assert (config.retries["total_max_attempts"], config.connect_timeout, config.read_timeout) == (3, 2.0, 5.0)
    assert clients.client("s3") is client  # no deadline: the same, cached
    assert worst_case(client) <= 300


@pytest.mark.parametrize("seconds", [20.0, 8.0, 3.0, 1.5, 0.9, 0.45])
def test_near_the_deadline_the_clients_worst_case_fits_the_time_left(clients: AwsClients, seconds: float) -> None:
    client = clients.client("s3", Deadline.after(seconds))
    assert worst_case(client) <= seconds
    assert worst_case(client) >= seconds / 4  # and it does not give up much sooner than it must


def test_past_the_deadline_a_client_gets_one_short_attempt(clients: AwsClients) -> None:
    client = clients.client("s3", Deadline.after(0))
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert worst_case(client) <= 0.5
    assert clients.client("secretsmanager", Deadline.after(0)) is not client  # per service


def test_clients_are_cached_per_tier_and_endpoint(clients: AwsClients) -> None:
    assert clients.client("sqs", Deadline.after(2.5)) is clients.client("sqs", Deadline.after(2.4))
    assert clients.client("sqs", Deadline.after(2.5)) is not clients.client("sqs", Deadline.after(300))
    local = clients.client("sqs", endpoint_url="http://127.0.0.1:9")
    assert local.meta.endpoint_url == "http://127.0.0.1:9" and local is not clients.client("sqs")


def test_the_endpoint_from_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
    client = AwsClients(boto3.session.Session(region_name="us-east-1")).client("s3", Deadline.after(1))
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"


def test_fewer_default_attempts_keep_every_tier_cheaper_than_the_default() -> None:
    clients = AwsClients(boto3.session.Session(region_name="us-east-1"), connect_timeout=1, read_timeout=2,
                         max_attempts=1)
    assert [tier.worst_case for tier in clients.tiers] == sorted((t.worst_case for t in clients.tiers), reverse=True)
    assert clients.tiers[0].worst_case == 3
