"""Callers map to one safe path segment; storage failures reach the caller as StoreUnavailable only."""

import socket
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from model_server import ModelServer

from agent.aws_clients import AwsClients
from agent.errors import InvalidRequest, StoreUnavailable
from agent.settings import Settings
from agent.store import open_store
from agent.store.keys import (
    SessionKeys,
    caller_document,
    caller_from_segment,
    caller_segment,
    check_session_id,
    connection,
    parse_caller_document,
    parse_session_key,
)

from .helpers import CALLER, NEVER, Backend, chat, history_texts


@pytest.mark.parametrize(
    "caller",
    [CALLER, "local", "direct", "..", ".", "../../etc", "a/b\\c", "sub|auth0|123", "é ü", "x" * 300, "%41",
     "%sha256-x"],
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


def test_documents_connections_and_records_are_never_taken_for_sessions() -> None:
    keys = SessionKeys.of(CALLER, "s1")
    for name in ("memory", "session_x", "session_abc"):
        key = caller_document(CALLER, name)
        assert parse_session_key(key) is None and parse_caller_document(key) == (keys.segment, name)
    for key in (connection("abc/+=="), ".expiry-sweep-cursor", keys.record("idem:1.2")):
        assert parse_caller_document(key) is None
    assert parse_session_key(connection("session_s1")) is None
    assert connection("a/b+c==") == ".connections/a%2Fb%2Bc%3D%3D.json"
    assert parse_session_key(keys.record("x")) == (keys, False) and parse_session_key(keys.lease) == (keys, True)
    for name in ("Memory", "m-1", "", "x" * 42, "../x"):
        with pytest.raises(InvalidRequest):
            caller_document(CALLER, name)
    for name in ("a/b", "", "x" * 201, "é"):
        with pytest.raises(InvalidRequest):
            keys.record(name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_s3_gives_store_unavailable_with_a_safe_message(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    store = open_store(Settings(session_bucket="secret-bucket-name"), AwsClients(max_attempts=1))
    for call in (lambda: store.turn(CALLER, "s1", NEVER).__enter__(), lambda: store.history(CALLER, "s1", 0, 9, NEVER),
                 lambda: store.delete(CALLER, "s1", NEVER), lambda: store.caller_document(CALLER, "memory", NEVER)):
        with pytest.raises(StoreUnavailable) as failure:
            call()
        assert "secret-bucket-name" not in failure.value.message and "127.0.0.1" not in failure.value.message


def test_a_missing_bucket_is_store_unavailable_not_session_busy(s3_backend: Backend, model_server: ModelServer) -> None:
    store = open_store(Settings(session_bucket="no-such-bucket"), s3_backend.clients)
    with pytest.raises(StoreUnavailable):
        chat(store, "s1", "hello", model_server)


def test_an_unwritable_session_dir_gives_store_unavailable(tmp_path: Path, model_server: ModelServer) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the sessions folder should be")
    store = open_store(Settings(session_dir=str(blocker)))
    with pytest.raises(StoreUnavailable):
        chat(store, "s1", "hello", model_server)


def test_a_symlink_in_the_session_dir_is_refused(
    files_backend: Backend, model_server: ModelServer, tmp_path: Path
) -> None:
    store = files_backend.store()
    chat(store, "s1", "hello", model_server)
    keys = SessionKeys.of(CALLER, "s1")
    (tmp_path / "elsewhere.json").write_text('{"session_id": "s1", "session_type": "AGENT"}')
    session_json = files_backend.root.joinpath(*keys.session.split("/"))
    session_json.unlink()
    session_json.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(StoreUnavailable):
        store.history(CALLER, "s1", 0, 10, NEVER)


def test_a_failure_while_committing_stores_no_agent_state(s3_backend: Backend, model_server: ModelServer) -> None:
    refusing = threading.Event()

    def refuse_agent_json(params: dict[str, Any], **kwargs: Any) -> None:
        if refusing.is_set() and params["Key"].endswith("agent.json"):
            raise ConnectionError("S3 went away")

    session = boto3.session.Session()  # its clients, made later, all carry the hook
    session.events.register("before-parameter-build.s3.PutObject", refuse_agent_json)
    store = open_store(Settings(session_bucket="test-sessions"), AwsClients(session))
    chat(store, "s1", "first", model_server)
    before = s3_backend.stored()
    refusing.set()
    with pytest.raises(StoreUnavailable):
        chat(store, "s1", "second", model_server)
    refusing.clear()
    after = s3_backend.stored()
    assert {k: v for k, v in after.items() if not k.endswith(("message_2.json", "message_3.json"))} == before
    # the half-written turn is not visible
    assert [t for _, t in history_texts(store, "s1")] == ["first", "Noted: first"]
    assert chat(store, "s1", "third", model_server) == "Noted: third"
    assert [t for _, t in history_texts(store, "s1")][2:] == ["third", "Noted: third"]
