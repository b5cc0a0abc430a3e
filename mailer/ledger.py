"""The mailer's durable memory, in RocksDB (rocksdict, raw bytes).

Key layout (``\\x00`` separators; integers big-endian so byte order is numeric order)::

    b"m\\x00layout"                       -> layout version (1 byte)
    b"t\\x00" + trigger_id                -> outcome JSON {"outcome", "reason", "at"}
    b"c\\x00" + customer_id               -> send times: n x 8-byte ms, oldest first
    b"q\\x00" + due_ms + trigger_id       -> deferred trigger: JSON {"raw" (base64), ...}
    b"x\\x00" + customer_id               -> erasure mark: 8-byte ms (see mailer.freshness)

The trigger id is the idempotency key: once an outcome is recorded, the same trigger is a
duplicate. A sent email's outcome and the customer's send time are one write batch.
Outcomes older than the retention are dropped by :meth:`Ledger.prune` (by time of record).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rocksdict import WriteBatch

from mailer.exceptions import MailerError
from state.store.exceptions import StoreError
from state.store.rocksdb import open_versioned

__all__ = ["Deferred", "Ledger", "Outcome"]

LAYOUT_VERSION = 1
_LAYOUT_KEY = b"m\x00layout"
_OUTCOME = b"t\x00"
_SENDS = b"c\x00"
_QUEUE = b"q\x00"
_ERASED = b"x\x00"
_MAX_SENDS_KEPT = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a trigger: ``sent``, ``skipped``, ``deferred``, ``dead_lettered``."""

    outcome: str
    reason: str
    at: int


@dataclass(frozen=True, slots=True)
class Deferred:
    """A trigger waiting for its due time, with where it came from."""

    due_ms: int
    trigger_id: str
    raw: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int


class Ledger:
    """Outcomes, send times and deferred triggers in one RocksDB directory."""

    def __init__(self, path: Path) -> None:
        try:
            self._db = open_versioned(path, "mailer ledger", _LAYOUT_KEY, LAYOUT_VERSION)
        except StoreError as exc:
            raise MailerError(str(exc)) from exc

    def outcome(self, trigger_id: str) -> Outcome | None:
        data = self._db.get(_OUTCOME + trigger_id.encode())
        if data is None:
            return None
        raw = orjson.loads(data)
        return Outcome(raw["outcome"], raw["reason"], raw["at"])

    def sends(self, customer_id: str) -> list[int]:
        """Times (ms) of the customer's recent triggered emails, oldest first."""
        data = self._db.get(_SENDS + customer_id.encode()) or b""
        return [int.from_bytes(data[i : i + 8], "big") for i in range(0, len(data), 8)]

    def record(
        self,
        trigger_id: str,
        outcome: Outcome,
        *,
        sent_to_customer: str | None = None,
        done: Deferred | None = None,
    ) -> None:
        """Record ``outcome``; with ``sent_to_customer``, also a send at ``outcome.at``;
        with ``done``, remove that deferred entry. One atomic batch."""
        batch = WriteBatch(raw_mode=True)
        batch.put(_OUTCOME + trigger_id.encode(), _outcome_bytes(outcome))
        if sent_to_customer is not None:
            times = [*self.sends(sent_to_customer), outcome.at][-_MAX_SENDS_KEPT:]
            batch.put(_SENDS + sent_to_customer.encode(),
                      b"".join(t.to_bytes(8, "big") for t in times))  # fmt: skip
        if done is not None:
            batch.delete(_queue_key(done.due_ms, done.trigger_id))
        self._db.write(batch)

    def forget_customer(self, customer_id: str) -> None:
        """Drop the customer's send times (on erasure). Outcomes are keyed by trigger id
        and carry no customer data; a deferred trigger of an erased customer is skipped
        (no profile) and dropped when it comes due."""
        self._db.delete(_SENDS + customer_id.encode())

    def erased_at(self, customer_id: str) -> int | None:
        """The erasure mark of ``customer_id`` (:mod:`mailer.freshness`), if any."""
        data = self._db.get(_ERASED + customer_id.encode())
        return None if data is None else int.from_bytes(data, "big", signed=True)

    def mark_erased(self, customer_id: str, event_time: int) -> None:
        """Remember that ``customer_id`` was erased, holding a profile as of ``event_time``
        (ms); a later mark with an earlier time never lowers it."""
        held = self.erased_at(customer_id)
        if held is None or event_time > held:
            self._db.put(_ERASED + customer_id.encode(),
                         event_time.to_bytes(8, "big", signed=True))  # fmt: skip

    def defer(self, item: Deferred, outcome: Outcome, *, replaces: Deferred | None = None) -> None:
        """Queue ``item`` for its due time and record it as deferred, atomically; with
        ``replaces``, remove that earlier entry in the same batch."""
        value: dict[str, Any] = {
            "raw": base64.b64encode(item.raw).decode(),
            "key": None if item.key is None else base64.b64encode(item.key).decode(),
            "topic": item.topic,
            "partition": item.partition,
            "offset": item.offset,
        }
        batch = WriteBatch(raw_mode=True)
        if replaces is not None:
            batch.delete(_queue_key(replaces.due_ms, replaces.trigger_id))
        batch.put(_queue_key(item.due_ms, item.trigger_id), orjson.dumps(value))
        batch.put(_OUTCOME + item.trigger_id.encode(), _outcome_bytes(outcome))
        self._db.write(batch)

    def due(self, now_ms: int, limit: int = 100) -> list[Deferred]:
        """Deferred triggers due at or before ``now_ms``, earliest first."""
        found: list[Deferred] = []
        for key, value in self._db.items(from_key=_QUEUE):
            if not isinstance(key, bytes) or not key.startswith(_QUEUE) or len(found) >= limit:
                break
            due_ms = int.from_bytes(key[len(_QUEUE) : len(_QUEUE) + 8], "big")
            if due_ms > now_ms:
                break
            raw = orjson.loads(value)
            found.append(
                Deferred(
                    due_ms=due_ms,
                    trigger_id=key[len(_QUEUE) + 8 :].decode(),
                    raw=base64.b64decode(raw["raw"]),
                    key=None if raw["key"] is None else base64.b64decode(raw["key"]),
                    topic=raw["topic"],
                    partition=raw["partition"],
                    offset=raw["offset"],
                )
            )
        return found

    def pending(self) -> int:
        """How many deferred triggers wait."""
        n = 0
        for key in self._db.keys(from_key=_QUEUE):
            if not isinstance(key, bytes) or not key.startswith(_QUEUE):
                break
            n += 1
        return n

    def prune(self, before_ms: int) -> int:
        """Forget outcomes recorded before ``before_ms`` (not deferred ones); return how
        many. A trigger redelivered after that is treated as new: keep the retention
        (``CDPFLOW_MAILER_DEDUPE_TTL_MS``) longer than the triggers topic's retention."""
        batch = WriteBatch(raw_mode=True)
        for key, value in self._db.items(from_key=_OUTCOME):
            if not isinstance(key, bytes) or not key.startswith(_OUTCOME):
                break
            raw = orjson.loads(value)
            if raw["at"] < before_ms and raw["outcome"] != "deferred":
                batch.delete(key)
        n = len(batch)
        if n:
            self._db.write(batch)
        return n

    def close(self) -> None:
        self._db.close()


def _queue_key(due_ms: int, trigger_id: str) -> bytes:
    return _QUEUE + due_ms.to_bytes(8, "big") + trigger_id.encode()


def _outcome_bytes(o: Outcome) -> bytes:
    return orjson.dumps({"outcome": o.outcome, "reason": o.reason, "at": o.at})
