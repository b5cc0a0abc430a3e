"""The profile store: the latest snapshot of every customer, with look-ups by email and
segment, and the source offsets it was built from, written together.

Everything above talks to :class:`ProfileStore`; two backends implement it and pass the
same tests: :class:`MemoryProfileStore` (tests, throw-away runs) and
:class:`RocksProfileStore` (rocksdict; the only module here that touches it).
"""

from state.store.base import EmailMatch, ProfileChange, ProfileStore, SourceOffsets
from state.store.memory import MemoryProfileStore
from state.store.model import (
    STORED_VERSION,
    StoredProfile,
    email_key,
    is_fresher,
    iso_ms,
    normalize_email,
)
from state.store.rocksdb import RocksProfileStore

__all__ = [
    "STORED_VERSION",
    "EmailMatch",
    "MemoryProfileStore",
    "ProfileChange",
    "ProfileStore",
    "RocksProfileStore",
    "SourceOffsets",
    "StoredProfile",
    "email_key",
    "is_fresher",
    "iso_ms",
    "normalize_email",
]
