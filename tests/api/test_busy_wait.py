"""409 session_busy says how long to wait: a couple of seconds while the holder's turn may still be
running (it releases the session as it ends), the lease's expiry once the holder's invocation has
certainly ended without releasing it (it died)."""

from agent import Deadline
from agent.store.keys import SessionKeys
from tests.api.test_bad_input import assert_error
from tests.conftest import Api

SESSION = "user_arindam_convo_123"


def hold(api: Api, deadline: Deadline) -> None:
    """A holder of the session's lease, as a turn with ``deadline`` takes it, that never releases it."""
    store = api.services.conversations.store
    store.leases.take(store.objects, SessionKeys.of("local", SESSION).lease, deadline)


def test_while_the_holder_may_still_be_running_retry_after_is_a_short_wait(api: Api, model_server):
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    hold(api, Deadline.after(25))  # a synchronous turn, 25 s from API Gateway's limit
    status, headers, body = api.post(SESSION, "Do you remember my name?")
    assert_error(status, body, 409, "session_busy")
    assert headers["Retry-After"] == "2" and body["error"]["retry_after"] == 2
    assert "retry in 2 s" in body["error"]["message"]


def test_once_the_holder_has_certainly_ended_retry_after_is_the_leases_expiry(api: Api, model_server):
    assert api.post(SESSION, "Hey, my name is Arindam.")[0] == 200
    hold(api, Deadline.after(0))  # its invocation is over, and it never released the session: it died
    status, headers, body = api.post(SESSION, "Do you remember my name?")
    assert_error(status, body, 409, "session_busy")
    lease_seconds = api.services.conversations.store.settings.lease_seconds
    assert lease_seconds - 2 <= int(headers["Retry-After"]) <= lease_seconds
    assert "stopped without releasing it" in body["error"]["message"]
