"""Helpers for the store tests: a real Strands Agent on LiteLLM, stores on both backends, what is stored."""

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_server import ModelServer
from strands import Agent, ModelRetryStrategy, tool
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.models.litellm import LiteLLMModel

from agent.aws_clients import AwsClients
from agent.deadline import Deadline
from agent.settings import Settings
from agent.store import SessionStore, open_store

BUCKET = "test-sessions"
CALLER = "arn:aws:sts::123456789012:assumed-role/ChatRole/alice"
NEVER = Deadline.never()


@tool
def lookup_weather(city: str) -> str:
    """Report the weather for a city."""
    return f"It is sunny in {city}."


class Clock:
    """Wall-clock time for leases that a test can move forward, instead of sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class S3Requests:
    """Counts the HTTP requests the store's clients send, by operation (retries included)."""

    def __init__(self, session: Any) -> None:
        self.counts: Counter[str] = Counter()
        # Registered on the boto3 session: every client made from it later (one per tier) counts.
        session.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **kwargs: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def take(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts


@dataclass
class Backend:
    """Where a test's store keeps its objects, read back without the store's code."""

    kind: str
    root: Path  # files: the session dir
    s3: Any = None  # S3: a client of its own (not counted), on the mock bucket
    clients: AwsClients | None = None
    requests: S3Requests | None = None
    stores: list[SessionStore] = field(default_factory=list)

    def store(self, clock: Clock | None = None, **settings: Any) -> SessionStore:
        if self.kind == "s3":
            config = Settings(session_bucket=BUCKET, **settings)
        else:
            config = Settings(session_dir=str(self.root), **settings)
        objects = open_store(config, self.clients).objects
        return SessionStore(objects, config, clock=clock or time.time)

    def stored(self) -> dict[str, bytes]:
        """Every stored object (key relative to the store's root) with its content."""
        if self.kind == "s3":
            found = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="sessions/"):
                for item in page.get("Contents", []):
                    body = self.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                    found[item["Key"].removeprefix("sessions/")] = body
            return found
        if not self.root.exists():
            return {}
        return {
            str(path.relative_to(self.root)).replace(os.sep, "/"): path.read_bytes()
            for path in self.root.rglob("*")
            if path.is_file() and path.name != ".lock"
        }

    def stored_json(self, suffix: str) -> Any:
        (content,) = [body for key, body in self.stored().items() if key.endswith(suffix)]
        return json.loads(content)

    def write(self, key: str, body: bytes) -> None:
        """Put an object as another program would (a stock manager, a dying process)."""
        if self.kind == "s3":
            self.s3.put_object(Bucket=BUCKET, Key=f"sessions/{key}", Body=body)
        else:
            path = self.root.joinpath(*key.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

    def stock_location(self, segment: str) -> dict[str, Any]:
        """Arguments for a stock S3SessionManager / FileSessionManager over a caller's folder."""
        if self.kind == "s3":
            return {"bucket": BUCKET, "prefix": f"sessions/{segment}"}
        return {"storage_dir": str(self.root / segment)}


def model(server: ModelServer) -> LiteLLMModel:
    # No provider retries, as the agent package configures it: a scripted error fails the turn.
    client_args = {"api_key": "test", "api_base": server.base_url, "max_retries": 0}
    return LiteLLMModel(client_args=client_args, model_id="openai/test-model")


def make_agent(session_manager: Any, server: ModelServer, window: int = 40, **kwargs: Any) -> Agent:
    return Agent(
        model=model(server),
        session_manager=session_manager,
        tools=[lookup_weather],
        conversation_manager=SlidingWindowConversationManager(window_size=window),
        callback_handler=None,
        retry_strategy=ModelRetryStrategy(max_attempts=1),
        **kwargs,
    )


def chat(store: SessionStore, session_id: str, text: str, server: ModelServer, caller: str = CALLER,
         window: int = 40) -> str:
    """One whole turn, as the agent package runs it."""
    with store.turn(caller, session_id, NEVER) as turn:
        result = make_agent(turn.session_manager, server, window)(text)
    return str(result).strip()


def seed(store: SessionStore, session_id: str, count: int, server: ModelServer, window: int = 40,
         caller: str = CALLER) -> None:
    """A session with ``count`` stored messages, written through the session manager's own hooks."""
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"message {i}"}]} for i in range(count)
    ]
    with store.turn(caller, session_id, NEVER) as turn:
        agent = make_agent(turn.session_manager, server, window, messages=messages)
        agent.conversation_manager.apply_management(agent)  # as the end of an invocation does
        turn.session_manager.sync_agent(agent)


def texts(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of each message; tool blocks are shown by kind."""
    shown = []
    for message in messages:
        parts = []
        for block in message["content"]:
            if "text" in block:
                parts.append(block["text"])
            else:
                parts.extend(sorted(block))
        shown.append((message["role"], " ".join(parts)))
    return shown


def history_texts(store: SessionStore, session_id: str, caller: str = CALLER) -> list[tuple[str, str]]:
    return texts([m.to_message() for m in store.history(caller, session_id, 0, 10_000, NEVER).messages])


def sent_texts(server: ModelServer, request: int = -1) -> list[tuple[str, str]]:
    """What the model received (OpenAI format), as (role, text)."""
    shown = []
    for message in server.requests[request]["messages"]:
        content = message.get("content")
        text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content or [])
        shown.append((message["role"], text))
    return shown
