"""`make bench-stream`: how a streamed reply reaches a WebSocket client on the twin (`make dev`).

The test model streams word by word (a pause between words); the reply goes model → LiteLLM →
Strands → the handler's frames → the management API (the twin's @connections) → the client.
Prints, without asserting anything:

(a) the time from the model writing its first word to the client receiving the first delta,
    over several turns (median, 90th percentile, max; the target is 100 ms at most);
(b) frames received and management-API calls made per reply, for an ordinary reply;
(c) the same for a long reply (2,000 words).

Everything runs in this process but the functions' containers, so the model's clock and the
client's are the same clock.
"""

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_server import Reply  # noqa: E402
from model_timing import TimedModel  # noqa: E402

from twin.config import Config  # noqa: E402
from twin.server import Twin, TwinThread  # noqa: E402
from twin.terminal import Terminal  # noqa: E402


@dataclass
class Turn:
    words: int
    seconds: float
    frames: int
    deltas: int
    calls: int
    first_delta_after_first_word: float


async def one_turn(twin: Twin, model: TimedModel, text: str, word_delay: float) -> Turn:
    model.queue(Reply.say(text, word_delay=word_delay))
    streams_before = len(model.word_times)
    known = set(twin.connections.calls)
    frames, first_delta = [], None
    async with aiohttp.ClientSession() as client, client.ws_connect(twin.ws_url, max_msg_size=0) as ws:
        started = time.perf_counter()
        await ws.send_str(json.dumps({"action": "sendMessage", "session_id": f"bench_{uuid.uuid4().hex[:12]}",
                                      "message": "Stream something."}))
        while True:
            message = await ws.receive(timeout=600)
            frame = json.loads(message.data)
            frames.append(frame)
            if frame["type"] == "delta" and first_delta is None:
                first_delta = time.perf_counter()
            if frame["type"] in ("reply", "error"):
                break
        seconds = time.perf_counter() - started
    if frames[-1]["type"] == "error":
        raise SystemExit(f"the turn failed: {frames[-1]}")
    connection_id, = set(twin.connections.calls) - known
    first_word = model.word_times[streams_before][0]
    return Turn(words=len(text.split()), seconds=seconds, frames=len(frames),
                deltas=sum(f["type"] == "delta" for f in frames), calls=twin.connections.calls[connection_id].posts,
                first_delta_after_first_word=(first_delta or first_word) - first_word)


def text_of(words: int) -> str:
    return " ".join(f"word{n}" for n in range(words))


async def bench(twin: Twin, model: TimedModel, args: argparse.Namespace) -> None:
    for _ in range(twin.config.turn_workers):  # each container's first turn imports what it lazily needs
        await one_turn(twin, model, text_of(5), 0.0)
    latency = [await one_turn(twin, model, text_of(10), args.word_delay) for _ in range(args.turns)]
    ordinary = [await one_turn(twin, model, text_of(args.words), args.word_delay) for _ in range(3)]
    long = await one_turn(twin, model, text_of(args.long_words), args.word_delay)

    ms = sorted(t.first_delta_after_first_word * 1000 for t in latency)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    print(f"\nWebSocket turns on the twin; the test model streams one word every {args.word_delay * 1000:g} ms\n")
    print(f"(a) model's first word -> client's first delta, {len(ms)} turns: median {statistics.median(ms):.1f} ms, "
          f"p90 {p90:.1f} ms, max {ms[-1]:.1f} ms (target <= 100 ms)\n")
    print(f"{'':4}{'reply':<22}{'words':>7}{'time':>9}{'frames':>8}{'deltas':>8}{'API calls':>11}{'calls/s':>9}")
    for label, turn in (("(b)", _mean(ordinary)), ("(c)", long)):
        name = "ordinary" if label == "(b)" else "long"
        print(f"{label:<4}{name:<22}{turn.words:>7}{turn.seconds:>8.1f}s{turn.frames:>8}{turn.deltas:>8}"
              f"{turn.calls:>11}{turn.calls / turn.seconds:>9.1f}")
    print("\nframes = accepted + deltas + reply as the client received them; API calls = the function's "
          "POST @connections for the connection\n(b) is the mean of 3 replies.")


def _mean(turns: list[Turn]) -> Turn:
    return Turn(words=turns[0].words, seconds=statistics.mean(t.seconds for t in turns),
                frames=round(statistics.mean(t.frames for t in turns)),
                deltas=round(statistics.mean(t.deltas for t in turns)),
                calls=round(statistics.mean(t.calls for t in turns)), first_delta_after_first_word=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="turns for (a), default 10")
    parser.add_argument("--words", type=int, default=50, help="words of an ordinary reply (b), default 50")
    parser.add_argument("--long-words", type=int, default=2000, help="words of a long reply (c), default 2000")
    parser.add_argument("--word-delay", type=float, default=0.02, help="seconds between words, default 0.02")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    model = TimedModel()  # (its __enter__ is typed as the base class's)
    with tempfile.TemporaryDirectory() as sessions, model:
        env = {**os.environ, "MODEL_ID": "openai/test-model", "MODEL_API_BASE": model.base_url, "MODEL_API_KEY": "x",
               "SESSION_DIR": sessions, "SESSION_BUCKET": "", "LOG_LEVEL": "WARNING"}
        print("starting the twin (the function's init takes a few seconds)...", flush=True)
        config = Config(port=0, workers=2, turn_workers=2, model_check=False)
        with TwinThread(config, env, Terminal(io.StringIO())) as twin:
            asyncio.run(bench(twin, model, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
