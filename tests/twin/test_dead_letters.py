"""A turn the worker can never run, through the twin: redelivered, dead-lettered, then finalised
by the worker that the dead-letter queue's event source mapping invokes, as deployed."""

import pytest

from agent.store.keys import SessionKeys
from handler.callers import LOCAL_CALLER
from tests.twin.conftest import Socket, run, session_id

pytestmark = pytest.mark.slow


def test_a_websocket_turn_whose_store_keeps_failing_ends_with_one_error_frame_and_failed(twin, sessions):
    session = session_id()
    # A file where the session's agent folder must go: every delivery fails to store the turn (an
    # OSError, which the worker hands back to SQS); the turn's records beside it still work.
    blocker = sessions / SessionKeys.of(LOCAL_CALLER, session).agent_folder("default").rstrip("/")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")

    async def scenario(client):
        async with client.ws_connect(twin.ws_url) as ws:
            socket = Socket(ws)
            await socket.send(session, "hello")
            frames = await socket.until_done(timeout=60)
        turn_id = frames[0]["turn_id"]
        async with client.get(f"{twin.url}/sessions/{session}/turns/{turn_id}") as response:
            return frames, response.status, await response.json()

    frames, status, turn = run(scenario)

    assert frames[0]["type"] == "accepted"
    errors = [frame for frame in frames if frame["type"] == "error"]
    assert len(errors) == 1 and errors[0]["error"]["code"] == "turn_abandoned", frames
    assert frames[-1] is errors[0]
    assert status == 200 and turn["status"] == "failed" and turn["error"]["code"] == "turn_abandoned", turn
    assert any("moved to the dead-letter queue" in line for line in twin.terminal.lines)
    assert any(line for line in twin.terminal.lines if "dead-lettered turn" in line and "done" in line)
