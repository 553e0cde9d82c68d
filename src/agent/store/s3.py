"""The S3 store: Strands' S3SessionManager made atomic per turn, plus the whole-session operations.

Layout (Strands' own under a per-caller prefix; the lease sits beside the session folder)::

    <prefix>/<caller>/session_<id>.lease
    <prefix>/<caller>/session_<id>/session.json
    <prefix>/<caller>/session_<id>/agents/agent_default/agent.json     (commit point, with _snapshot)
    <prefix>/<caller>/session_<id>/agents/agent_default/messages/message_<n>.json
"""

from datetime import datetime
from typing import Any, Iterator

from botocore.exceptions import ClientError
from strands.session.s3_session_manager import MESSAGE_PREFIX, S3SessionManager

from .atomic import AtomicTurn, Doc, parallel
from .failures import is_missing
from .lease import S3Leases
from .naming import SessionName, parse_entry

# Where an unfinished expiry sweep resumes. Caller folders never start with "." (it is encoded).
SWEEP_CURSOR = ".expiry-sweep-cursor"


class S3TurnSessionManager(AtomicTurn, S3SessionManager):
    """S3SessionManager whose writes land together at the end of a turn (see atomic.py)."""

    def __init__(
        self, session_id: str, *, client: Any, bucket: str, prefix: str, open_session: bool = True,
        agent_id: str | None = None,
    ) -> None:
        # Not S3SessionManager.__init__: it builds a boto3 client per instance, and a client costs
        # tens of milliseconds; one client per container is shared by every turn.
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self._start(session_id, open_session, agent_id)

    def _session_key(self, session_id: str) -> str:
        return f"{self._get_session_path(session_id)}session.json"

    def _agent_key(self, session_id: str, agent_id: str) -> str:
        return f"{self._get_agent_path(session_id, agent_id)}agent.json"

    def _load(self, key: str) -> Doc | None:
        return self._read_s3_object(key)

    def _save(self, key: str, data: Doc) -> None:
        self._write_s3_object(key, data)

    def _save_many(self, items: list[tuple[str, Doc]]) -> None:
        parallel(lambda item: self._save(*item), items)

    def _load_many(self, keys: list[str]) -> list[Doc | None]:
        return parallel(self._load, keys)

    def _message_ids(self, session_id: str, agent_id: str) -> list[int]:
        folder = f"{self._get_agent_path(session_id, agent_id)}messages/{MESSAGE_PREFIX}"
        ids = []
        for key, _ in list_objects(self.client, self.bucket, folder):
            number = key[len(folder) :].removesuffix(".json")
            if number.isdigit():
                ids.append(int(number))
        return ids

    def _remove(self, keys: list[str]) -> None:
        delete_objects(self.client, self.bucket, keys)


class S3Backend:
    """Everything the store does with S3, addressed by SessionName."""

    def __init__(self, client: Any, bucket: str, prefix: str, lease_seconds: int) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/")
        self.leases = S3Leases(client, bucket, lease_seconds)

    def _base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def lease_key(self, name: SessionName) -> str:
        return f"{self._base()}{name.segment}/{name.lease_name}"

    def manager(self, name: SessionName, open_session: bool = True, agent_id: str | None = None) -> S3TurnSessionManager:
        caller_prefix = f"{self._base()}{name.segment}"
        return S3TurnSessionManager(
            name.session_id, client=self.client, bucket=self.bucket, prefix=caller_prefix,
            open_session=open_session, agent_id=agent_id,
        )

    def session_objects(self, name: SessionName) -> list[tuple[str, datetime]]:
        folder = f"{self._base()}{name.segment}/session_{name.session_id}/"
        return list(list_objects(self.client, self.bucket, folder))

    def delete_session(self, name: SessionName) -> bool:
        """Delete every object of the session (not its lease); False if there was none."""
        keys = [key for key, _ in self.session_objects(name)]
        delete_objects(self.client, self.bucket, keys)
        return bool(keys)

    def activity(self, start_after: str | None = None) -> Iterator[tuple[SessionName, datetime, bool, str]]:
        """(session, LastModified, is_lease, key) for every object of every session after
        ``start_after``, in key order, in one paginated LIST."""
        base = self._base()
        for key, modified in list_objects(self.client, self.bucket, base, start_after):
            parts = key[len(base) :].split("/", 2)
            if len(parts) < 2:
                continue
            entry = parse_entry(parts[1])
            if entry is None or entry[1] != (len(parts) == 2):
                continue
            yield SessionName(parts[0], entry[0]), modified, entry[1], key

    def _cursor_key(self) -> str:
        return f"{self._base()}{SWEEP_CURSOR}"

    def sweep_cursor(self) -> str | None:
        """Where an unfinished expiry sweep stopped listing (no session can have this name)."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._cursor_key())["Body"].read()
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return body.decode() or None

    def save_sweep_cursor(self, key: str | None) -> None:
        if key is None:
            self.client.delete_object(Bucket=self.bucket, Key=self._cursor_key())
        else:
            self.client.put_object(Bucket=self.bucket, Key=self._cursor_key(), Body=key.encode())


def list_objects(client: Any, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, datetime]]:
    after = {"StartAfter": start_after} if start_after else {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **after):
        for item in page.get("Contents", []):
            yield item["Key"], item["LastModified"]


def delete_objects(client: Any, bucket: str, keys: list[str]) -> None:
    """DeleteObjects in batches of 1000; a per-key error fails the call (the caller sees StoreUnavailable)."""
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise OSError(f"S3 refused to delete {len(response['Errors'])} objects, e.g. {first.get('Code')}")
