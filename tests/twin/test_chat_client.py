"""`make chat` (tools/chat.py) as a subprocess against the twin, its stdin a pipe: replies print
as they stream, the commands, the reference conversation across two runs, one-line errors."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from agent_client import AgentClient, Target
from model_server import Reply

from tests.conftest import ROOT
from tests.polling import until, until_async
from tests.twin.conftest import history, run, session_id, start_session, stored

pytestmark = pytest.mark.slow


class Chat:
    """`python tools/chat.py`, its output kept as it arrives (with the time each piece came)."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "tools/chat.py", *args], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        self.pieces: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.stdout.fileno(), 4096):
            self.pieces.append((time.perf_counter(), chunk.decode()))

    @property
    def output(self) -> str:
        return "".join(piece for _, piece in self.pieces)

    def say(self, *lines: str) -> None:
        self.stdin.write("".join(f"{line}\n" for line in lines).encode())
        self.stdin.flush()

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """When ``text`` was first in the output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = ""
            for at, piece in list(self.pieces):
                seen += piece
                if text in seen:
                    return at
            assert self.process.poll() is None or self.reader.is_alive(), self.output
            time.sleep(0.01)
        raise AssertionError(f"no {text!r} in:\n{self.output}")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        self.stdin.close()
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code, self.output


def new_connection(twin, known: set[str]) -> str:
    """The id of the one connection opened since ``known`` was taken."""
    async def opened(_):
        return await until_async(lambda: _found(set(twin.connections.live) - known), timeout=30, every=0.02)

    connection, = run(opened)
    return connection


async def _found(value):
    return value


def chat(twin, session: str, *lines: str) -> tuple[int, str]:
    client = Chat("--port", str(twin.port), "--session", session)
    client.say(*lines)
    return client.finish()


def words(count: int) -> str:
    return " ".join(f"word{n}" for n in range(count))


def test_a_reply_prints_as_it_streams_then_a_status_line(twin, model):
    text = words(20)
    model.queue(Reply.say(text, word_delay=0.1))  # the model takes ~2 s
    client = Chat("--port", str(twin.port), "--session", session_id())
    client.say("Count to twenty.")
    first_words = client.wait_for("agent › word0 word1")
    client.wait_for("messages stored")
    code, output = client.finish()
    assert first_words < model.word_times[-1][-1], "the reply printed only once the model had finished"
    assert code == 0, output
    assert f"you › Count to twenty.\nagent › {text}\n" in output
    status = output.split(f"{text}\n")[1].splitlines()[0]
    assert "in /" in status and "out tokens" in status and "2 messages stored" in status, status


def test_a_connection_dropped_mid_reply_is_made_again_and_the_whole_reply_printed(twin, model):
    text = words(30)
    model.queue(Reply.say(text, word_delay=0.08))
    session = session_id()
    known = set(twin.connections.live)
    client = Chat("--port", str(twin.port), "--session", session)
    client.say("Count to thirty.")
    client.wait_for("agent › word0")
    connection, = set(twin.connections.live) - known
    # API Gateway closing the connection (idle, 2 h, or a deploy): the management API's DELETE
    request = urllib.request.Request(f"{twin.url}/_aws/connections/@connections/{connection}", method="DELETE")
    assert urllib.request.urlopen(request).status == 204
    client.wait_for("messages stored")
    code, output = client.finish()
    assert code == 0, output
    assert "(connection lost; reconnecting, attempt 1)" in output
    assert output.split("attempt 1)\n")[1].startswith(f"agent › {text}\n  · "), output
    assert [m["text"] for m in run(lambda client: history(client, twin, session))] == ["Count to thirty.", text]


def test_history_lists_the_exchange_and_delete_leaves_none(twin):
    session = session_id()
    code, output = chat(twin, session, "Hello there.", "/history", "/delete", "/history")
    assert code == 0, output
    assert f"session {session}: 2 messages\n  [0] you › Hello there.\n  [1] agent › Noted: Hello there.\n" in output
    assert f"deleted session {session}" in output
    assert output.rstrip().endswith(f"session {session} has no history (nothing stored yet, or deleted)")


def test_the_reference_conversation_across_two_runs(twin):
    session = session_id()
    code, first = chat(twin, session, "Hey, my name is Arindam.")
    assert code == 0, first
    code, second = chat(twin, session, "Do you remember my name?")  # a new process: nothing kept but the session
    assert code == 0, second
    assert "agent › Yes, your name is Arindam.\n" in second
    assert "4 messages stored" in second


def test_new_and_session_switch_sessions(twin):
    session, other = session_id(), session_id()
    code, output = chat(twin, session, "In the first.", f"/session {other}", "In the second.", "/history", "/new",
                        "/history", "/session not valid!")
    assert code == 0, output
    assert f"session {other}: 2 messages\n  [0] you › In the second.\n" in output
    new = output.split("new session ")[1].split()[0]
    assert new.startswith("chat_") and f"session {new} has no history" in output
    assert "usage: /session ID" in output


def test_an_error_frame_prints_one_line_and_the_exit_status_says_so(twin, model):
    model.queue(Reply.error(429, {"Retry-After": "7"}))
    code, output = chat(twin, session_id(), "Hello?")
    assert code == 1
    assert "model_throttled: " in output and "(retry in 7 s)" in output
    assert "Traceback" not in output


def test_nothing_listening_says_to_start_make_dev():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    client = Chat("--port", str(port))
    code, output = client.finish(timeout=30)
    assert code == 1
    assert output == f"Nothing is listening on 127.0.0.1:{port} — start it with `make dev PORT={port}`.\n"


def test_a_deployed_url_without_credentials_says_what_to_configure(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")
    url = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    result = subprocess.run([sys.executable, "tools/chat.py", "--url", url],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("No AWS credentials found") and "--token" in result.stderr


def test_history_follows_every_page(twin):
    session = session_id()
    code, output = chat(twin, session, "one", "two", "three")
    assert code == 0, output

    async def scenario(_):
        async with AgentClient(Target.local(twin.port), page_size=2) as agent:
            return await agent.history(session)

    messages = run(scenario)
    assert [m["text"] for m in messages] == ["one", "Noted: one", "two", "Noted: two", "three", "Noted: three"]
    assert [m["index"] for m in messages] == list(range(6))


def test_a_slow_management_api_holds_up_neither_the_stream_nor_the_commit_and_the_reply_arrives(twin, model):
    """Each POST @connections takes 2 s (a client tier can): the turn is stored before its first
    delta has even reached the client, and every frame still arrives, in order."""
    text = words(30)
    model.queue(Reply.say(text, word_delay=0.02))  # ~0.6 s of streaming
    session = session_id()

    async def scenario(client):
        async with AgentClient(Target.local(twin.port)) as agent:
            known = set(twin.connections.live)
            await agent.connect()
            connection, = await until_async(lambda: _found(set(twin.connections.live) - known), timeout=30, every=0.02)
            twin.connections.slow[connection] = 2.0
            deltas: list[tuple[float, str]] = []
            turn = asyncio.create_task(agent.turn(session, "Count to thirty.",
                                                  lambda text: deltas.append((time.perf_counter(), text))))

            async def stored():
                async with client.get(f"{twin.url}/sessions/{session}/messages") as response:
                    return time.perf_counter() if response.status == 200 else None

            stored_at = await until_async(stored, timeout=60, every=0.05)
            return stored_at, deltas, await turn

    stored_at, deltas, final = run(scenario)
    assert final["type"] == "reply" and final["reply"] == text
    assert "".join(piece for _, piece in deltas) == text
    first_delta_shown = deltas[0][0]
    assert stored_at < first_delta_shown, "the turn waited for a post before it was stored"
    assert stored_at - model.word_times[-1][-1] < 1.5, "the model's stream was held up by the posts"


def test_a_frame_delivered_twice_is_shown_once(twin, model):
    """A post tried again after a read timeout can reach the client twice: same seq, shown once."""
    text = words(20)
    model.queue(Reply.say(text, word_delay=0.02))
    known = set(twin.connections.live)
    client = Chat("--port", str(twin.port), "--session", session_id())
    connection = new_connection(twin, known)
    twin.connections.repeated.add(connection)
    client.say("Count to twenty.")
    client.wait_for("messages stored")
    code, output = client.finish()
    assert code == 0, output
    assert f"you › Count to twenty.\nagent › {text}\n  · " in output, output


def test_ctrl_c_during_a_reply_stops_the_turn_stores_nothing_and_the_chat_goes_on(twin, model):
    text = words(100)
    model.queue(Reply.say(text, word_delay=0.1))  # ~10 s, unless stopped
    session = session_id()
    client = Chat("--port", str(twin.port), "--session", session)
    client.say("Count to a hundred.")
    client.wait_for("agent › word0 word1")
    pressed = time.perf_counter()
    client.process.send_signal(signal.SIGINT)
    stopped_at = client.wait_for("stopped: the turn was cancelled and nothing of it was stored")
    assert stopped_at - pressed < 2.5, "the turn did not stop within 2 s"
    assert stored(twin, session) is None  # nothing of the stopped turn: not even the message
    until_logged(twin, "WS cancelTurn", session)  # it was stopped by cancelTurn

    client.say("Hello again.")  # the chat goes on: the next message is a turn like any other
    client.wait_for("agent › Noted: Hello again.")
    code, output = client.finish()
    assert code == 0, output
    assert text not in output and "Traceback" not in output
    assert stored(twin, session) == [("user", "Hello again."), ("assistant", "Noted: Hello again.")]


def test_a_second_ctrl_c_during_a_reply_quits(twin, model):
    model.queue(Reply.say(words(100), word_delay=0.1))
    session = session_id()
    known = set(twin.connections.live)
    client = Chat("--port", str(twin.port), "--session", session)
    connection = new_connection(twin, known)
    client.say("Count to a hundred.")
    client.wait_for("agent › word0")
    twin.connections.slow[connection] = 3.0  # the frame saying the turn stopped comes late
    client.process.send_signal(signal.SIGINT)
    until_logged(twin, "WS cancelTurn", session)  # the first Ctrl-C was taken: the turn is being stopped
    client.process.send_signal(signal.SIGINT)
    code = client.process.wait(10)
    client.reader.join(5)
    assert code == 130, client.output
    assert "Traceback" not in client.output and "Fatal" not in client.output, client.output


def test_ctrl_c_at_the_prompt_quits(twin):
    client = Chat("--port", str(twin.port), "--session", session_id())
    client.say("Hello.")
    client.wait_for("messages stored")
    client.process.send_signal(signal.SIGINT)
    code = client.process.wait(10)
    client.reader.join(5)
    assert code == 130, client.output
    assert "Traceback" not in client.output and "Fatal" not in client.output, client.output


def until_logged(twin, text: str, session: str) -> None:
    """The twin's terminal showed ``text`` on a line of ``session``."""
    until(lambda: any(text in line and f"session={session}" in line for line in list(twin.terminal.lines)),
          timeout=30, what=f"{text} for {session} in the twin's terminal")


