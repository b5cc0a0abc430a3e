"""The RocksDB backend (rocksdict, raw bytes), one database directory per store.

Key layout (byte order is the iteration order; separators are ``\\x00``)::

    b"m\\x00layout"                         -> layout version (1 byte)
    b"p\\x00" + customer_id                 -> StoredProfile bytes (versioned JSON)
    b"e\\x00" + email + b"\\x00" + claim + customer_id -> b""  (holders, first claim first)
    b"c\\x00" + customer_id                 -> claim + email  (the customer's claim)
    b"s\\x00" + segment + b"\\x00" + cust_id -> b""   (members ascending by id)
    b"o\\x00" + topic + b"\\x00" + partition -> next offset
                  (partition: 4-byte big-endian; offset: 8-byte big-endian)

Ids and names are UTF-8; UTF-8 byte order equals code-point order, so segment pages come
out in the same order as the in-memory backend's. ``email`` is the normalized address
(:func:`~state.store.model.email_key`; it has no ``\\x00``), ``claim`` the claim time, 8
bytes big-endian offset by 2**63 so that byte order is numeric order. Every :meth:`apply` is
one write batch. Layout 1 (one ``e`` key per address, the last claimant) is re-indexed to
layout 2 when opened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from state.store.base import EmailMatch, ProfileChange, SourceOffsets
from state.store.exceptions import StoreError
from state.store.model import StoredProfile, email_key

__all__ = ["RocksProfileStore"]

LAYOUT_VERSION = 2
_LAYOUT_KEY = b"m\x00layout"
_PROFILE = b"p\x00"
_EMAIL = b"e\x00"
_CLAIM = b"c\x00"
_SEGMENT = b"s\x00"
_OFFSET = b"o\x00"
_CLAIM_BIAS = 1 << 63
#: How many holders of one address a look-up counts at most (the answer says "shared").
_MAX_COUNTED = 1000
#: A customer's claim: ``(normalized email, claim time)``; ``None``: holds no address.
_Claim = tuple[str, int] | None


def _email_prefix(key: str) -> bytes:
    return _EMAIL + key.encode() + b"\x00"


def _claim_bytes(at: int) -> bytes:
    return min(max(at + _CLAIM_BIAS, 0), (1 << 64) - 1).to_bytes(8, "big")


def _segment_prefix(segment: str) -> bytes:
    return _SEGMENT + segment.encode() + b"\x00"


def _offset_prefix(topic: str) -> bytes:
    return _OFFSET + topic.encode() + b"\x00"


def open_versioned(
    path: Path,
    what: str,
    layout_key: bytes,
    version: int,
    upgrades: dict[int, Callable[[Rdict], None]] | None = None,
) -> Rdict:
    """Open (creating if missing) a raw-mode RocksDB directory whose key layout carries a
    version under ``layout_key``: a directory written by another layout is refused with a
    :class:`StoreError` instead of being misread, unless ``upgrades`` maps its version to
    a function that rewrites it to ``version`` (and records that version itself)."""
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
    elif len(layout) == 1 and upgrades and layout[0] in upgrades:
        upgrades[layout[0]](db)
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
        self._db = open_versioned(path, "profile store", _LAYOUT_KEY, LAYOUT_VERSION,
                                  {1: _reindex_emails})  # fmt: skip

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        batch = WriteBatch(raw_mode=True)
        # Earlier changes of this batch, which the database does not show yet.
        profiles: dict[str, StoredProfile | None] = {}
        claims: dict[str, _Claim] = {}
        for customer_id, profile in changes:
            old = profiles[customer_id] if customer_id in profiles else self.get(customer_id)
            cid = customer_id.encode()
            if old is not None:
                for segment in set(old.segments):
                    batch.delete(_segment_prefix(segment) + cid)
            held = claims[customer_id] if customer_id in claims else self._claim(cid)
            key = None if profile is None else email_key(profile.email)
            if held is not None and held[0] != key:
                batch.delete(_email_prefix(held[0]) + _claim_bytes(held[1]) + cid)
                batch.delete(_CLAIM + cid)
                claims[customer_id] = held = None
            if profile is None:
                batch.delete(_PROFILE + cid)
            else:
                batch.put(_PROFILE + cid, profile.to_bytes())
                if key is not None and held is None:
                    _put_claim(batch, cid, key, profile.event_time)
                    claims[customer_id] = (key, profile.event_time)
                for segment in set(profile.segments):
                    batch.put(_segment_prefix(segment) + cid, b"")
            profiles[customer_id] = profile
        for (topic, partition), offset in offsets.items():
            key_bytes = _offset_prefix(topic) + partition.to_bytes(4, "big")
            batch.put(key_bytes, offset.to_bytes(8, "big", signed=True))
        self._db.write(batch)

    def _claim(self, cid: bytes) -> _Claim:
        raw = self._db.get(_CLAIM + cid)
        if raw is None:
            return None
        data = bytes(raw)
        return (data[8:].decode(), int.from_bytes(data[:8], "big") - _CLAIM_BIAS)

    def get(self, customer_id: str) -> StoredProfile | None:
        data = self._db.get(_PROFILE + customer_id.encode())
        return None if data is None else StoredProfile.from_bytes(data)

    def find_by_email(self, email: str) -> EmailMatch | None:
        key = email_key(email)
        if key is None:
            return None
        prefix = _email_prefix(key)
        first: bytes | None = None
        holders = 0
        for found in self._db.keys(from_key=prefix):
            if not isinstance(found, bytes) or not found.startswith(prefix):
                break
            if first is None:
                first = found[len(prefix) + 8 :]
            holders += 1
            if holders >= _MAX_COUNTED:
                break
        profile = None if first is None else self.get(first.decode())
        return None if profile is None else EmailMatch(profile, holders)

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


def _put_claim(batch: WriteBatch, cid: bytes, key: str, at: int) -> None:
    claim = _claim_bytes(at)
    batch.put(_email_prefix(key) + claim + cid, b"")
    batch.put(_CLAIM + cid, claim + key.encode())


def _reindex_emails(db: Rdict) -> None:
    """Layout 1 -> 2: drop the last-claimant email keys and index every stored profile's
    address with its snapshot's ``event_time`` as the claim time (the best that is known)."""
    batch = WriteBatch(raw_mode=True)
    for key in db.keys(from_key=_EMAIL):
        if not isinstance(key, bytes) or not key.startswith(_EMAIL):
            break
        batch.delete(key)
    for key, value in db.items(from_key=_PROFILE):
        if not isinstance(key, bytes) or not key.startswith(_PROFILE):
            break
        profile = StoredProfile.from_bytes(value)
        email = email_key(profile.email)
        if email is not None:
            _put_claim(batch, key[len(_PROFILE) :], email, profile.event_time)
    batch.put(_LAYOUT_KEY, bytes([LAYOUT_VERSION]))
    db.write(batch)
