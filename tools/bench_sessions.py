"""make bench-store, part two: what the session list and the expiry sweep cost in S3 requests.

Prints the requests of a turn (first of a new session, a later one the same day, the first of a
new day), of a page of the list, and of the sweep over 10,000 and 20,000 sessions of which 100
are idle, next to the sweep this store had before the list (it listed the whole store), each in
a bucket of its own holding the same sessions. Fair to both: the idle sessions are written first
(real turns), then the active ones, so that each object's LastModified, which both sweeps check,
is really older or newer than the cutoff; the store's clock puts the active sessions' list entries
and day markers 40 days later (the new sweep reads only the markers of days up to the cutoff's).
moto in-process. ``python tools/bench_sessions.py [IDLE [SESSIONS...]]``.
"""

import importlib.util
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})

import boto3  # noqa: E402  (after the environment above)
from moto import mock_aws  # noqa: E402  (after the environment above)

from agent.aws_clients import AwsClients  # noqa: E402  (after the environment above)
from agent.deadline import Deadline  # noqa: E402  (after the environment above)
from agent.settings import Settings  # noqa: E402  (after the environment above)
from agent.store import SessionStore, open_store  # noqa: E402  (after the environment above)
from agent.store.keys import SessionKeys  # noqa: E402  (after the environment above)
from agent.store.session_list import Entry, day_of, marker  # noqa: E402  (after the environment above)

BUCKET = "bench-sessions"
CALLER = "bench-caller"
NEVER = Deadline.never()
BEFORE_THE_LIST = "16898f2"  # the sweep that listed the whole store


class Requests:
    def __init__(self, session: Any) -> None:
        self.counts: Counter[str] = Counter()
        session.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.counts.update([event_name.rsplit(".", 1)[-1]])

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()  # objects get the real LastModified: the sweep re-checks it

    def __call__(self) -> float:
        return self.now


def turn(store: SessionStore, session_id: str, text: str, caller: str = CALLER) -> None:
    """A turn's storage, as Strands' session manager writes it (no model needed)."""
    from strands import Agent
    from strands.models.litellm import LiteLLMModel

    model = LiteLLMModel(client_args={"api_key": "x", "api_base": "http://127.0.0.1:9/v1"}, model_id="openai/none")
    with store.turn(caller, session_id, NEVER) as opened:
        agent = Agent(model=model, session_manager=opened.session_manager, callback_handler=None)
        for role, said in (("user", text), ("assistant", f"Noted: {text}")):
            message = {"role": role, "content": [{"text": said}]}
            agent.messages.append(message)  # type: ignore[arg-type]
            opened.session_manager.append_message(message, agent)  # type: ignore[arg-type]
        opened.session_manager.sync_agent(agent)


def show(label: str, counts: Counter[str]) -> None:
    print(f"{label:<58} {sum(counts.values()):>6}  {dict(sorted(counts.items()))}")


