"""make bench-store, part two: what the session list and the expiry sweep cost in S3 requests.

Prints the requests of a turn (first of a new session, a later one the same day, the first of a
new day), of a page of the list, and of the sweep over 10,000 sessions of which 100 are idle,
next to the sweep this store had before the list (it listed the whole store). moto in-process.
"""

import importlib.util
import os
import subprocess
import sys
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


def fill(store: SessionStore, s3: Any, sessions: int, idle: int, clock: Clock) -> datetime:
    """``idle`` sessions by real turns on day 0; the others as their objects look after a turn on day 40."""
    for n in range(idle):
        turn(store, f"idle-{n}", "hello")
    template = {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                for key in (o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="")["Contents"])}
    recent = int((clock.now + 40 * 86_400) * 1000)
    root = f"{store.settings.session_prefix.strip('/')}/"  # the store's keys are relative to its prefix

    def active(n: int) -> None:
        keys = SessionKeys.of(f"caller-{n % 1000}", f"active-{n}")
        for key, body in template.items():
            if "/session_idle-0/" in key:
                s3.put_object(Bucket=BUCKET, Key=root + keys.folder + key.split("/session_idle-0/", 1)[1], Body=body)
        entry = Entry(keys.session_id, recent, 2, recent, "hello")
        s3.put_object(Bucket=BUCKET, Key=root + entry.key(keys.segment), Body=b"{}")
        s3.put_object(Bucket=BUCKET, Key=root + marker(keys, day_of(recent)), Body=b"{}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(active, range(sessions - idle)))
    return datetime.fromtimestamp(clock.now, UTC) + timedelta(days=31)


def main() -> None:
    sessions, idle = (int(a) for a in (sys.argv[1:3] if len(sys.argv) > 2 else ("10000", "100")))
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
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in
                                                             s3.list_objects_v2(Bucket=BUCKET)["Contents"]]})
        while s3.list_objects_v2(Bucket=BUCKET).get("KeyCount"):
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in
                                                                 s3.list_objects_v2(Bucket=BUCKET)["Contents"]]})
        now = fill(store, s3, sessions, idle, clock)
        requests.take()
        deleted = store.expire_idle(now, NEVER)
        show(f"the sweep: {sessions:,} sessions, {len(deleted)} idle deleted", requests.take())
        for n in range(idle):  # the same idle sessions again, for the sweep from before the list
            turn(store, f"idle-{n}", "hello")
        requests.take()
        deleted = old_sweep()(store, now, NEVER)
        show(f"the sweep before the list ({BEFORE_THE_LIST}): {len(deleted)} idle deleted", requests.take())


if __name__ == "__main__":
    main()
