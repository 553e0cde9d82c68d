"""A synchronous turn that runs out of time fails the same way when retried: its 504 says what works
instead (Prefer: respond-async, or the WebSocket API). Other sources are not told about headers."""

from tests.api.test_bad_input import assert_error
from tests.conftest import Api

SESSION = "user_arindam_convo_123"


def test_a_synchronous_turn_timeout_points_to_respond_async_and_the_websocket(api: Api, model_server):
    status, _, body = api.post(SESSION, "hello", timeout=1.0)  # no time left for the model
    assert_error(status, body, 504, "turn_timeout")
    message = body["error"]["message"]
    assert "Prefer: respond-async" in message and "WebSocket" in message and "nothing was stored" in message
    assert model_server.requests == []


def test_a_direct_invocations_turn_timeout_names_no_http_header(api: Api, model_server):
    result = api.invoke({"session_id": SESSION, "message": "hello"}, timeout=1.0)
    assert result["error"]["code"] == "turn_timeout" and "Prefer" not in result["error"]["message"]
