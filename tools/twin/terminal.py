"""What the twin prints: one line per request, WebSocket event and queued turn, start-up facts,
and problems as one-line summaries (never a traceback).

    10:03:04  POST /sessions/abc/messages  200  1.24 s  session=abc
    10:03:05  WS sendMessage Lx3k…=  200  35 ms  session=abc
    10:03:09  turn t_1a2b3c4d… done  4.5 s  session=abc
"""

import logging
import sys
import time
from typing import TextIO


class Terminal:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def line(self, text: str) -> None:
        out = self.out or sys.stdout
        try:
            out.write(f"{time.strftime('%H:%M:%S')}  {text}\n")
            out.flush()
        except (OSError, ValueError):  # a closed terminal must not stop the twin
            pass

    def request(self, what: str, status: int | str, seconds: float, session: str | None = None,
                note: str = "") -> None:
        self.line("  ".join(part for part in (what, str(status), duration(seconds),
                                              f"session={session}" if session else "", note) if part))


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def short_turn_id(turn_id: str | None) -> str:
    return f"{turn_id[:10]}…" if turn_id and len(turn_id) > 10 else turn_id or "?"


class OneLineErrors(logging.Handler):
    """aiohttp's server logs a malformed request (which it answers 400 itself) with a traceback;
    the terminal gets one line instead."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(logging.INFO)
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        status = getattr(error, "code", None)
        message = getattr(error, "message", None) or (str(error) if error else record.getMessage())
        # aiohttp's parser errors draw a caret under the offending bytes on a line of their own
        words = " ".join(line.strip() for line in str(message).splitlines() if line.strip(" ^"))
        if isinstance(status, int):
            self.terminal.line(f"{status}  malformed request: {words[:200]}")
        else:
            self.terminal.line(f"{record.levelname.lower()}: {words[:200]}")


def quiet_aiohttp_logs(terminal: Terminal) -> None:
    for name in ("aiohttp.server", "aiohttp.web", "aiohttp.access"):
        logger = logging.getLogger(name)
        logger.handlers = [OneLineErrors(terminal)] if name != "aiohttp.access" else []
        logger.propagate = False
