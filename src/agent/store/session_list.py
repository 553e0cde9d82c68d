"""The session list: a caller's sessions, most recent activity first, a page in at most 2 requests.

    <caller>/sessions/<newest first>~<session_id>/<message count>~<created>~<default title>
                                                          one entry per session, its data in its key
    <caller>/titles.json                                  titles set by a rename: {"titles": {id: title}}
    .activity/<YYYY-MM-DD>/<caller>/<session_id>          a session was active that day (the sweep's markers)

Why this layout:

- A page must cost at most 2 requests whatever the caller's session count, and S3 returns no
  bodies with a LIST. So an entry keeps what the list shows in its key: "<newest first>" is
  9999999999999 minus the last turn's time in ms (LIST order is recency order), then the message
  count, the creation time and the default title (base64url, at most TITLE_KEY_BYTES). A page is
  one LIST plus one GET of titles.json (renamed titles are up to 200 characters: no key holds
  them). A turn never touches titles.json.
- One entry per session, one writer per session: a turn (which holds the session's lease) writes
  its new entry and deletes the previous one, whose key agent.json names ("_listing", written in
  the same commit). Concurrent turns in different sessions of one caller write different keys, so
  nothing needs a compare-and-swap and no update is lost. A turn that died between its commit and
  its listing leaves the old entry; the reader keeps only the first entry of a session it sees.
- Markers: a turn whose previous activity was on another day writes today's marker (one PUT,
  with the entry, in the same round trip); the sweep reads the markers of the days that just
  expired, not the bucket (see expiry.py).
- Renames are rare and not turns: titles.json is changed by compare-and-swap (documents.py).
"""

import base64
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidRequest
from .keys import SESSION_ID, SessionKeys, caller_segment

ENTRIES = "sessions/"
ACTIVITY = ".activity/"
TITLES = "titles"  # the caller document <caller>/titles.json
LISTING = "_listing"  # in agent.json: the key of the session's current entry
NEWEST = 9_999_999_999_999  # ms; years past 2286 would need a 14th digit
TITLE_CHARS = 80  # a default title: the first user message, shortened on a word boundary
TITLE_KEY_BYTES = 150  # base64url: 200 characters, so an entry's last segment fits a file name (255)
MAX_TITLE_CHARS = 200
MAX_PAGE = 200  # one LIST (1,000 keys) always holds a page and the one entry after it


@dataclass(frozen=True)
class Entry:
    """One session as the list shows it."""

    session_id: str
    updated_ms: int
    message_count: int
    created_ms: int
    default_title: str

    def key(self, segment: str) -> str:
        title = base64.urlsafe_b64encode(self.default_title.encode()).decode().rstrip("=")
        return (f"{segment}/{ENTRIES}{NEWEST - self.updated_ms:013d}~{self.session_id}/"
                f"{self.message_count}~{self.created_ms}~{title}")

    def summary(self, titles: dict[str, str]) -> dict[str, Any]:
        return {"session_id": self.session_id, "title": titles.get(self.session_id) or self.default_title
                or self.session_id, "created_at": iso(self.created_ms), "updated_at": iso(self.updated_ms),
                "message_count": self.message_count}


def parse_entry(key: str) -> Entry | None:
    """The entry an entry's key (relative to the store's root) holds; None for anything else."""
    try:
        _, rest = key.split(f"/{ENTRIES}", 1)
        first, second = rest.split("/")
        newest, session_id = first.split("~", 1)
        count, created, title = second.split("~")
        text = base64.urlsafe_b64decode(title + "=" * (-len(title) % 4)).decode()
        if not SESSION_ID.fullmatch(session_id):
            return None
        return Entry(session_id, NEWEST - int(newest), int(count), int(created), text)
    except (ValueError, UnicodeDecodeError):
        return None


def entries_prefix(caller: str) -> str:
    return f"{caller_segment(caller)}/{ENTRIES}"


def titles_key(segment: str) -> str:
    return f"{segment}/{TITLES}.json"


def marker(keys: SessionKeys, day: str) -> str:
    return f"{ACTIVITY}{day}/{keys.segment}/{keys.session_id}"


def parse_marker(key: str) -> SessionKeys | None:
    parts = key.removeprefix(ACTIVITY).split("/")
    if not key.startswith(ACTIVITY) or len(parts) != 3 or not SESSION_ID.fullmatch(parts[2]):
        return None
    return SessionKeys(parts[1], parts[2])


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def ms_of(value: Any, default: int) -> int:
    """Strands' ISO timestamps (session.json's created_at) in ms."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)
    except ValueError:
        return default


def default_title(text: str) -> str:
    """The first user message on one line, shortened to ~80 characters on a word boundary."""
    line = " ".join(text.split())
    if len(line) > TITLE_CHARS:
        cut = line[: TITLE_CHARS - 1]
        cut = cut.rsplit(" ", 1)[0] if " " in cut[TITLE_CHARS // 2 :] else cut
        line = cut.rstrip(" ,.;:") + "…"
    while len(line.encode()) > TITLE_KEY_BYTES:  # wide characters: fewer of them fit a key
        line = line[:-2] + "…"
    return line


def first_user_text(message: dict[str, Any] | None) -> str:
    """The text of a stored message (SessionMessage.to_dict()) if it is the user's."""
    inner = (message or {}).get("message") or {}
    if inner.get("role") != "user":
        return ""
    return " ".join(str(part["text"]) for part in inner.get("content") or [] if isinstance(part, dict)
                    and isinstance(part.get("text"), str))


def checked_title(title: Any) -> str:
    """1-200 characters of text: no control characters, not only spaces."""
    if not isinstance(title, str) or not title.strip():
        raise InvalidRequest("title must be 1-200 characters of text.")
    title = title.strip()
    if len(title) > MAX_TITLE_CHARS or any(unicodedata.category(c) in ("Cc", "Cs") for c in title):
        raise InvalidRequest("title must be 1-200 characters of text (no control characters).")
    return title


def encode_list_cursor(caller: str, after: str) -> str:
    raw = json.dumps({"c": _caller_tag(caller), "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_list_cursor(cursor: str, caller: str) -> str:
    """The entry key (relative to the caller's entries) a page resumes after."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, mine = data["a"], data["c"] == _caller_tag(caller)
    except (ValueError, TypeError, KeyError):
        raise InvalidRequest("The cursor is not valid; use the next_cursor of a previous page.") from None
    if not mine or not isinstance(after, str) or parse_entry(f"x/{ENTRIES}{after}") is None:
        raise InvalidRequest("The cursor is not valid for your sessions; use the next_cursor of a previous page.")
    return after


def _caller_tag(caller: str) -> str:
    return hashlib.sha256(caller.encode("utf-8", "surrogatepass")).hexdigest()[:16]