def old_sweep() -> Any:
    source = subprocess.run(["git", "show", f"{BEFORE_THE_LIST}:src/agent/store/expiry.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("agent.store.expiry_before_the_list", loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    module.__package__ = "agent.store"
    exec(compile(source, "expiry_before_the_list.py", "exec"), module.__dict__)  # noqa: S102  (the bench's own repo)
    return module.expire_idle


def sweep_store(session: Any, s3: Any, bucket: str, clock: Clock) -> SessionStore:
    s3.create_bucket(Bucket=bucket)
    settings = Settings(session_bucket=bucket)
    return SessionStore(open_store(settings, AwsClients(session)).objects, settings, clock=clock)


def fill(stores: tuple[SessionStore, SessionStore], s3: Any, sessions: int, idle: int,
         clock: Clock) -> datetime:
    """``idle`` sessions by real turns; then the others, copies of one as its objects look after a
    turn (in the bucket of the sweep before the list: its folder only). The sweeps' ``now``."""
    clock.now = time.time()
    for store in stores:
        for n in range(idle):
            turn(store, f"idle-{n}", "hello")
    time.sleep(1 - time.time() % 1 + 0.01)  # S3 keeps LastModified to the second: the next splits them
    split = datetime.now(UTC).replace(microsecond=0)  # after each idle LastModified, not after an active one
    new, old = (store.settings.session_bucket for store in stores)
    template = {o["Key"]: s3.get_object(Bucket=new, Key=o["Key"])["Body"].read()
                for o in s3.list_objects_v2(Bucket=new, Prefix="")["Contents"] if "/session_idle-0/" in o["Key"]}
    recent = int((clock.now + 40 * 86_400) * 1000)
    root = f"{stores[0].settings.session_prefix.strip('/')}/"  # the store's keys are relative to its prefix

    def active(n: int) -> None:
        keys = SessionKeys.of(f"caller-{n % 1000}", f"active-{n}")
        for key, body in template.items():
            for bucket in (new, old):
                s3.put_object(Bucket=bucket, Key=root + keys.folder + key.split("/session_idle-0/", 1)[1], Body=body)
        entry = Entry(keys.session_id, recent, 2, recent, "hello")
        s3.put_object(Bucket=new, Key=root + entry.key(keys.segment), Body=b"{}")
        s3.put_object(Bucket=new, Key=root + marker(keys, day_of(recent)), Body=b"{}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(active, range(sessions - idle)))
    return split + timedelta(days=stores[0].settings.session_ttl_days)


def compare_sweeps(session: Any, s3: Any, requests: Requests, sessions: int, idle: int) -> tuple[int, int]:
    clock = Clock()
    stores = (sweep_store(session, s3, f"sweep-new-{sessions}", clock),
              sweep_store(session, s3, f"sweep-old-{sessions}", clock))
    now = fill(stores, s3, sessions, idle, clock)
    requests.take()
    deleted = stores[0].expire_idle(now, NEVER)
    new = requests.take()
    show(f"the sweep: {sessions:,} sessions, {len(deleted)} idle deleted", new)
    deleted = old_sweep()(stores[1], now, NEVER)
    old = requests.take()
    show(f"the sweep before the list ({BEFORE_THE_LIST}): {len(deleted)} deleted", old)
    for label, counts, lists in (("new", new, new["ListObjectsV2"] - idle), ("old", old, old["ListObjectsV2"] - idle)):
        per_idle = (sum(counts.values()) - lists) / idle
        print(f"  {label}: {lists} LISTs besides one per idle session; {per_idle:.2f} requests per idle session"
              " (all but those LISTs)")
    return sum(new.values()), sum(old.values())


def main() -> None:
    idle = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    counts = [int(a) for a in sys.argv[2:]] or [10_000, 20_000]
    with mock_aws():
        session = boto3.session.Session()
        requests, s3 = Requests(session), boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        clock = Clock()
        store = SessionStore(open_store(Settings(session_bucket=BUCKET), AwsClients(session)).objects,
                             Settings(session_bucket=BUCKET), clock=clock)
        print("S3 requests (moto)                                           total  by operation")
        requests.take()
        turn(store, "a", "first")
        show("a new session's first turn (was 8)", requests.take())
        turn(store, "a", "second")
        show("a later turn, the same day (was 7)", requests.take())
        clock.now += 86_400
        turn(store, "a", "the next day")
        show("the first turn of a day (was 7)", requests.take())
        for n in range(120):
            turn(store, f"page-{n}", f"conversation {n}")
        store.list_sessions(CALLER, 50, None, NEVER)  # the caller's first list checks for older sessions
        requests.take()
        page = store.list_sessions(CALLER, 50, None, NEVER)
        show("a page of the list (50 of 121 sessions)", requests.take())
        store.list_sessions(CALLER, 50, page.next_cursor, NEVER)
        show("the next page", requests.take())
        totals = {sessions: compare_sweeps(session, s3, requests, sessions, idle) for sessions in counts}
        for fewer, more in zip(counts, counts[1:], strict=False):
            grew = [totals[more][n] - totals[fewer][n] for n in (0, 1)]
            print(f"{more - fewer:,} more sessions, the same {idle} idle: the sweep +{grew[0]} requests, "
                  f"the sweep before the list +{grew[1]}")


if __name__ == "__main__":
    main()
