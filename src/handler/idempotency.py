"""Idempotency records that live with their session.

Powertools Idempotency does the work (hashing the key, the in-progress lock, replaying the stored
reply, refusing a key reused for another message); this module is where its records live: in
the session's own folder of the store (S3, or files locally), as `records/idempotency-<hash>.json`.
Deleting a session therefore deletes its records, and a key retried after a DELETE runs the turn
again instead of answering 200 for a turn the history no longer holds. On S3 they are tagged so a
lifecycle rule removes them once expired; locally they go with the session.
"""

import time
from typing import Any

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from agent import Deadline

INPROGRESS = "INPROGRESS"


class SessionRecordsLayer(BasePersistenceLayer):
    """A Powertools persistence layer over one session's records (agent.store.SessionRecords)."""

    def __init__(self, records: Any) -> None:
        super().__init__()
        self.records = records
        self.written: dict[str, str] = {}  # the ETag of each record this layer wrote

    def _get_record(self, idempotency_key: str) -> DataRecord:
        found = self.records.get(_name(idempotency_key))
        if found is None:
            raise IdempotencyItemNotFoundError
        return DataRecord(**found[0])

    def _put_record(self, data_record: DataRecord) -> None:
        """Create, or replace one that expired: the DynamoDB layer's condition, as a compare-and-swap."""
        name, document = _name(data_record.idempotency_key), _document(data_record)
        if self._wrote(name, self.records.create(name, document)):
            return
        found = self.records.get(name)
        if found is None:  # deleted in between (its turn failed): try once more
            if self._wrote(name, self.records.create(name, document)):
                return
            raise IdempotencyItemAlreadyExistsError
        old = DataRecord(**found[0])
        if not _replaceable(old):
            self._validate_payload(data_payload=data_record, stored_data_record=old)
            raise IdempotencyItemAlreadyExistsError(old_data_record=old)
        if not self._wrote(name, self.records.replace(name, document, found[1])):
            raise IdempotencyItemAlreadyExistsError

    def _update_record(self, data_record: DataRecord) -> None:
        """The turn's result, over the in-progress record this layer wrote, and only over it: a
        record deleted with its session since (the turn had already released the session) stays
        deleted, so no retry can replay a turn the history no longer holds."""
        name = _name(data_record.idempotency_key)
        if name in self.written:
            self._wrote(name, self.records.replace(name, _document(data_record), self.written[name]))

    def _wrote(self, name: str, etag: str | None) -> bool:
        if etag is not None:
            self.written[name] = etag
        return etag is not None

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.delete(_name(data_record.idempotency_key))


def idempotency_config(ttl_seconds: int, deadline: Deadline) -> IdempotencyConfig:
    # The key is scoped by caller and session, so two callers' keys never collide; the message
    # is validated so that a key reused for a different message is refused, not replayed.
    config = IdempotencyConfig(
        event_key_jmespath="[caller, session_id, idempotency_key]",
        payload_validation_jmespath="message",
        expires_after_seconds=ttl_seconds,
        raise_on_no_idempotency_key=True,
    )
    # An in-progress record expires with the invocation: a retry after a killed one proceeds.
    config.register_lambda_context(_RemainingTime(deadline))
    return config


class _RemainingTime:
    """What Powertools reads from a Lambda context, from the turn's deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        remaining = self.deadline.remaining()
        return 900_000 if remaining == float("inf") else int(remaining * 1000)


def _name(idempotency_key: str) -> str:
    # Powertools' key is "<function>#<md5>"; the function part may hold characters a record
    # name cannot, and within one session the hash alone is unique.
    return "idempotency-" + idempotency_key.rsplit("#", 1)[-1]


def _document(record: DataRecord) -> dict[str, Any]:
    return {"idempotency_key": record.idempotency_key, "status": record.status,
            "expiry_timestamp": record.expiry_timestamp,
            "in_progress_expiry_timestamp": record.in_progress_expiry_timestamp,
            "response_data": record.response_data, "payload_hash": record.payload_hash}


def _replaceable(record: DataRecord) -> bool:
    """The DynamoDB layer's condition: expired, or in progress past its in-progress expiry."""
    if record.is_expired:
        return True
    return (record.status == INPROGRESS and record.in_progress_expiry_timestamp is not None
            and record.in_progress_expiry_timestamp < time.time() * 1000)
