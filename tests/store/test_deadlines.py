"""Deadlines: with S3 stalling (a proxy in front of moto's server that never answers some
requests), a turn, a history read and a delete fail with StoreUnavailable within their deadline,
store nothing, and leave the session usable: the lease is released, or it expires."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from model_server import ModelServer

from agent.aws_clients import AwsClients
from agent.deadline import Deadline
from agent.errors import StoreUnavailable
from agent.settings import Settings
from agent.store import SessionStore, open_store
from tests.fixtures.moto_server import MotoServer
from tests.fixtures.slow_s3 import SlowS3Proxy

from .helpers import CALLER, NEVER, chat, history_texts, make_agent

pytestmark = pytest.mark.slow
MARGIN = 0.3  # scheduling, and the last response in flight


class Stalling:
    def __init__(self, proxy: SlowS3Proxy, store: SessionStore, s3: Any, bucket: str) -> None:
        self.proxy, self.store, self.s3, self.bucket = proxy, store, s3, bucket

    def stored_keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", []))


@pytest.fixture
def stalling(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stalling]:
    bucket = f"deadline-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    with SlowS3Proxy(moto_server.endpoint_url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)  # as a deployment points boto3 elsewhere
        store = open_store(Settings(session_bucket=bucket, lease_seconds=2), AwsClients(boto3.session.Session()))
        yield Stalling(proxy, store, s3, bucket)


def timed(call: Any) -> tuple[StoreUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as failure:
        call()
    return failure.value, time.monotonic() - started


def test_a_turn_whose_reads_stall_fails_within_its_deadline_and_releases_the_lease(
    stalling: Stalling, model_server: ModelServer
) -> None:
    stalling.proxy.hang_on = lambda method, path: method == "GET" and path.endswith("agent.json")

    def turn() -> None:
        with stalling.store.turn(CALLER, "s1", Deadline.after(2.0)):
            pytest.fail("the block must not run without the session's state")

    _, elapsed = timed(turn)
    assert elapsed < 2.0 + MARGIN
    assert stalling.proxy.hung and stalling.stored_keys() == []  # the lease was taken, then released
    stalling.proxy.hang_on = lambda method, path: False
    assert chat(stalling.store, "s1", "hello", model_server) == "Noted: hello"


def test_a_commit_that_stalls_fails_within_its_deadline_and_stores_nothing(
    stalling: Stalling, model_server: ModelServer
) -> None:
    chat(stalling.store, "s1", "first", model_server)
    before = {key: stalling.s3.get_object(Bucket=stalling.bucket, Key=key)["Body"].read()
              for key in stalling.stored_keys()}
    stalling.proxy.hang_on = lambda method, path: method == "PUT" and path.endswith("agent.json")

    def turn() -> None:
        with stalling.store.turn(CALLER, "s1", Deadline.after(3.0)) as turn:
            make_agent(turn.session_manager, model_server)("second")

    _, elapsed = timed(turn)
    assert elapsed < 3.0 + MARGIN
    stalling.proxy.hang_on = lambda method, path: False
    kept = [key for key in stalling.stored_keys() if not key.endswith(("message_2.json", "message_3.json"))]
    assert kept == sorted(before)
    agent_json = next(key for key in before if key.endswith("agent.json"))
    assert stalling.s3.get_object(Bucket=stalling.bucket, Key=agent_json)["Body"].read() == before[agent_json]
    assert [text for _, text in history_texts(stalling.store, "s1")] == ["first", "Noted: first"]


def test_with_s3_stalled_history_and_delete_fail_in_time_and_a_stuck_lease_expires(
    stalling: Stalling, model_server: ModelServer
) -> None:
    chat(stalling.store, "s1", "first", model_server)
    stalling.proxy.hang_on = lambda method, path: method in ("GET", "DELETE")
    error, elapsed = timed(lambda: stalling.store.history(CALLER, "s1", 0, 10, Deadline.after(1.5)))
    assert elapsed < 1.5 + MARGIN
    assert "deadline" not in error.message and stalling.bucket not in error.message

    # delete takes the lease (PUT goes through), lists (stalls), and its release stalls too:
    # the release has about a second of its own, past the deadline.
    _, elapsed = timed(lambda: stalling.store.delete(CALLER, "s1", Deadline.after(1.5)))
    assert elapsed < 1.5 + 1.0 + MARGIN
    stalling.proxy.hang_on = lambda method, path: False
    assert any(key.endswith("session_s1.lease") for key in stalling.stored_keys())  # left behind...
    stalling.store.leases.clock = lambda: time.time() + 2.1  # ...until it expires (lease_seconds=2)
    assert chat(stalling.store, "s1", "Still there?", model_server) == "Noted: Still there?"
    assert [text for role, text in history_texts(stalling.store, "s1") if role == "user"] == ["first", "Still there?"]
    stalling.store.delete(CALLER, "s1", NEVER)
    assert [key for key in stalling.stored_keys() if "/.activity/" not in key] == []  # the day's marker stays


def test_a_message_file_that_stalls_after_the_commit_landed_is_written_by_the_next_turn(
    stalling: Stalling, model_server: ModelServer
) -> None:
    """The commit point and the new messages go in one round trip: agent.json landed, a message
    did not. The turn is stored (no error); its lease is left expired, so the next turn takes it
    over at once and writes the message from agent.json's snapshot."""
    chat(stalling.store, "s1", "first", model_server)
    stalling.proxy.hang_on = lambda method, path: method == "PUT" and path.endswith("message_3.json")
    with stalling.store.turn(CALLER, "s1", Deadline.after(3.0)) as turn:
        make_agent(turn.session_manager, model_server)("second")
    stalling.proxy.hang_on = lambda method, path: False
    assert not any(key.endswith("message_3.json") for key in stalling.stored_keys())
    full = ["first", "Noted: first", "second", "Noted: second"]
    assert [text for _, text in history_texts(stalling.store, "s1")] == full

    assert chat(stalling.store, "s1", "third", model_server) == "Noted: third"  # no 409: the lease was left expired
    assert any(key.endswith("message_3.json") for key in stalling.stored_keys())
    assert [text for _, text in history_texts(stalling.store, "s1")] == [*full, "third", "Noted: third"]
