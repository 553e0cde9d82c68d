"""`make chat`: talk to the agent from a terminal. The reply prints as it streams (WebSocket
deltas), then a status line: tokens, messages stored, time.

    make chat                                   # the twin (`make dev`) on 127.0.0.1:$PORT, a new session
    make chat SESSION=user_arindam_convo_123    # carry on a session
    python tools/chat.py --url wss://<id>.execute-api.<region>.amazonaws.com/prod \\
                         --api https://<id>.execute-api.<region>.amazonaws.com/    # a deployed stack

Deployed, requests are signed with your AWS credentials (the default chain; --profile to pick
one), or carry --token <JWT> for a stack with AuthMode=JWT. Commands: /sessions, /open <id>,
/history, /new, /session <id>, /delete, /help, /quit. Ctrl-C during a reply stops the turn (nothing
of it is stored); a second Ctrl-C, or one at the prompt, quits. Lines can come from a pipe too:
each is sent in turn, then the program ends (exit status 1 if a turn failed or the agent could not
be reached).
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_client import (  # noqa: E402
    TURN_CANCELLED,
    AgentClient,
    AwsAuth,
    NoAuth,
    Problem,
    Target,
    TokenAuth,
    error_line,
)

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
HELP = """commands:
  /sessions      your sessions, most recent first (/sessions more: the next page)
  /open ID       switch to your session ID and show its last messages
  /history       the session's messages, oldest first
  /new           start a new session (a fresh id)
  /session ID    switch to session ID
  /delete        delete this session (its next message starts afresh)
  /help          this list
  /quit          leave (Ctrl-D too)"""


APPROVE_PROMPT = "  approve? [y/N] (n <reason> to say why) "
STOP_SECONDS = 5.0  # after Ctrl-C, how long to wait for the frame that says the turn stopped


def new_session_id() -> str:
    return f"chat_{uuid.uuid4().hex[:10]}"


class Screen:
    """What the user sees: the prompt, the reply as it streams, dim status lines (colour only on a
    terminal, and not with NO_COLOR)."""

    def __init__(self, out: TextIO = sys.stdout, interactive: bool | None = None) -> None:
        self.out = out
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def prompt(self) -> str:
        if not self.interactive:
            return ""
        # readline counts the prompt's width: escapes go between \001 and \002, which it skips
        return "\001\033[1m\002you › \001\033[0m\002" if self.colour else "you › "

    def echo(self, line: str, prompt: str = "you › ") -> None:
        """A piped line, shown as if typed, so the transcript reads as a conversation."""
        if not self.interactive:
            self.write(f"{prompt}{line}\n")

    def approval_prompt(self) -> str:
        return APPROVE_PROMPT if self.interactive else ""

    def agent(self) -> None:
        self.write(self._paint("1;36", "agent › "))

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def note(self, text: str) -> None:
        self.write(self._paint("2", text) + "\n")

    def error(self, text: str) -> None:
        self.write(self._paint("31", text) + "\n")

    def fatal(self, text: str) -> None:
        """Why the chat cannot start, on stderr."""
        sys.stderr.write((f"\033[31m{text}\033[0m" if sys.stderr.isatty() and self.colour else text) + "\n")


class Lines:
    """Lines of stdin, read on a daemon thread (input() blocks, and Ctrl-C must not wait for it).
    None at the end of input."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.asks: list[tuple[str, asyncio.Future]] = []
        self.ready = threading.Condition()
        threading.Thread(target=self._run, name="stdin", daemon=True).start()

    async def read(self, prompt: str) -> str | None:
        future = self.loop.create_future()
        with self.ready:
            self.asks.append((prompt, future))
            self.ready.notify()
        return await future

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.asks:
                    self.ready.wait()
                prompt, future = self.asks.pop(0)
            try:
                line: str | None = input(prompt)
            except (EOFError, OSError, ValueError):
                line = None
            self.loop.call_soon_threadsafe(_settle, future, line)


