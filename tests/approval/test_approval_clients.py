"""Approval in the clients, against a twin whose agent has ``cancel_order`` needing approval: the
chat page (Debian's chromium, via Playwright) shows the pending call with Approve and Deny and
streams the continuation; `make chat` asks ``approve? [y/N]``. The tool records its calls."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_server import Reply
from model_timing import TimedModel

from tests.approval.acting_tools import cancelled, order_id
from tests.approval.conftest import APPROVAL_ENV
from tests.twin.conftest import FUNCTION_TIMEOUT, Lines, function_env, session_id, stored
from tests.twin.test_chat_client import Chat
from tests.twin.test_chat_page import (  # noqa: F401  (browser, page: the chat page's fixtures, on this twin)
    browser,
    open_chat,
    page,
    screenshot,
    send,
    until_the_turn_ends,
)
from twin.config import Config
from twin.server import Twin, TwinThread

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> Iterator[TimedModel]:
    server = TimedModel()
    with server:
        yield server


@pytest.fixture(scope="module")
def running(model: TimedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinThread]:
    sessions: Path = tmp_path_factory.mktemp("approval") / "sessions"
    config = Config(port=0, workers=2, turn_workers=1, function_timeout=FUNCTION_TIMEOUT, turn_timeout=300.0)
    runner = TwinThread(config, function_env(model, sessions, **APPROVAL_ENV), Lines())
    with runner:
        yield runner


@pytest.fixture
def twin(running: TwinThread, model: TimedModel) -> Iterator[Twin]:
    yield running.twin
    model.clear()


def test_the_page_shows_the_pending_call_and_approve_streams_the_continuation(page: Any, twin: Twin,  # noqa: F811
                                                                              model: TimedModel) -> None:
    session, order = session_id(), order_id()
    open_chat(page, session)
    model.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    send(page, f"Cancel order {order}.")
    assert until_the_turn_ends(page)[-1][1] == "done"
    box = page.locator(".approval")
    box.wait_for()
    assert box.get_attribute("data-tool") == "cancel_order" and order in box.locator("pre").text_content()
    screenshot(page, "chat-page-approval.png")
    assert cancelled(order) == 0

    model.queue(Reply.say(f"Done: order {order} is cancelled and refunded.", word_delay=0.05))
    box.get_by_role("button", name="Approve").click()
    seen = until_the_turn_ends(page)
    assert seen[-1][1:] == ("done", f"Done: order {order} is cancelled and refunded.")
    assert any(state == "streaming" for _, state, _ in seen)  # it streamed in
    assert cancelled(order) == 1
    assert (stored(twin, session) or [])[-1] == ("assistant", f"Done: order {order} is cancelled and refunded.")


def test_deny_with_a_reason_on_the_page_tells_the_model_and_runs_nothing(page: Any, twin: Twin,  # noqa: F811
                                                                         model: TimedModel) -> None:
    order = order_id()
    open_chat(page, session_id())
    model.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    send(page, f"Cancel order {order}.")
    until_the_turn_ends(page)
    box = page.locator(".approval")
    box.locator("input").fill("It has shipped already.")
    box.get_by_role("button", name="Deny").click()
    assert until_the_turn_ends(page)[-1][1:] == ("done", "The tool returned: A person denied this call: "
                                                         "It has shipped already.")
    assert cancelled(order) == 0


def test_make_chat_asks_approve_and_y_runs_the_call(twin: Twin, model: TimedModel) -> None:
    order = order_id()
    model.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    client = Chat("--port", str(twin.port), "--session", session_id())
    client.say(f"Cancel order {order}.")
    client.wait_for(f'the agent wants to call cancel_order {{"order_id": "{order}"}}')
    assert cancelled(order) == 0
    client.say("y")
    client.wait_for(f"Order {order} is cancelled")
    code, output = client.finish()
    assert code == 0, output
    assert cancelled(order) == 1
    assert "approve? [y/N]" in output and "stopped: interrupt" in output


def test_make_chat_n_with_a_reason_denies(twin: Twin, model: TimedModel) -> None:
    order = order_id()
    model.queue(Reply.call_tool("cancel_order", {"order_id": order}))
    client = Chat("--port", str(twin.port), "--session", session_id())
    client.say(f"Cancel order {order}.", "n not this one")
    client.wait_for("A person denied this call: not this one")
    code, output = client.finish()
    assert code == 0, output
    assert cancelled(order) == 0
