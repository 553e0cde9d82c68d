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
