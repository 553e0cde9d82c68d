"""Storage cost of one turn: this store vs Strands' stock S3SessionManager, on moto's S3 server.

For histories of 10, 100 and 400 stored messages it prints the S3 requests of one turn and the
median storage time of a turn (load the session into an Agent, store the user message, the reply
and the agent state), for both managers in the same run, and their time ratio. No model is
called: the turn is driven through the Agent's own hooks, exactly as an invocation fires them.

moto runs as a separate process on 127.0.0.1, so the server's work does not share our GIL.
Both managers use clients of the same AwsClients (the stock one gets the default tier's
client; it would otherwise build a client per turn, which is not storage time).

"nw" rows: the same history with no window (every message restored, so the snapshot holds them all).

A second table, per history policy (summarize, window) and with caller memory on and off: model
calls, tokens sent to the model and S3 requests per turn, over a whole conversation run through the
real turn (Conversations.chat, LiteLLM over HTTP to the test model). Tokens are estimated as a
quarter of the characters of the messages sent, whatever the model's tokenizer.

Usage: python tools/bench_store.py [--turns 15] [--window 40] [--histories 10,100,400] [--unwindowed 400]
                                   [--policy-turns 40] [--policy-window 10]
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# moto only: never a real account
os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402  (after the environment above)
from moto_process import moto_process  # noqa: E402  (tools/, on the path as the script's folder)
from strands import Agent  # noqa: E402  (after the environment above)
from strands.agent.conversation_manager import SlidingWindowConversationManager  # noqa: E402  (after the environment above)
from strands.hooks import AfterInvocationEvent, MessageAddedEvent  # noqa: E402  (after the environment above)
from strands.models.litellm import LiteLLMModel  # noqa: E402  (after the environment above)
from strands.session.s3_session_manager import S3SessionManager  # noqa: E402  (after the environment above)
from strands.types.content import Message, Role  # noqa: E402  (after the environment above)

from agent.aws_clients import AwsClients  # noqa: E402  (after the environment above)
from agent.deadline import Deadline  # noqa: E402  (after the environment above)
from agent.settings import Settings  # noqa: E402  (after the environment above)
from agent.store import SessionStore, open_store  # noqa: E402  (after the environment above)
from agent.store.keys import caller_segment  # noqa: E402  (after the environment above)

BUCKET = "bench-sessions"
CALLER = "arn:aws:sts::123456789012:assumed-role/ChatRole/bench"
# Never called: the turn is driven through hooks. An Agent needs a model object all the same.
MODEL = LiteLLMModel(client_args={"api_key": "unused", "api_base": "http://127.0.0.1:9/v1"}, model_id="openai/none")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 endpoint URL, in a process of its own."""
    with moto_process() as port:
        yield f"http://127.0.0.1:{port}"


class SharedClient:
    """Stands in for boto3.Session in S3SessionManager(boto_session=...): hands out our one client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, *args: Any, **kwargs: Any) -> Any:
        return self._client


class Requests:
    """HTTP requests the session's clients send (every tier's: registered before any is made), by S3
    operation."""

    def __init__(self, session: Any) -> None:
        self.counts: Counter[str] = Counter()
        session.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.counts.update([event_name.split(".")[-1]])

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def messages(count: int, start: int = 0) -> list[Message]:
    roles: tuple[Role, Role] = ("user", "assistant")
    return [{"role": roles[i % 2], "content": [{"text": f"message {i} " + "lorem ipsum " * 20}]}
            for i in range(start, start + count)]


def make_agent(session_manager: Any, window: int, history: list[Message] | None = None) -> Agent:
    return Agent(
        model=MODEL,
        session_manager=session_manager,
        conversation_manager=SlidingWindowConversationManager(window_size=window),
        messages=history,
        callback_handler=None,
    )


_LOOP = asyncio.new_event_loop()


def fire(agent: Agent, event: Any) -> None:
    """Invoke the agent's hook callbacks for ``event`` (some are async), as an invocation does."""
    _LOOP.run_until_complete(agent.hooks.invoke_callbacks_async(event))


def drive_turn(agent: Agent, number: int) -> None:
    """What an invocation stores: each new message through MessageAddedEvent, then AfterInvocationEvent."""
    for message in messages(2, start=number):
        agent.messages.append(message)
        fire(agent, MessageAddedEvent(agent=agent, message=message))
    agent.conversation_manager.apply_management(agent)
    fire(agent, AfterInvocationEvent(agent=agent, invocation_state={}))


