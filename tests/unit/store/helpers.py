"""Helpers for the store tests: a real Strands Agent on LiteLLM, a store per backend, what is stored."""

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from strands import Agent, ModelRetryStrategy, tool
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.models.litellm import LiteLLMModel

from agent.settings import Settings
from agent.store import SessionStore, open_store
from model_server import ModelServer

BUCKET = "test-sessions"  # the bucket tests/conftest.py's s3_bucket fixture creates
CALLER = "arn:aws:sts::123456789012:assumed-role/ChatRole/alice"


@tool
def lookup_weather(city: str) -> str:
    """Report the weather for a city."""
    return f"It is sunny in {city}."


def make_store(kind: str, tmp_path: Path, **settings: Any) -> SessionStore:
    """A store on the moto server's bucket (kind "s3") or under tmp_path (kind "files")."""
    if kind == "s3":
        return open_store(Settings(session_bucket=BUCKET, **settings))
    return open_store(Settings(session_dir=str(tmp_path / "sessions"), **settings))


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
    with store.turn(caller, session_id) as session_manager:
        result = make_agent(session_manager, server, window)(text)
    return str(result).strip()


def seed(store: SessionStore, session_id: str, count: int, server: ModelServer, window: int = 40,
         caller: str = CALLER) -> None:
    """A session with ``count`` stored messages, written through the session manager's own hooks."""
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"message {i}"}]} for i in range(count)
    ]
    with store.turn(caller, session_id) as session_manager:
        agent = make_agent(session_manager, server, window, messages=messages)
        agent.conversation_manager.apply_management(agent)  # as the end of an invocation does
        session_manager.sync_agent(agent)


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
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
    return texts([m.to_message() for m in store.history(caller, session_id)])


def stored(store: SessionStore) -> dict[str, bytes]:
    """Every stored object or file (key relative to the store's root) with its content."""
    backend = store.objects
    if hasattr(backend, "bucket"):
        base = f"{backend.prefix}/" if backend.prefix else ""
        found = {}
        for page in backend.client.get_paginator("list_objects_v2").paginate(Bucket=backend.bucket, Prefix=base):
            for item in page.get("Contents", []):
                body = backend.client.get_object(Bucket=backend.bucket, Key=item["Key"])["Body"].read()
                found[item["Key"][len(base) :]] = body
        return found
    root = Path(backend.root)
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)).replace(os.sep, "/"): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name != ".lock"
    }


def stored_json(store: SessionStore, suffix: str) -> dict[str, Any]:
    (content,) = [body for key, body in stored(store).items() if key.endswith(suffix)]
    return json.loads(content)


class S3Requests:
    """Counts the HTTP requests a boto3 client sends, by operation (retries included)."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **kwargs: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def take(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts
