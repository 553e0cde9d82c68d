"""Where idempotency records live: DynamoDB when deployed, files when run locally.

Powertools Idempotency does the work (hashing the key, the in-progress lock, replaying the
stored reply); this module only picks its persistence store. The file store exists so that
`make dev` behaves like the deployed API: a retried Idempotency-Key replays there too.
"""

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from agent import Settings

INPROGRESS = "INPROGRESS"


class FilePersistenceLayer(BasePersistenceLayer):
    """One JSON file per idempotency key, with the same put condition as the DynamoDB layer."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self._dir = Path(directory)

    def _path(self, key: str) -> Path:
        return self._dir / f"{key.replace('/', '_').replace('#', '_')}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl  # here, like the file leases': the deployed function never needs it

        self._dir.mkdir(parents=True, exist_ok=True)
        with open(self._dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self, key: str) -> DataRecord | None:
        try:
            return DataRecord(**json.loads(self._path(key).read_text()))
        except FileNotFoundError:
            return None

    def _write(self, record: DataRecord) -> None:
        path = self._path(record.idempotency_key)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({
            "idempotency_key": record.idempotency_key, "status": record.status,
            "expiry_timestamp": record.expiry_timestamp,
            "in_progress_expiry_timestamp": record.in_progress_expiry_timestamp,
            "response_data": record.response_data, "payload_hash": record.payload_hash,
        }))
        os.replace(temporary, path)

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record = self._read(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        with self._locked():
            old = self._read(data_record.idempotency_key)
            if old is not None and not _replaceable(old):
                self._validate_payload(data_payload=data_record, stored_data_record=old)
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            self._write(data_record)

    def _update_record(self, data_record: DataRecord) -> None:
        with self._locked():
            self._write(data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._locked():
            self._path(data_record.idempotency_key).unlink(missing_ok=True)


def _replaceable(record: DataRecord) -> bool:
    """The DynamoDB layer's condition: expired, or in progress past its in-progress expiry."""
    now = time.time()
    if record.expiry_timestamp and record.expiry_timestamp < now:
        return True
    return (record._status == INPROGRESS and record.in_progress_expiry_timestamp is not None
            and record.in_progress_expiry_timestamp < now * 1000)


def persistence_store(settings: Settings) -> BasePersistenceLayer:
    if settings.idempotency_table:
        return DynamoDBPersistenceLayer(table_name=settings.idempotency_table)
    return FilePersistenceLayer(os.path.join(settings.session_dir, ".idempotency"))


def idempotency_config(settings: Settings) -> IdempotencyConfig:
    # The key is scoped by caller and session, so two callers' keys never collide; the message
    # is validated so that a key reused for a different message is refused, not replayed.
    return IdempotencyConfig(
        event_key_jmespath="[caller, session_id, idempotency_key]",
        payload_validation_jmespath="message",
        expires_after_seconds=settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
    )