def seed(session_manager: Any, count: int, window: int) -> None:
    """A session holding ``count`` messages, the window already applied (as after many turns)."""
    agent = make_agent(session_manager, window, messages(count))
    agent.conversation_manager.apply_management(agent)
    fire(agent, AfterInvocationEvent(agent=agent, invocation_state={}))


def stock_turns(client: Any, session_id: str, history: int, window: int, turns: int) -> Iterator[float]:
    def manager() -> S3SessionManager:
        shared: Any = SharedClient(client)  # stands in for the boto3 Session the manager wants
        return S3SessionManager(session_id, bucket=BUCKET, prefix=f"stock/{caller_segment(CALLER)}",
                                boto_session=shared)

    seed(manager(), history, window)
    for number in range(turns):
        started = time.perf_counter()
        drive_turn(make_agent(manager(), window), history + 2 * number)
        yield time.perf_counter() - started


def store_turns(store: SessionStore, session_id: str, history: int, window: int, turns: int) -> Iterator[float]:
    with store.turn(CALLER, session_id, Deadline.never()) as turn:
        seed(turn.session_manager, history, window)
    for number in range(turns):
        started = time.perf_counter()
        with store.turn(CALLER, session_id, Deadline.after(30)) as turn:  # as an invocation bounds it
            drive_turn(make_agent(turn.session_manager, window), history + 2 * number)
        yield time.perf_counter() - started


def snapshot_turns(client: Any, session_id: str, history: int, window: int, turns: int) -> Iterator[float]:
    """Strands' SnapshotSessionManager on S3Storage: one blob per agent (an alternative we measured)."""
    from strands.session.snapshot_session_manager import SnapshotSessionManager
    from strands.storage.s3_storage import S3Storage

    storage = S3Storage(BUCKET, prefix=f"snapshot/{caller_segment(CALLER)}", boto_session=SharedClient(client))

    def manager() -> SnapshotSessionManager:
        return SnapshotSessionManager(session_id, storage=storage)

    seed(manager(), history, window)
    for number in range(turns):
        started = time.perf_counter()
        drive_turn(make_agent(manager(), window), history + 2 * number)
        yield time.perf_counter() - started


def measure(runs: dict[str, Iterator[float]], requests: Requests) -> dict[str, tuple[float, Counter[str]]]:
    """Median seconds per turn and the requests of one turn, for each run.

    The runs take turns (one turn each, round after round), so a busy machine slows them alike.
    The first turn of each is a warm-up.
    """
    one_turn = {}
    for label, turns in runs.items():
        next(turns)
        requests.take()
        next(turns)
        one_turn[label] = requests.take()
    times: dict[str, list[float]] = {label: [] for label in runs}
    while True:
        try:
            for label, turns in runs.items():
                times[label].append(next(turns))
        except StopIteration:  # every run has the same number of turns
            break
    return {label: (statistics.median(times[label]), one_turn[label]) for label in runs}