def _settle(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


class Chat:
    def __init__(self, agent: AgentClient, session_id: str, screen: Screen) -> None:
        self.agent, self.session_id, self.screen = agent, session_id, screen
        self.failed = False
        self.listing = Sessions(self)

    async def run(self) -> int:
        lines = self.lines = Lines()
        while True:
            line = await lines.read(self.screen.prompt())
            if line is None:
                return 1 if self.failed else 0
            line = line.strip()
            if not line:
                continue
            self.screen.echo(line)
            if line.startswith("/"):
                if not await self.command(line):
                    return 1 if self.failed else 0
            else:
                await self.send(line)

    async def send(self, message: str, interrupt_responses: list[dict[str, Any]] | None = None) -> None:
        shown: list[str] = []  # the reply's text printed since the last "agent ›"
        new_line = [False]  # the connection was lost: the reply starts again on a line of its own
        started = time.monotonic()
        self.screen.agent()

        def on_delta(text: str) -> None:
            if new_line[0]:
                self.screen.agent()
                new_line[0] = False
            shown.append(text)
            self.screen.write(text)

        def on_reconnect(attempt: int) -> None:
            self.screen.write("\n")
            self.screen.note(f"  (connection lost; reconnecting, attempt {attempt})")
            shown.clear()
            new_line[0] = True

        def on_restart() -> None:
            self.screen.write("\n")
            self.screen.note("  (the turn is starting again)")
            shown.clear()
            new_line[0] = True

        try:
            frame = await self.stoppable(self.agent.turn(self.session_id, message, on_delta, on_reconnect,
                                                         on_restart, interrupt_responses))
        except Problem as problem:
            self.screen.write("\n")
            self.screen.error(str(problem))
            self.failed = True
            return
        if frame is None or was_stopped(frame):
            self.screen.write("\n" if shown else "")
            self.stopped(frame)
            return
        if frame["type"] == "error":
            self.screen.write("\n" if shown else "")
            self.screen.error(error_line(frame))
            self.failed = True
            return
        if new_line[0]:
            self.screen.agent()
        streamed = "".join(shown)
        reply = streamed if frame.get("truncated") else str(frame.get("reply", ""))
        # What the deltas did not carry (a reply replayed from its record, a reconnect mid-turn).
        self.screen.write(reply[len(streamed):] if reply.startswith(streamed) else f"\n{reply}")
        self.screen.write("\n")
        self.screen.note(status_line(frame, time.monotonic() - started))
        if frame.get("interrupts"):
            await self.approve(frame["interrupts"])

    # ---- Ctrl-C during a reply: the turn is stopped, the chat goes on ---------------------------
    async def stoppable(self, turn: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any] | None:
        """``turn`` followed to its end; but a Ctrl-C meanwhile asks the server to stop it and waits
        a moment for the frame that says it stopped (None: none came). A second Ctrl-C quits."""
        following = asyncio.ensure_future(turn)
        pressed = asyncio.Event()
        waiting = asyncio.ensure_future(pressed.wait())
        try:
            with CtrlC(pressed):
                await asyncio.wait({following, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if following.done():
                    return following.result()
                return await self.stop(following)
        finally:
            for task in (following, waiting):
                task.cancel()

    async def stop(self, following: asyncio.Future) -> dict[str, Any] | None:
        """cancelTurn once the turn is known (its "accepted" frame), then its end: the error frame
        turn_cancelled, or its reply if it ended first. None when neither came in STOP_SECONDS."""
        state = self.agent.following
        assert state is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_SECONDS):
                accepted = asyncio.ensure_future(state.accepted.wait())
                try:
                    await asyncio.wait({following, accepted}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    accepted.cancel()
                if not following.done() and state.turn_id is not None:
                    await self.agent.cancel_turn(self.session_id, state.turn_id)
                return await following
        return None

    def stopped(self, frame: dict[str, Any] | None) -> None:
        if frame is None:
            self.screen.note("  · asked the agent to stop the turn; no word back yet "
                             "(/history shows whether its reply was stored)")
        else:
            self.screen.note("  · stopped: the turn was cancelled and nothing of it was stored")

    async def approve(self, interrupts: list[dict[str, Any]]) -> None:
        """A paused turn: ask about each tool call (``n <reason>`` denies with a reason the model
        reads), then send the answers, which resume the turn."""
        answers = []
        for call in interrupts:
            wanted = json.dumps(call["input"], ensure_ascii=False)
            self.screen.note(f"  the agent wants to call {call['tool']} {wanted}")
            said = await self.lines.read(self.screen.approval_prompt())
            if said is None:  # end of input: the call keeps waiting in the session
                return
            self.screen.echo(said, APPROVE_PROMPT)
            yes, reason = approval_of(said)
            answers.append({"id": call["id"], "approve": yes, **({"reason": reason} if reason else {})})
        await self.send("", answers)

    async def command(self, line: str) -> bool:
        """Run a /command; False when it is time to leave."""
        name, _, argument = line.partition(" ")
        try:
            if name in ("/quit", "/exit", "/q"):
                return False
            if name == "/help":
                self.screen.note(HELP)
            elif name == "/new":
                self.session_id = new_session_id()
                self.screen.note(f"new session {self.session_id}")
            elif name == "/session":
                self.switch(argument.strip())
            elif name == "/sessions":
                await self.listing.list(more=argument.strip() == "more")
            elif name == "/open":
                await self.listing.open(argument.strip())
            elif name == "/history":
                await self.history()
            elif name == "/delete":
                await self.delete()
            else:
                self.screen.error(f"unknown command {name}; /help lists them")
        except Problem as problem:
            self.screen.error(str(problem))
            self.failed = True
        return True

    def switch(self, session_id: str) -> None:
        if not SESSION_ID.match(session_id):
            self.screen.error("usage: /session ID (letters, digits, _ and -, up to 128, not starting with _ or -)")
            return
        self.session_id = session_id
        self.screen.note(f"session {session_id}")

    async def history(self) -> None:
        messages = await self.agent.history(self.session_id)
        if messages is None:
            self.screen.note(f"session {self.session_id} has no history (nothing stored yet, or deleted)")
            return
        self.screen.note(f"session {self.session_id}: {len(messages)} messages")
        for message in messages:
            if message.get("text"):
                who = "you" if message["role"] == "user" else "agent"
                self.screen.write(f"  [{message['index']}] {who} › {message['text']}\n")

    async def delete(self) -> None:
        if await self.agent.delete(self.session_id):
            self.screen.note(f"deleted session {self.session_id}; its next message starts a new conversation")
        else:
            self.screen.note(f"session {self.session_id} has nothing stored; nothing to delete")


def was_stopped(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "error" and (frame.get("error") or {}).get("code") == TURN_CANCELLED


class CtrlC:
    """Inside the block, Ctrl-C sets ``pressed`` and a second one quits (KeyboardInterrupt), where
    asyncio.run's own handler would end the program at the first. Outside, that handler again."""

    def __init__(self, pressed: asyncio.Event) -> None:
        self.pressed, self.installed = pressed, False
        self.before: Any = None

    def _on_ctrl_c(self) -> None:
        if self.pressed.is_set():
            raise KeyboardInterrupt
        self.pressed.set()

    def __enter__(self) -> "CtrlC":
        self.before = signal.getsignal(signal.SIGINT)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_ctrl_c)
            self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
            if self.before is not None:
                signal.signal(signal.SIGINT, self.before)


class Sessions:
    """/sessions and /open: the caller's sessions as GET /sessions lists them, a page at a time."""

    PAGE = 10
    LAST = 6  # the messages /open shows

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.cursor: str | None = None

    async def list(self, more: bool) -> None:
        screen = self.chat.screen
        if more and not self.cursor:
            screen.note("no more sessions; /sessions lists them from the top")
            return
        page, self.cursor = await self.chat.agent.list_sessions(self.PAGE, self.cursor if more else None)
        if not page:
            screen.note("no sessions yet: send a message to start one")
        now = datetime.now(UTC)
        for entry in page:
            here = "*" if entry["session_id"] == self.chat.session_id else " "
            screen.write(f" {here} {entry['session_id']}  {entry['title']}  ({ago(entry['updated_at'], now)}, "
                         f"{entry['message_count']} messages)\n")
        if self.cursor:
            screen.note("/sessions more for the next page · /open ID to switch")

    async def open(self, session_id: str) -> None:
        screen = self.chat.screen
        if not SESSION_ID.match(session_id):
            screen.error("usage: /open ID (an id /sessions lists)")
            return
        found = await self.chat.agent.session(session_id)
        if found is None:
            screen.error(f"no session {session_id} among yours; /sessions lists them")
            return
        self.chat.session_id = session_id
        screen.note(f"session {session_id}: {found['title']} ({ago(found['updated_at'], datetime.now(UTC))}, "
                    f"{found['message_count']} messages)")
        messages = [m for m in await self.chat.agent.history(session_id) or [] if m.get("text")]
        for message in messages[-self.LAST:]:
            who = "you" if message["role"] == "user" else "agent"
            screen.write(f"  {who} › {message['text']}\n")


def ago(iso: str, now: datetime) -> str:
    """How long ago, as a person says it: just now, 5 min ago, 3 h ago, yesterday, 4 days ago, a date."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days < 7:
        return "yesterday" if days == 1 else f"{days} days ago"
    return when.strftime("%d %b %Y")


def approval_of(said: str) -> tuple[bool, str | None]:
    """``y``/``yes`` approves; anything else denies, the words after ``n`` being the reason."""
    word, _, rest = said.strip().partition(" ")
    if word.lower() in ("y", "yes"):
        return True, None
    return False, rest.strip() or None


def status_line(frame: dict[str, Any], seconds: float) -> str:
    usage = frame.get("usage") or {}
    parts = [f"{usage.get('input_tokens', '?')} in / {usage.get('output_tokens', '?')} out tokens",
             f"{frame.get('message_count', '?')} messages stored", f"{seconds:.1f} s"]
    if frame.get("stop_reason") not in (None, "end_turn"):
        parts.append(f"stopped: {frame['stop_reason']}")
    return "  · " + " · ".join(parts)


def target_of(args: argparse.Namespace) -> Target:
    if not args.url:
        local = Target.local(args.port)
        if args.api:
            local.api_url = args.api
        return local
    if _is_local(args.url):  # another twin: its HTTP API is on the same port
        api = args.api or "http://" + args.url.split("://", 1)[1].split("/", 1)[0]
        return Target(args.url, api, TokenAuth(args.token) if args.token else NoAuth())
    auth = TokenAuth(args.token) if args.token else AwsAuth.from_default_chain(args.region, args.profile)
    return Target(args.url, args.api, auth)


def _is_local(url: str) -> bool:
    return re.match(r"^wss?://(127\.0\.0\.1|localhost|\[::1\])[:/]", url) is not None


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make chat", description="Chat with the agent from a terminal.")
    parser.add_argument("--session", default=os.environ.get("SESSION") or None,
                        help="session id (default: $SESSION, else a new one)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 3000),
                        help="the twin's port (default: $PORT, else 3000)")
    parser.add_argument("--url", help="a deployed stack's WebSocketUrl (wss://…/prod)")
    parser.add_argument("--api", help="a deployed stack's ApiUrl (https://…/), for /history and /delete")
    parser.add_argument("--token", help="a JWT for a stack with AuthMode=JWT (default: AWS credentials)")
    parser.add_argument("--profile", help="the AWS profile to sign with (default: the default chain)")
    parser.add_argument("--region", help="the region to sign for (default: from the URL's host)")
    args = parser.parse_args(argv)
    if args.session and not SESSION_ID.match(args.session):
        parser.error(f"not a session id: {args.session!r} (letters, digits, _ and -, up to 128)")
    if args.url and not args.url.startswith(("ws://", "wss://")):
        parser.error("--url is a WebSocket URL: wss://<api id>.execute-api.<region>.amazonaws.com/prod")
    if args.api and not args.api.startswith(("http://", "https://")):
        parser.error("--api is the HTTP API's base URL: https://<api id>.execute-api.<region>.amazonaws.com/")
    return args


async def main(args: argparse.Namespace) -> int:
    screen = Screen()
    try:
        target = target_of(args)
    except Problem as problem:
        screen.fatal(str(problem))
        return 1
    session_id = args.session or new_session_id()
    async with AgentClient(target) as agent:
        try:
            await agent.connect()
        except Problem as problem:
            screen.fatal(str(problem))
            return 1
        signed = "" if isinstance(target.auth, NoAuth) else f", as {target.auth.describe()}"
        screen.note(f"session {session_id} on {target.where}{signed} · /help for commands")
        return await Chat(agent, session_id, screen).run()


def run(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401  (line editing and history for input())
    try:
        return asyncio.run(main(args))
    except KeyboardInterrupt:
        print(flush=True)
        # The stdin thread may be inside input() holding stdin's lock (a pipe), which the
        # interpreter's shutdown would wait for and abort on: leave at once, everything is closed.
        os._exit(130)


if __name__ == "__main__":
    sys.exit(run())
