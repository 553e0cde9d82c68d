"""Callers map to one safe path segment; storage failures reach the caller as StoreUnavailable only."""

import socket
from pathlib import Path
from typing import Any

import pytest

from agent.errors import InvalidRequest, StoreUnavailable
from agent.settings import Settings
from agent.store import open_store, s3_client
from agent.store.keys import caller_from_segment, caller_segment, check_session_id
from model_server import ModelServer

from .helpers import CALLER, chat, stored


@pytest.mark.parametrize(
    "caller",
    [CALLER, "local", "direct", "..", ".", "../../etc", "a/b\\c", "sub|auth0|123", "é ü", "x" * 300, "%41", "%sha256-x"],
)
def test_a_caller_becomes_one_inert_segment_that_maps_back(caller: str) -> None:
    segment = caller_segment(caller)
    assert segment not in ("", ".", "..")
    assert all(char.isalnum() or char in "%_-" for char in segment)
    assert len(segment) <= 200
    if len(caller) < 60:
        assert caller_from_segment(segment) == caller


def test_distinct_callers_never_share_a_segment() -> None:
    callers = ["a.b", "a%2Eb", "a_b", "A.b", "x" * 300, "x" * 301, "%sha256-" + "0" * 64]
    assert len({caller_segment(c) for c in callers}) == len(callers)


@pytest.mark.parametrize("session_id", ["", "../x", "a/b", "a.b", ".hidden", "-x", "a b", "é", "x" * 129, "a\n"])
def test_session_ids_are_checked_again(session_id: str) -> None:
    with pytest.raises(InvalidRequest):
        check_session_id(session_id)


def test_an_unreachable_s3_gives_store_unavailable_with_a_safe_message(tmp_path: Path, monkeypatch: Any) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    store = open_store(Settings(session_bucket="secret-bucket-name"))
    for call in (lambda: store.turn(CALLER, "s1").__enter__(), lambda: store.history(CALLER, "s1"),
                 lambda: store.delete(CALLER, "s1")):
        with pytest.raises(StoreUnavailable) as failure:
            call()
        assert "secret-bucket-name" not in failure.value.message and "127.0.0.1" not in failure.value.message


def test_a_missing_bucket_is_store_unavailable_not_session_busy(s3_bucket: Any, model_server: ModelServer) -> None:
    store = open_store(Settings(session_bucket="no-such-bucket"))
    with pytest.raises(StoreUnavailable):
        chat(store, "s1", "hello", model_server)


def test_an_unwritable_session_dir_gives_store_unavailable(tmp_path: Path, model_server: ModelServer) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the sessions folder should be")
    store = open_store(Settings(session_dir=str(blocker)))
    with pytest.raises(StoreUnavailable):
        chat(store, "s1", "hello", model_server)


def test_a_failure_while_committing_stores_no_agent_state(s3_bucket: Any, tmp_path: Path, model_server: ModelServer) -> None:
    store = open_store(Settings(session_bucket="test-sessions"))
    chat(store, "s1", "first", model_server)
    before = stored(store)

    def refuse_agent_json(params: dict[str, Any], **kwargs: Any) -> None:
        if params["Key"].endswith("agent.json"):
            raise ConnectionError("S3 went away")

    store.objects.client.meta.events.register("before-parameter-build.s3.PutObject", refuse_agent_json)
    with pytest.raises(StoreUnavailable):
        chat(store, "s1", "second", model_server)
    store.objects.client.meta.events.unregister("before-parameter-build.s3.PutObject", refuse_agent_json)
    after = stored(store)
    assert {k: v for k, v in after.items() if not k.endswith(("message_2.json", "message_3.json"))} == before
    assert [m.message_id for m in store.history(CALLER, "s1")] == [0, 1]  # the half-written turn is not visible
    assert chat(store, "s1", "third", model_server) == "Noted: third"
    assert [m.to_message()["content"][0]["text"] for m in store.history(CALLER, "s1")][2:] == ["third", "Noted: third"]


def test_the_s3_client_uses_standard_retries_and_bounded_timeouts() -> None:
    client = s3_client()
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.connect_timeout <= 5 and client.meta.config.read_timeout <= 15
