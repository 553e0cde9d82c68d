"""The chat page (tools/chat/index.html, served by the twin at /) in a real headless browser:
Debian's chromium, driven by Playwright. The test model streams word by word, and the page is
watched as the reply arrives.

`make browser` installs chromium (apt-get, as root; `make test` runs it first). Without it these
tests fail when CI=true and are skipped otherwise, saying why. Screenshots go to build/:
chat-page.png (a finished reply), chat-page-streaming.png (one half shown), chat-page-stop.png (the
Stop button) and chat-page-stopped.png (a reply stopped).
"""

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from model_server import Reply

from tests.conftest import ROOT
from tests.polling import until_async
from tests.twin.conftest import run, session_id, start_session, stored

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")  # as `make browser` has it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "build"
LAST_ASSISTANT = """() => {
  const node = [...document.querySelectorAll('.msg[data-role="assistant"]')].pop();
  return node ? [node.dataset.state, node.querySelector('.text').textContent] : [null, ''];
}"""
REPLY = ("Here is a plan for a weekend in Lisbon.\n\n"
         "Saturday: walk up to the castle early, then lunch in Alfama and the tram back down to Baixa. "
         "In the evening, fado in a small bar.\n\n"
         "Sunday: take the train to Belém for the tower, the monastery and the famous custard tarts, "
         "then watch the sunset from a miradouro.")


def no_chromium_reason() -> str:
    log = ROOT / "build" / "browser.log"
    said = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
    return (f"Debian's chromium is not installed ({CHROMIUM}): `make browser` installs it (apt-get, as root)"
            + (f"; it said: {said[0]}" if said else ""))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(no_chromium_reason(), pytrace=False)
        pytest.skip(no_chromium_reason())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, twin: Any) -> Iterator[Any]:
    """A fresh browser profile (its own localStorage) on the twin. A script error fails the test,
    and so does a request anywhere but the twin: the page works offline."""
    context = browser.new_context(viewport={"width": 1200, "height": 780}, color_scheme="light",
                                  base_url=twin.url)
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith((twin.url, twin.ws_url, "data:"))
            else elsewhere.append(request.url))
    yield page
    context.close()
    assert not errors, errors
    assert not elsewhere, elsewhere


def open_chat(page: Any, session: str | None = None) -> None:
    page.goto(f"/?session={session}" if session else "/")
    page.wait_for_selector('#status[data-state="open"]')


def send(page: Any, message: str) -> None:
    page.locator("#message").press_sequentially(message, delay=5)
    page.keyboard.press("Enter")