def stored_messages(twin, session: str) -> list[dict]:
    return run(lambda client: history(client, twin, session))


def test_sessions_lists_yours_newest_first_and_open_switches_to_one(twin):
    mark = session_id()
    made = [start_session(twin, f"{topic} {mark}") for topic in ("Trip to Lisbon", "Tax return", "Birthday ideas")]
    code, output = chat(twin, session_id(), "/sessions", f"/open {made[0]}", "And the trams?", "/help")
    assert code == 0, output
    rows = [line for line in output.splitlines() if mark in line and "(" in line and line.startswith("   ")]
    assert rows[:3] == [f"   {made[2]}  Birthday ideas {mark}  (just now, 2 messages)",
                        f"   {made[1]}  Tax return {mark}  (just now, 2 messages)",
                        f"   {made[0]}  Trip to Lisbon {mark}  (just now, 2 messages)"], output
    assert (f"session {made[0]}: Trip to Lisbon {mark} (just now, 2 messages)\n"
            f"  you › Trip to Lisbon {mark}\n  agent › Noted: Trip to Lisbon {mark}\n") in output
    assert "/sessions " in output.split("commands:")[1] and "/open ID" in output.split("commands:")[1]
    assert [(m["role"], m["text"]) for m in stored_messages(twin, made[0])][2:] == [
        ("user", "And the trams?"), ("assistant", "Noted: And the trams?")]
    assert [m["text"] for m in stored_messages(twin, made[1])] == [f"Tax return {mark}", f"Noted: Tax return {mark}"]


def test_open_of_a_session_that_is_not_yours_changes_nothing(twin):
    session = session_id()
    code, output = chat(twin, session, "/open nobody_has_this_one", "Still here?")
    assert "no session nobody_has_this_one among yours" in output
    assert code == 0, output
    assert [m["text"] for m in stored_messages(twin, session)] == ["Still here?", "Noted: Still here?"]


def test_sessions_more_lists_the_next_page_without_repeats(twin):
    made = [start_session(twin, f"Paging {n}") for n in range(12)]  # more than a page of 10
    code, output = chat(twin, session_id(), "/sessions", "/sessions more")
    assert code == 0, output
    first, second = output.split("you › /sessions more")
    assert "/sessions more for the next page" in first
    listed = [line.split()[0] for line in output.splitlines() if line.startswith("   ") and "messages)" in line]
    assert listed[:12] == made[::-1]
    assert len(listed) == len(set(listed)), "a session was listed twice"
    assert made[0] in second and made[-1] in first
