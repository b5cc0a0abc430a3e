"""The RocksDB backend (rocksdict, raw bytes), one database directory per store.

Key layout (byte order is the iteration order; separators are ``\\x00``)::

    b"m\\x00layout"                         -> layout version (1 byte)
    b"p\\x00" + customer_id                 -> StoredProfile bytes (versioned JSON)
    b"e\\x00" + normalized email            -> customer_id
    b"s\\x00" + segment + b"\\x00" + cust_id -> b""   (members ascending by id)
    b"o\\x00" + topic + b"\\x00" + partition -> next offset
                  (partition: 4-byte big-endian; offset: 8-byte big-endian)

Ids and names are UTF-8; UTF-8 byte order equals code-point order, so segment pages come
out in the same order as the in-memory backend's. Every :meth:`apply` is one write batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from state.store.base import ProfileChange, SourceOffsets
from state.store.exceptions import StoreError
from state.store.model import StoredProfile, normalize_email

__all__ = ["RocksProfileStore"]

LAYOUT_VERSION = 1
_LAYOUT_KEY = b"m\x00layout"
_PROFILE = b"p\x00"
_EMAIL = b"e\x00"
_SEGMENT = b"s\x00"
_OFFSET = b"o\x00"


def _segment_prefix(segment: str) -> bytes:
    return _SEGMENT + segment.encode() + b"\x00"


def _offset_prefix(topic: str) -> bytes:
    return _OFFSET + topic.encode() + b"\x00"


def open_versioned(path: Path, what: str, layout_key: bytes, version: int) -> Rdict:
    """Open (creating if missing) a raw-mode RocksDB directory whose key layout carries a
    version under ``layout_key``: a directory written by another layout is refused with a
    :class:`StoreError` instead of being misread."""
    path.mkdir(parents=True, exist_ok=True)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    try:
        db = Rdict(str(path), options)
    except Exception as exc:  # rocksdict raises a bare Exception
        raise StoreError(f"cannot open the {what} at {path}: {exc}") from exc
    layout = db.get(layout_key)
    if layout is None:
        db.put(layout_key, bytes([version]))
    elif layout != bytes([version]):
        db.close()
        raise StoreError(f"{what} at {path} has an unknown key layout")
    return db


class RocksProfileStore:
    """A :class:`~state.store.base.ProfileStore` in a RocksDB directory (created if missing).

    One process opens a directory at a time (RocksDB's lock); a second open raises
    :class:`StoreError`.
    """

    def __init__(self, path: Path) -> None:
        self._db = open_versioned(path, "profile store", _LAYOUT_KEY, LAYOUT_VERSION)

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        batch = WriteBatch(raw_mode=True)
        # Earlier changes of this batch, which the database does not show yet.
        profiles: dict[str, StoredProfile | None] = {}
        emails: dict[bytes, bytes | None] = {}
        for customer_id, profile in changes:
            old = profiles[customer_id] if customer_id in profiles else self.get(customer_id)
            cid = customer_id.encode()
            if old is not None:
                self._unindex(batch, emails, old, cid)
            if profile is None:
                batch.delete(_PROFILE + cid)
            else:
                batch.put(_PROFILE + cid, profile.to_bytes())
                if profile.email:
                    key = _EMAIL + normalize_email(profile.email).encode()
                    batch.put(key, cid)
                    emails[key] = cid
                for segment in set(profile.segments):
                    batch.put(_segment_prefix(segment) + cid, b"")
            profiles[customer_id] = profile
        for (topic, partition), offset in offsets.items():
            key = _offset_prefix(topic) + partition.to_bytes(4, "big")
            batch.put(key, offset.to_bytes(8, "big", signed=True))
        self._db.write(batch)

    def _unindex(
        self,
        batch: WriteBatch,
        emails: dict[bytes, bytes | None],
        old: StoredProfile,
        cid: bytes,
    ) -> None:
        if old.email:
            key = _EMAIL + normalize_email(old.email).encode()
            owner = emails[key] if key in emails else self._db.get(key)
            if owner == cid:
                batch.delete(key)
                emails[key] = None
        for segment in set(old.segments):
            batch.delete(_segment_prefix(segment) + cid)

    def get(self, customer_id: str) -> StoredProfile | None:
        data = self._db.get(_PROFILE + customer_id.encode())
        return None if data is None else StoredProfile.from_bytes(data)

    def find_by_email(self, email: str) -> StoredProfile | None:
        owner = self._db.get(_EMAIL + normalize_email(email).encode())
        return None if owner is None else self.get(bytes(owner).decode())

    def segment_members(self, segment: str, *, after: str | None, limit: int) -> list[str]:
        prefix = _segment_prefix(segment)
        start = prefix if after is None else prefix + after.encode() + b"\x00"
        members: list[str] = []
        if limit <= 0:
            return members
        for key in self._db.keys(from_key=start):
            if not isinstance(key, bytes) or not key.startswith(prefix):
                break
            members.append(key[len(prefix) :].decode())
            if len(members) >= limit:
                break
        return members

    def offsets(self, topic: str) -> dict[int, int]:
        prefix = _offset_prefix(topic)
        found: dict[int, int] = {}
        for key, value in self._db.items(from_key=prefix):
            if not isinstance(key, bytes) or not key.startswith(prefix):
                break
            partition = int.from_bytes(key[len(prefix) :], "big")
            found[partition] = int.from_bytes(value, "big", signed=True)
        return found

    def close(self) -> None:
        self._db.close()