def until_the_turn_ends(page: Any, timeout: float = 60, snapshot: tuple[int, str] | None = None,
                        ) -> list[tuple[float, str, str]]:
    """What the last assistant message showed, and when, until it is done (or an error).
    snapshot (characters, file name): a screenshot once that much of the reply is shown."""
    seen: list[tuple[float, str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, text = page.evaluate(LAST_ASSISTANT)
        seen.append((time.perf_counter(), state, text))
        if state in ("done", "error") and len(seen) > 1:
            return seen
        if snapshot and state == "streaming" and len(text) >= snapshot[0]:
            screenshot(page, snapshot[1])
            snapshot = None
        time.sleep(0.02)
    raise AssertionError(f"the turn did not end in {timeout} s: {seen[-1:]}")


def shown(page: Any) -> list[tuple[str, str]]:
    return [(node.get_attribute("data-role"), node.locator(".text").text_content())
            for node in page.locator(".msg").all()]


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_a_reply_streams_into_the_page_and_is_the_stored_reply(page, twin, model):
    session = session_id()
    open_chat(page, session)
    send(page, "Hey, my name is Arindam.")
    assert until_the_turn_ends(page)[-1][1:] == ("done", "Noted: Hey, my name is Arindam.")

    model.queue(Reply.say(REPLY, word_delay=0.06))  # ~3 s in all
    send(page, "Plan a weekend in Lisbon for me.")
    seen = until_the_turn_ends(page, snapshot=(len(REPLY) // 2, "chat-page-streaming.png"))
    last_word = model.word_times[-1][-1]
    partial = [(at, text) for at, state, text in seen if state == "streaming" and 0 < len(text) < len(REPLY)]
    assert partial and partial[0][0] < last_word, "no part of the reply was shown before the model had finished"
    assert len({text for _, text in partial}) >= 5, "the reply did not grow progressively"
    assert all(REPLY.startswith(text) for _, _, text in seen), "the shown text was not always a head of the reply"
    assert seen[-1][1:] == ("done", REPLY)
    assert (stored(twin, session) or [])[-1:] == [("assistant", REPLY)]
    assert "4 messages stored" in page.locator(".msg").last.locator(".meta").text_content()
    screenshot(page, "chat-page.png")

    page.reload()
    page.wait_for_selector(".msg >> nth=3")
    assert shown(page) == [("user", "Hey, my name is Arindam."), ("assistant", "Noted: Hey, my name is Arindam."),
                           ("user", "Plan a weekend in Lisbon for me."), ("assistant", REPLY)]


def test_the_page_keeps_its_session_and_the_agent_remembers_the_name(page, twin):
    open_chat(page)  # no ?session=: the page picks one and keeps it in localStorage
    send(page, "Hey, my name is Arindam.")
    until_the_turn_ends(page)
    session = page.evaluate("() => JSON.parse(localStorage.getItem('agent.session'))")

    open_chat(page)
    page.wait_for_selector(".msg >> nth=1")
    send(page, "Do you remember my name?")
    assert until_the_turn_ends(page)[-1][1:] == ("done", "Yes, your name is Arindam.")
    assert stored(twin, session) == [("user", "Hey, my name is Arindam."),
                                     ("assistant", "Noted: Hey, my name is Arindam."),
                                     ("user", "Do you remember my name?"), ("assistant", "Yes, your name is Arindam.")]
    assert page.locator("#sessions li[data-current=true]").get_attribute("data-session") == session


def test_history_pages_are_all_shown(page, twin):
    session = session_id()
    open_chat(page, session)
    for message in ("one", "two", "three"):
        send(page, message)
        until_the_turn_ends(page)
    page.goto(f"/?session={session}&page_size=2")  # three pages
    page.wait_for_selector(".msg >> nth=5")
    assert [text for _, text in shown(page)] == ["one", "Noted: one", "two", "Noted: two", "three", "Noted: three"]


def test_delete_asks_once_more_then_the_session_is_gone(page, twin):
    session = session_id()
    open_chat(page, session)
    send(page, "Remember this.")
    until_the_turn_ends(page)
    page.wait_for_selector(f'#sessions li[data-session="{session}"]')  # listed after its first turn
    page.click("#delete")
    assert stored(twin, session) is not None  # the first click only asks
    page.click("#delete")
    page.wait_for_selector("#banner:not([hidden])")
    assert page.locator("#banner-text").text_content() == f"Deleted session {session}."
    assert stored(twin, session) is None
    assert page.locator(".msg").count() == 0
    assert page.locator(f'#sessions li[data-session="{session}"]').count() == 0


def test_an_error_frame_is_shown_with_its_code(page, twin, model):
    model.queue(Reply.error(429, {"Retry-After": "5"}))
    open_chat(page, session_id())
    send(page, "Hello?")
    assert until_the_turn_ends(page)[-1][1] == "error"
    error = page.locator('.msg[data-state="error"] .error')
    assert error.locator("code").text_content() == "model_throttled"
    assert "Try again in 5 s." in error.text_content()
    assert not page.locator("#send").is_disabled() or page.locator("#message").input_value() == ""


def test_a_connection_dropped_mid_reply_reconnects_and_the_reply_still_arrives(page, twin, model):
    words = " ".join(f"word{n}" for n in range(40))
    model.queue(Reply.say(words, word_delay=0.08))
    session = session_id()
    known = set(twin.connections.live)
    open_chat(page, session)
    send(page, "Count to forty.")
    page.wait_for_function("() => document.querySelector('.msg[data-state=\"streaming\"]')")
    connection, = set(twin.connections.live) - known
    # API Gateway closing the connection (idle, 2 h, or a deploy): the management API's DELETE
    request = urllib.request.Request(f"{twin.url}/_aws/connections/@connections/{connection}", method="DELETE")
    assert urllib.request.urlopen(request).status == 204
    page.wait_for_selector('#status[data-state="closed"]')
    seen = until_the_turn_ends(page)
    assert seen[-1][1:] == ("done", words)
    assert page.locator("#status").get_attribute("data-state") == "open"
    assert stored(twin, session) == [("user", "Count to forty."), ("assistant", words)]  # sent again, run once
    lines = [line for line in twin.terminal.lines if f"session={session}" in line]
    assert sum("WS sendMessage" in line for line in lines) == 2, lines
    assert any(f"GET /sessions/{session}/turns/t_" in line for line in lines), "the end was not asked for"


def new_connection(twin: Any, known: set[str]) -> str:
    """The connection the page opened since ``known`` was taken."""
    async def opened(_: Any) -> set[str]:
        async def found() -> set[str]:
            return set(twin.connections.live) - known
        return await until_async(found, timeout=30, every=0.02)

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        connection, = thread.submit(run, opened).result()
    return connection


def test_a_frame_delivered_twice_is_shown_once(page, twin, model):
    """A post tried again after a read timeout can reach the page twice: same seq, shown once."""
    model.queue(Reply.say(REPLY, word_delay=0.02))
    session = session_id()
    known = set(twin.connections.live)
    open_chat(page, session)
    twin.connections.repeated.add(new_connection(twin, known))
    send(page, "Plan a weekend in Lisbon for me.")
    seen = until_the_turn_ends(page)
    assert all(REPLY.startswith(text) for _, _, text in seen), "a piece of the reply was shown twice"
    assert seen[-1][1:] == ("done", REPLY)
    assert stored(twin, session) == [("user", "Plan a weekend in Lisbon for me."), ("assistant", REPLY)]


def test_a_message_sent_offline_is_queued_until_the_connection_is_back(page, twin, model):
    session = session_id()
    known = set(twin.connections.live)
    open_chat(page, session)
    connection = new_connection(twin, known)
    page.context.set_offline(True)
    # API Gateway closing the connection: the page reconnects, and cannot while offline
    request = urllib.request.Request(f"{twin.url}/_aws/connections/@connections/{connection}", method="DELETE")
    assert urllib.request.urlopen(request).status == 204
    page.wait_for_selector('#status[data-state="closed"]')
    send(page, "Hello from the train.")
    last = page.locator('.msg[data-role="assistant"]').last
    assert last.get_attribute("data-state") == "queued"
    shown_before = last.locator(".text").evaluate("node => getComputedStyle(node, '::before').content")
    assert shown_before == '"Queued"' and "connection is back" in last.locator(".meta").text_content()
    assert stored(twin, session) is None  # nothing was sent

    page.context.set_offline(False)
    assert until_the_turn_ends(page)[-1][1:] == ("done", "Noted: Hello from the train.")
    assert stored(twin, session) == [("user", "Hello from the train."), ("assistant", "Noted: Hello from the train.")]


def test_a_new_chat_asks_for_no_history_and_logs_no_error(page, twin):
    refused: list[str] = []
    said: list[str] = []
    page.on("response", lambda response: refused.append(response.url) if response.status >= 400 else None)
    page.on("console", lambda message: said.append(message.text) if message.type == "error" else None)
    open_chat(page)  # a first visit: the page makes up a session id
    page.click("#new-session")
    page.wait_for_selector(".empty")
    send(page, "Hello there.")
    until_the_turn_ends(page)
    page.reload()  # the session has a message now: its history is asked for, and found
    page.wait_for_selector(".msg >> nth=1")
    assert refused == [] and said == []


def test_the_token_line_under_replies_stays_after_a_reload(page, twin, browser):
    session = session_id()
    open_chat(page, session)
    send(page, "Hey, my name is Arindam.")
    until_the_turn_ends(page)
    send(page, "Do you remember my name?")
    until_the_turn_ends(page)
    lines = replies_meta(page)

    page.reload()
    page.wait_for_selector(".msg >> nth=3")
    assert replies_meta(page) == lines
    assert "out tokens" in lines[1] and "4 messages stored" in lines[1]

    elsewhere = browser.new_context(base_url=twin.url)  # another browser: what the history says
    other = elsewhere.new_page()
    open_chat(other, session)
    other.wait_for_selector(".msg >> nth=3")
    metas = replies_meta(other)
    elsewhere.close()
    assert metas == ["2 messages stored", "4 messages stored"]


def replies_meta(page: Any) -> list[str]:
    """The line under each of the two replies, but its time (the reply's frame and the history
    may tell a minute apart)."""
    return [page.locator(".msg").nth(n).locator(".meta").text_content().split(" · ", 1)[1] for n in (1, 3)]


def test_stop_ends_a_streaming_reply_as_stopped_stores_nothing_and_the_next_message_works(page, twin, model):
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    page.on("websocket", lambda ws: (ws.on("framereceived", lambda data: received.append(json.loads(data))),
                                     ws.on("framesent", lambda data: sent.append(json.loads(data)))))
    session = session_id()
    open_chat(page, session)
    send(page, "Hey, my name is Arindam.")
    until_the_turn_ends(page)
    assert page.locator("#stop").is_hidden(), "Stop is shown with no reply streaming"

    text = " ".join(f"word{n}" for n in range(100))
    model.queue(Reply.say(text, word_delay=0.1))  # ~10 s, unless stopped
    send(page, "Count to a hundred.")
    page.wait_for_selector('.msg[data-state="streaming"]')
    stop = page.get_by_role("button", name="Stop")  # labelled, and reached from the message box by Tab
    assert stop.is_visible() and page.locator("#send").is_hidden()
    screenshot(page, "chat-page-stop.png")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "stop"
    pressed = time.perf_counter()
    page.keyboard.press("Enter")
    page.wait_for_selector('.msg[data-state="stopped"]', timeout=5000)
    assert time.perf_counter() - pressed < 2.5, "the turn did not stop within 2 s"

    turn_id = next(f["turn_id"] for f in received if f.get("type") == "accepted" and f["session_id"] == session
                   and f["turn_id"] not in {g.get("turn_id") for g in received if g.get("type") == "reply"})
    assert [f for f in sent if f.get("action") == "cancelTurn"] == [
        {"action": "cancelTurn", "session_id": session, "turn_id": turn_id}]
    ends = [f for f in received if f.get("turn_id") == turn_id and f.get("type") in ("reply", "error")]
    assert [f["error"]["code"] for f in ends] == ["turn_cancelled"]
    stopped = page.locator('.msg[data-role="assistant"]').last
    shown_text = stopped.locator(".text").text_content()
    assert text.startswith(shown_text) and len(shown_text) < len(text), shown_text
    assert "Stopped" in stopped.locator(".meta").text_content()
    screenshot(page, "chat-page-stopped.png")
    assert stopped.locator(".error").count() == 0 and page.locator("#banner").is_hidden()  # not shown as a failure
    assert stored(twin, session) == [("user", "Hey, my name is Arindam."),
                                     ("assistant", "Noted: Hey, my name is Arindam.")]  # nothing of the stopped turn

    assert page.locator("#stop").is_hidden() and page.locator("#send").is_visible()
    assert page.evaluate("() => document.activeElement.id") == "message"
    send(page, "Do you remember my name?")
    assert until_the_turn_ends(page)[-1][1:] == ("done", "Yes, your name is Arindam.")
    assert stored(twin, session) == [("user", "Hey, my name is Arindam."),
                                     ("assistant", "Noted: Hey, my name is Arindam."),
                                     ("user", "Do you remember my name?"), ("assistant", "Yes, your name is Arindam.")]


# ---- the sidebar: your sessions, from GET /sessions ---------------------------------------------------

def listed(page: Any) -> list[tuple[str, str, str]]:
    """The sidebar: (session id, title, when) of each session, top first."""
    return [(item.get_attribute("data-session"), item.locator(".title").text_content(),
             item.locator(".when").text_content())
            for item in page.locator("#sessions li[data-session]").all()]


def listing(twin: Any, session: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{twin.url}/sessions/{session}") as response:
        return json.load(response)


def test_the_sidebar_lists_your_sessions_newest_first_in_a_fresh_profile(page, twin):
    mark = session_id()
    made = [start_session(twin, f"{topic} {mark}") for topic in ("Trip to Lisbon", "Tax return", "Birthday ideas")]
    open_chat(page)  # a fresh profile: nothing of these sessions is in its localStorage
    page.wait_for_selector("#sessions li[data-session] >> nth=2")
    assert listed(page)[:3] == [(made[2], f"Birthday ideas {mark}", "just now"),
                                (made[1], f"Tax return {mark}", "just now"),
                                (made[0], f"Trip to Lisbon {mark}", "just now")]
    page.locator(f'#sessions li[data-session="{made[0]}"] button.open').click()
    page.wait_for_selector(".msg >> nth=1")
    assert page.locator("#title").text_content() == f"Trip to Lisbon {mark}"
    assert page.locator("#sessions li[data-current=true]").get_attribute("data-session") == made[0]


def test_a_new_chat_is_listed_after_its_first_turn_titled_by_its_message(page, twin):
    open_chat(page)
    page.click("#new-session")
    page.wait_for_selector(".empty")
    session = page.evaluate("() => JSON.parse(localStorage.getItem('agent.session'))")
    assert page.locator(f'#sessions li[data-session="{session}"]').count() == 0
    send(page, "Ideas for a garden party")
    until_the_turn_ends(page)
    page.wait_for_selector(f'#sessions li[data-session="{session}"]')
    assert listed(page)[0] == (session, "Ideas for a garden party", "just now")
    assert page.locator("#title").text_content() == "Ideas for a garden party"


def test_a_session_renamed_in_place_keeps_its_title_after_a_reload(page, twin):
    session = start_session(twin, "Hello there")
    open_chat(page, session)
    item = page.locator(f'#sessions li[data-session="{session}"]')
    item.locator("button.open").dblclick()
    field = page.get_by_label("Session title")
    assert field.input_value() == "Hello there"
    field.fill("Not this one")
    field.press("Escape")  # cancels: nothing is sent
    assert item.locator(".title").text_content() == "Hello there"
    assert page.evaluate("() => document.activeElement.className") == "rename"
    assert listing(twin, session)["title"] == "Hello there"

    item.locator("button.rename").click()
    page.get_by_label("Session title").fill("Plans for the summer")
    page.get_by_label("Session title").press("Enter")
    page.wait_for_function(f"""() => document.querySelector('#sessions li[data-session="{session}"] .title')
                                     ?.textContent === 'Plans for the summer'""")
    assert listing(twin, session)["title"] == "Plans for the summer"
    assert page.locator("#title").text_content() == "Plans for the summer"

    page.reload()
    page.wait_for_selector(f'#sessions li[data-session="{session}"]')
    assert item.locator(".title").text_content() == "Plans for the summer"
    assert page.locator("#title").text_content() == "Plans for the summer"


def test_scrolling_the_sidebar_to_its_end_lists_the_next_page(browser, twin):
    made = [start_session(twin, f"Page test {n}") for n in range(8)]
    context = browser.new_context(viewport={"width": 1200, "height": 420}, base_url=twin.url)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/sessions?" in request.url else None)
    try:
        page.goto("/?list_size=4")
        page.wait_for_selector("#sessions li[data-session] >> nth=3")
        first = listed(page)
        assert [row[0] for row in first] == made[::-1][:len(first)]
        assert len(first) < 8 and len(asked) == len(first) // 4, "more than the pages in view were listed"
        page.locator("#sessions").evaluate("list => list.scrollTop = list.scrollHeight")
        page.wait_for_selector(f"#sessions li[data-session] >> nth={len(first) + 3}")
        more = [row[0] for row in listed(page)]
        assert more[:8] == made[::-1]
        assert len(more) == len(set(more)), "a session was listed twice"
        assert "cursor=" in asked[-1]
    finally:
        context.close()
