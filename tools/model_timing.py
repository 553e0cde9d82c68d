"""The test model, noting when each streamed word left it: for measuring how long a word takes to
reach a WebSocket client (tools/bench_stream.py, tests/twin).

    with TimedModel(word_delay=0.02) as model:
        ...
        model.word_times[-1]   # perf_counter() of each word of the last streamed reply, in order
        model.request_times    # perf_counter() of each completion request's arrival (tools/bench_latency.py)
        model.reply_ends       # ... and of its answer's last byte written, in the order answers ended
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from model_server import ModelServer, Reply


class TimedModel(ModelServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.word_times: list[list[float]] = []  # one list per streamed reply, in the order they began
        self.request_times: list[float] = []
        self.reply_ends: list[float] = []
        self._times_lock = threading.Lock()

    def first_words(self) -> list[float]:
        return [times[0] for times in self.word_times if times]

    def clear(self) -> None:
        """Forget scripted replies and pauses a test left behind (a shared model between tests)."""
        with self._lock:
            self._queue.clear()
        self.delay = 0.0

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()
        model = self

        class Timed(base):  # type: ignore[misc, valid-type]  # base: made at run time
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                with model._times_lock:
                    model.request_times.append(time.perf_counter())
                try:
                    super().do_POST()
                finally:  # the handler's writes are unbuffered: the last byte has left
                    with model._times_lock:
                        model.reply_ends.append(time.perf_counter())

            def send_stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.times: list[float] = []
                with model._times_lock:
                    model.word_times.append(self.times)
                super().send_stream(body, reply)

            def write_chunk(self, data: bytes) -> None:
                super().write_chunk(data)
                if hasattr(self, "times") and _has_text(data):
                    self.times.append(time.perf_counter())

        return Timed


def _has_text(chunk: bytes) -> bool:
    """Whether a server-sent event carries a word of the reply."""
    if not chunk.startswith(b"data: {"):
        return False
    try:
        event = json.loads(chunk[6:])
    except ValueError:
        return False
    return any((choice.get("delta") or {}).get("content") for choice in event.get("choices") or [])
