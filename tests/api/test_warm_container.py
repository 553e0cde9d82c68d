"""A warm container serves turn after turn for hours: nothing may pile up from one turn to the next."""

import gc

import pytest

from tests.conftest import Api


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


@pytest.mark.parametrize("policy", ["window", "summarize"])
def test_a_warm_container_keeps_nothing_from_the_turns_it_served(env, model_server, policy):
    """Each turn's model response, LiteLLM's bookkeeping for it, and (with summaries) the client
    made for the summary's own event loop must all go once the turn is over."""
    api = Api({**env, "HISTORY_POLICY": policy, "HISTORY_WINDOW": "4"})

    def serve(turns: int) -> None:
        for n in range(turns):
            assert api.post(f"session_{n % 5}", f"message {n}")[0] == 200
            model_server.requests.clear()  # the test model's own record of what it was sent
            model_server.request_headers.clear()

    serve(30)  # caches, pools and imports settle
    before = live_objects()
    serve(60)
    grown = live_objects() - before

    # A leak of one response per turn is some 250 objects a turn (15,000 here); noise is a few hundred.
    assert grown < 1_000, f"{grown} more objects after 60 turns"


def test_a_restored_environments_first_turn_makes_no_aws_client(env, model_server, s3, monkeypatch):
    """Making a client loads its service's model (S3's: ~80 ms of CPU). Init makes each service's
    first, and the SnapStart snapshot holds the rest, so a restored environment's first turn
    makes none."""
    import boto3

    from agent.aws_clients import AwsClients
    from handler import snapstart

    monkeypatch.setattr(snapstart, "_before_snapshot", [])  # only this container's hooks
    session = boto3.session.Session()  # its own: the clients made from it are this test's
    made: list[str] = []
    session.events.register("creating-client-class", lambda class_attributes, **kw: made.append(kw["event_name"]))
    api = Api({**env, "SESSION_BUCKET": "test-sessions", "SESSION_DIR": ""}, AwsClients(session))
    assert made, "init made no client"
    snapstart.snapshot()
    snapshot = len(made)

    assert api.post("s1", "Hey, my name is Arindam.")[0] == 200
    assert made[snapshot:] == []  # the turn's requests, its lease's release among them, made none
