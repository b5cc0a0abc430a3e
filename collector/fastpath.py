"""The compiled fast path of ``/v1/batch`` (``collector/_segment_fast.pyx``), when it is usable.

``load`` gives a :class:`SegmentFastPath` when the extension was built (``pip install``
compiles it, see ``hatch_build.py``) and was written for the codec's ``cdp.Event``
schema; else ``None``, and the collector maps every message in Python, which is the
reference implementation: same records, two to three times the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from cdpflow.codec import MARKER, AvroCodec
from collector import segment
from collector.producer import OutMessage

__all__ = ["SegmentFastPath", "load"]

_log = logging.getLogger(__name__)


class SegmentFastPath(Protocol):
    def encode(
        self,
        items: list[Any],
        received_at: int,
        batch_sent_at: Any,
        batch_context: Mapping[str, Any] | None,
        client_ip: str | None,
        skip: set[int],
        public: bool = False,
    ) -> list[OutMessage | None]:
        """One message per item of a batch, or ``None`` where the Python path must map
        the item (not in the fast path's shapes, invalid, or its ``id`` in ``skip``).
        ``public``: a public write key sent the batch, as ``segment_to_record``'s
        ``public`` (identity events left to the Python path, which refuses them; event
        times after ``received_at`` clamped to it)."""
        ...


def load(codec: AvroCodec, topic: str) -> SegmentFastPath | None:
    """The fast path writing ``cdp.Event`` messages to ``topic``, or None (logged why)."""
    try:
        from collector import _segment_fast  # type: ignore[attr-defined]
    except ImportError:
        _log.warning("collector fast path not built; mapping Segment batches in Python")
        return None
    fingerprint = codec.fingerprint_of("cdp.Event")
    if fingerprint.hex() != _segment_fast.SCHEMA_FINGERPRINT:
        _log.warning("collector fast path written for another cdp.Event schema; mapping in Python")
        return None
    fast: SegmentFastPath = _segment_fast.FastBatch(
        topic, MARKER + fingerprint, OutMessage, segment
    )
    return fast
