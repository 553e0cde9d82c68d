"""Retries with an Idempotency-Key: the first reply is replayed, never run twice; the records live
with their session, so a key retried after a DELETE never answers for a turn that is gone."""

from model_server import Reply

from tests.api.test_bad_input import answer_of, assert_error
from tests.conftest import bucket_keys

SESSION = "user_arindam_convo_123"
KEY = {"Idempotency-Key": "turn-0001"}


def test_a_retry_replays_the_first_reply_without_calling_the_model(any_api, model_server):
    status, _, first = any_api.post(SESSION, "Hey, my name is Arindam.", headers=KEY)
    assert status == 200
    calls = len(model_server.requests)

    status, _, again = any_api.post(SESSION, "Hey, my name is Arindam.", headers=KEY)

    assert status == 200 and again == first
    assert len(model_server.requests) == calls
    assert len(any_api.texts(SESSION)) == 2
    status, _, other = any_api.post(SESSION, "Hey, my name is Arindam.", headers={"Idempotency-Key": "turn-0002"})
    assert status == 200 and other["message_count"] == 4


def test_a_key_reused_for_another_message_is_refused(api):
    assert api.post(SESSION, "first message", headers=KEY)[0] == 200
    assert_error(*answer_of(api.post(SESSION, "a different message", headers=KEY)), 422, "idempotency_key_reused")
    assert len(api.texts(SESSION)) == 2
    # The refusal came in the round trip that took the session's lease: it let it go again.
    assert api.post(SESSION, "next")[0] == 200


def test_a_failed_turn_is_not_replayed_by_its_key(api, model_server):
    model_server.queue(Reply.error(500))
    assert api.post(SESSION, "hello", headers=KEY)[0] == 502
    status, _, body = api.post(SESSION, "hello", headers=KEY)
    assert status == 200 and body["message_count"] == 2


def test_keys_are_scoped_to_their_session_and_caller(api, model_server):
    assert api.post("one", "hello", headers=KEY)[0] == 200
    assert api.post("two", "hello", headers=KEY)[0] == 200
    assert api.post("one", "hello", headers=KEY, caller="arn:aws:iam::123456789012:user/bob")[0] == 200
    assert len(model_server.requests) == 3


def test_a_key_retried_after_delete_runs_the_turn_again_and_the_history_holds_it(any_api, model_server):
    assert any_api.post(SESSION, "Hey, my name is Arindam.", headers=KEY)[0] == 200
    assert any_api.delete(SESSION)[0] == 204

    status, _, reply = any_api.post(SESSION, "Hey, my name is Arindam.", headers=KEY)

    assert status == 200 and reply["message_count"] == 2
    assert any_api.texts(SESSION) == ["Hey, my name is Arindam.", reply["reply"]]


def test_records_live_in_the_session_and_go_with_it(s3_api, s3):
    assert s3_api.post(SESSION, "hello", headers=KEY)[0] == 200
    records = [k for k in bucket_keys(s3) if "/records/" in k]
    assert len(records) == 1 and f"/session_{SESSION}/records/turn-t_" in records[0]
    tags = s3.get_object_tagging(Bucket="test-sessions", Key=records[0])["TagSet"]
    assert tags == [{"Key": "kind", "Value": "record"}]
    assert s3_api.delete(SESSION)[0] == 204
    # Only the caller's token count stays (a deleted session must not give its tokens back).
    left = [key for key in bucket_keys(s3) if not key.startswith("sessions/.usage/")]
    assert [key.split("/")[1] for key in left] == [".activity"]  # its day marker: the sweep's, to settle the caller


def test_a_record_deleted_with_its_session_during_the_turn_is_not_written_again(api, session_dir, monkeypatch):
    """The turn's record gets the reply beside the session's release: a DELETE that lands once the
    session is free, before the record's write, must stay a DELETE, or a retry would replay a
    turn the history no longer holds."""
    import threading

    from agent import Deadline
    from agent.store.lease import Leases
    from handler.turn_ledger import TurnLedger

    advance, release, released = TurnLedger.advance, Leases.release, threading.Event()

    def release_and_say(leases, objects, lease):
        release(leases, objects, lease)
        released.set()

    def delete_first(ledger, entry, *args, **kwargs):  # the DELETE lands in that moment (another invocation)
        if kwargs.get("reply") is not None or (args and args[0] == "done"):
            assert released.wait(10)
            api.services.conversations.delete("local", SESSION, Deadline.never())
        return advance(ledger, entry, *args, **kwargs)

    monkeypatch.setattr(Leases, "release", release_and_say)
    monkeypatch.setattr(TurnLedger, "advance", delete_first)
    first = api.post(SESSION, "hello", headers=KEY)
    assert first[0] == 200, first
    monkeypatch.undo()
    assert api.history(SESSION)[0] == 404
    assert [p.name for p in session_dir.rglob("*.json") if ".usage" not in p.parts] == []  # no record written back
    status, _, again = api.post(SESSION, "hello", headers=KEY)
    assert status == 200 and again["message_count"] == 2 and len(api.texts(SESSION)) == 2