def describe(counts: Counter[str]) -> str:
    short = {"GetObject": "GET", "PutObject": "PUT", "DeleteObject": "DEL", "ListObjectsV2": "LIST",
             "HeadObject": "HEAD"}
    return " ".join(f"{n} {short.get(op, op)}" for op, n in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=15, help="measured turns per history (plus two warm-ups)")
    parser.add_argument("--window", type=int, default=40, help="HISTORY_WINDOW of both agents")
    parser.add_argument("--histories", default="10,100,400")
    parser.add_argument("--unwindowed", type=int, default=400,
                        help="also this history with no window (every message restored); 0 to skip")
    parser.add_argument("--with-snapshot-manager", action="store_true",
                        help="also measure Strands' SnapshotSessionManager with S3Storage (an alternative)")
    parser.add_argument("--policy-turns", type=int, default=40, help="turns of the per-policy conversation; 0 to skip")
    parser.add_argument("--policy-window", type=int, default=10, help="HISTORY_WINDOW of the per-policy conversation")
    args = parser.parse_args()

    with moto_server() as endpoint:
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint  # as a deployment would point boto3 elsewhere
        session = boto3.session.Session()
        requests = Requests(session)
        clients = AwsClients(session)  # the store's, as the composition root makes it
        client = clients.client("s3")  # the default tier's: the stock manager gets the same one
        client.create_bucket(Bucket=BUCKET)
        store = open_store(Settings(session_bucket=BUCKET, session_prefix="store"), clients)
        print(f"S3 storage per turn (moto server on 127.0.0.1), HISTORY_WINDOW={args.window}, "
              f"median of {args.turns} turns\n")
        header = f"{'history':>7} | {'store':<16} | {'requests per turn':<40} | {'total':>5} | {'median ms':>9}"
        print(header)
        print("-" * len(header))
        results = []
        cases = [(int(h), args.window) for h in args.histories.split(",")]
        if args.unwindowed:
            cases.append((args.unwindowed, None))
        for history, window in cases:
            session_id = f"history-{history}-{window or 'all'}"
            window_size = window or 10 * history  # no window: the conversation manager never trims
            label = f"{history}" if window else f"{history} nw"
            runs = {
                "stock S3": stock_turns(client, session_id, history, window_size, args.turns + 2),
                "this store": store_turns(store, session_id, history, window_size, args.turns + 2),
            }
            if args.with_snapshot_manager:
                runs["Strands snapshot"] = snapshot_turns(client, session_id, history, window_size, args.turns + 2)
            timings = {}
            for name, (seconds, counts) in measure(runs, requests).items():
                timings[name] = seconds
                print(f"{label:>7} | {name:<16} | {describe(counts):<40} | {sum(counts.values()):>5} | "
                      f"{seconds * 1000:>9.1f}")
            ratio = timings["this store"] / timings["stock S3"]
            if window:
                results.append((history, ratio))
            print(f"{'':>7} | {'ratio':<16} | {'this store / stock time':<40} | {'':>5} | {ratio:>9.2f}")
        print()
        target = dict(results).get(400)
        if target is not None:
            verdict = "meets" if target <= 0.2 else "MISSES"
            print(f"At 400 messages this store takes {target:.2f} of the stock time ({verdict} the target of <= 0.20).")

        if args.policy_turns:
            print()
            policy_costs(clients, requests, args.policy_turns, args.policy_window)


def policy_costs(clients: AwsClients, requests: Requests, turns: int, window: int) -> None:
    """Per turn, for each policy: model calls (summaries included), tokens sent, S3 requests."""
    sys.path.insert(0, str(ROOT / "tools"))
    from model_server import ModelServer

    from agent.conversation import ChatRequest, Conversations
    from agent.model import ModelProvider

    print(f"Per turn over a {turns}-turn conversation, HISTORY_WINDOW={window} (test model, moto S3)\n")
    header = (f"{'policy':<10} | {'memory':<6} | {'model calls':>11} | {'of which summaries':>18} | "
              f"{'tokens sent':>11} | {'S3 requests':>11} | {'S3 GET':>6}")
    print(header)
    print("-" * len(header))
    for policy in ("window", "summarize"):
        for memory in (False, True):
            with ModelServer() as model:
                settings = Settings(session_bucket=BUCKET, session_prefix=f"policy-{policy}-{memory}",
                                    history_window=window, history_policy=policy, memory=memory,
                                    model_id="openai/test-model", model_api_base=model.base_url, model_api_key="k")
                conversations = Conversations(settings, open_store(settings, clients), ModelProvider(settings, clients))
                requests.take()
                for number in range(turns):
                    text = "Hey, my name is Arindam." if number == 0 else f"I like topic number {number}."
                    conversations.chat(ChatRequest(CALLER, "policy", text), Deadline.after(30))
                s3 = requests.take()
                calls = len(model.requests)
                summaries = sum("conversation summarizer" in str(r["messages"][0].get("content", "")).lower()
                                for r in model.requests)
                characters = sum(len(json.dumps(r["messages"], ensure_ascii=False)) for r in model.requests)
            print(f"{policy:<10} | {'on' if memory else 'off':<6} | {calls / turns:>11.2f} | "
                  f"{summaries / turns:>18.2f} | {characters / 4 / turns:>11.0f} | {sum(s3.values()) / turns:>11.2f} | "
                  f"{s3['GetObject'] / turns:>6.2f}")


if __name__ == "__main__":
    main()
