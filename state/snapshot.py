"""Recovery snapshots of :class:`~state.profile.CustomerState`: plain, versioned, compact.

Bytewax pickles what ``snapshot()`` returns; a plain tuple of builtins keeps that small
and independent of class layout. ``STATE_VERSION`` goes first: a snapshot written by a
layout this code does not know raises :class:`~state.exceptions.SnapshotVersionError`
instead of being misread.
"""

from __future__ import annotations

from typing import Any

from state.dedupe import SeenIds
from state.exceptions import SnapshotVersionError
from state.profile import CustomerState
from state.windows import RecentTimes

__all__ = ["STATE_VERSION", "from_snapshot", "to_snapshot"]

STATE_VERSION = 1


def to_snapshot(st: CustomerState) -> tuple[Any, ...]:
    """A deep, immutable-by-construction copy of ``st``."""
    return (
        STATE_VERSION,
        st.key,
        st.watermark,
        st.revision,
        st.pruned_at,
        dict(st.seen.ids),
        {k: (v, t) for k, (v, t) in st.attrs.items()},
        st.first_seen,
        st.last_active,
        dict(st.event_counts),
        {c: tuple(w.times) for c, w in st.category_views.items()},
        dict(st.fired),
        {c: tuple(p) for c, p in st.viewed_products.items()},
    )


def from_snapshot(snap: tuple[Any, ...]) -> CustomerState:
    if not snap or snap[0] != STATE_VERSION:
        version = snap[0] if snap else None
        raise SnapshotVersionError(
            f"snapshot layout version {version!r}; this code reads {STATE_VERSION}"
        )
    (_, key, watermark, revision, pruned_at, seen, attrs, first_seen, last_active,
     counts, views, fired, products) = snap  # fmt: skip
    return CustomerState(
        key=key,
        watermark=watermark,
        revision=revision,
        seen=SeenIds(dict(seen)),
        pruned_at=pruned_at,
        attrs=dict(attrs),
        first_seen=first_seen,
        last_active=last_active,
        event_counts=dict(counts),
        category_views={c: RecentTimes(list(ts)) for c, ts in views.items()},
        fired=dict(fired),
        viewed_products={c: list(p) for c, p in products.items()},
    )
