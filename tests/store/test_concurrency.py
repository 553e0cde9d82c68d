"""Eight turns at once on one session: exactly the accepted turns are stored, each user message
followed by its own reply, no gaps; every other turn was told the session is busy."""

import threading
from typing import Any

import pytest
from model_server import ModelServer

from agent.errors import SessionBusy
from agent.store import SessionStore

from .helpers import CALLER, NEVER, Backend, chat


@pytest.mark.slow  # waits on real time: overlapping turns, staggered
def test_parallel_turns_on_one_session_store_exactly_the_accepted_ones(backend: Backend) -> None:
    store: SessionStore = backend.store()
    server = ModelServer(delay=0.15).start()  # a model slow enough that turns overlap
    try:
        chat(store, "shared", "Hey, my name is Arindam.", server)
        start = threading.Barrier(8)
        outcomes: dict[int, Any] = {}

        def turn(number: int) -> None:
            start.wait()
            threading.Event().wait(0.06 * number)  # staggered: some start after others finished
            try:
                outcomes[number] = chat(store, "shared", f"message {number}", server)
            except SessionBusy as busy:
                outcomes[number] = busy

        threads = [threading.Thread(target=turn, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        threading.Thread(target=server.stop, daemon=True).start()  # its shutdown polls; don't wait

    accepted = {n for n, outcome in outcomes.items() if isinstance(outcome, str)}
    refused = {n for n, outcome in outcomes.items() if isinstance(outcome, SessionBusy)}
    assert accepted | refused == set(range(8)) and accepted and refused
    assert all(outcomes[n].retry_after >= 1 for n in refused)
    assert all(outcomes[n] == f"Noted: message {n}" for n in accepted)

    history = store.history(CALLER, "shared", 0, 100, NEVER).messages
    assert [m.message_id for m in history] == list(range(len(history)))
    pairs = [(history[i].to_message(), history[i + 1].to_message()) for i in range(0, len(history), 2)]
    assert all(user["role"] == "user" and reply["role"] == "assistant" for user, reply in pairs)
    said = [user["content"][0]["text"] for user, _ in pairs]
    assert all(reply["content"][0]["text"] == f"Noted: {text}" for (_, reply), text in zip(pairs, said, strict=True))
    assert said[0] == "Hey, my name is Arindam."
    assert sorted(said[1:]) == sorted(f"message {n}" for n in accepted)
