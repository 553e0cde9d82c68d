"""The file store (the local twin): Strands' FileSessionManager made atomic per turn.

Layout (Strands' own under a per-caller folder; the lease sits beside the session folder)::

    <session_dir>/<caller>/session_<id>.lease
    <session_dir>/<caller>/session_<id>/session.json
    <session_dir>/<caller>/session_<id>/agents/agent_default/agent.json
    <session_dir>/<caller>/session_<id>/agents/agent_default/messages/message_<n>.json
"""

import os
import shutil
from datetime import datetime, timezone
from typing import Iterator

from strands.session.file_session_manager import MESSAGE_PREFIX, FileSessionManager

from .atomic import AtomicTurn, Doc
from .lease import FileLeases
from .naming import SessionName, parse_entry


class FileTurnSessionManager(AtomicTurn, FileSessionManager):
    """FileSessionManager whose writes land together at the end of a turn (see atomic.py)."""

    def __init__(
        self, session_id: str, *, storage_dir: str, open_session: bool = True, agent_id: str | None = None
    ) -> None:
        # Not FileSessionManager.__init__: it creates the folder at once, and a failed turn must
        # leave nothing behind; folders are made at commit (see _prepare).
        self.storage_dir = storage_dir
        self._start(session_id, open_session, agent_id)

    def _session_key(self, session_id: str) -> str:
        return os.path.join(self._get_session_path(session_id), "session.json")

    def _agent_key(self, session_id: str, agent_id: str) -> str:
        return os.path.join(self._get_agent_path(session_id, agent_id), "agent.json")

    def _load(self, key: str) -> Doc | None:
        return self._read_file(key) if os.path.lexists(key) else None

    def _save(self, key: str, data: Doc) -> None:
        self._write_file(key, data)

    def _prepare(self, session_id: str, agent_id: str | None) -> None:
        # The folders FileSessionManager.create_session / create_agent make (its list_messages needs them).
        session_dir = self._get_session_path(session_id)
        for folder in ("agents", "multi_agents"):
            os.makedirs(os.path.join(session_dir, folder), mode=0o700, exist_ok=True)
        if agent_id is not None:
            os.makedirs(os.path.join(self._get_agent_path(session_id, agent_id), "messages"), mode=0o700, exist_ok=True)

    def _message_ids(self, session_id: str, agent_id: str) -> list[int]:
        folder = os.path.join(self._get_agent_path(session_id, agent_id), "messages")
        ids = []
        for file in os.listdir(folder) if os.path.isdir(folder) else []:
            number = file[len(MESSAGE_PREFIX) : -len(".json")]
            if file.startswith(MESSAGE_PREFIX) and file.endswith(".json") and number.isdigit():
                ids.append(int(number))
        return ids

    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            try:
                os.unlink(key)
            except FileNotFoundError:
                pass


class FileBackend:
    """Everything the store does with files, addressed by SessionName."""

    def __init__(self, root: str, lease_seconds: int) -> None:
        self.root = root
        self.leases = FileLeases(root, lease_seconds)

    def lease_key(self, name: SessionName) -> str:
        return os.path.join(self.root, name.segment, name.lease_name)

    def manager(self, name: SessionName, open_session: bool = True, agent_id: str | None = None) -> FileTurnSessionManager:
        storage_dir = os.path.join(self.root, name.segment)
        return FileTurnSessionManager(
            name.session_id, storage_dir=storage_dir, open_session=open_session, agent_id=agent_id
        )

    def _folder(self, name: SessionName) -> str:
        return os.path.join(self.root, name.segment, f"session_{name.session_id}")

    def session_objects(self, name: SessionName) -> list[tuple[str, datetime]]:
        found = []
        for folder, _, files in os.walk(self._folder(name)):
            for file in files:
                path = os.path.join(folder, file)
                try:
                    found.append((path, _modified(path)))
                except FileNotFoundError:  # a turn's atomic rename or a delete, just now
                    continue
        return found

    def delete_session(self, name: SessionName) -> bool:
        folder = self._folder(name)
        if not os.path.isdir(folder):
            return False
        shutil.rmtree(folder)
        return True

    def activity(self, start_after: str | None = None) -> Iterator[tuple[SessionName, datetime, bool, str]]:
        """Like S3's, but a directory walk is quick: the sweep never needs to resume (no cursor)."""
        if not os.path.isdir(self.root):
            return
        for segment in sorted(os.listdir(self.root)):
            caller_dir = os.path.join(self.root, segment)
            if not os.path.isdir(caller_dir):
                continue
            for entry_name in sorted(os.listdir(caller_dir)):
                entry = parse_entry(entry_name)
                if entry is None:
                    continue
                name = SessionName(segment, entry[0])
                if entry[1]:
                    try:
                        path = os.path.join(caller_dir, entry_name)
                        yield name, _modified(path), True, path
                    except FileNotFoundError:  # released just now
                        continue
                else:
                    for path, modified in self.session_objects(name):
                        yield name, modified, False, path


    def sweep_cursor(self) -> str | None:
        return None

    def save_sweep_cursor(self, key: str | None) -> None:
        pass


def _modified(path: str) -> datetime:
    return datetime.fromtimestamp(os.stat(path).st_mtime, tz=timezone.utc)
