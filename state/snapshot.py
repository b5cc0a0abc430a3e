"""Recovery snapshots of :class:`~state.profile.CustomerState`: plain, versioned, compact.

Bytewax pickles what ``snapshot()`` returns; a plain tuple of builtins keeps that small
and independent of class layout. ``STATE_VERSION`` goes first: a snapshot written by a
layout this code does not know raises :class:`~state.exceptions.SnapshotVersionError`
instead of being misread. Version 1 snapshots (before purchases, engagement,
preferences, cart and the day-bucket counters) and version 2 (before the rules verdict)
are still read: the parts they lack start empty.

Layout of version 3, in order: version, key, watermark, revision, pruned_at, clock,
forgotten_to, seen ids (bytes: per id an 8-byte digest and an 8-byte signed event time,
big-endian), attributes (flat ``name, value, time, ...``), first_seen, last_active,
event counts (flat ``type, n, ...``), category view times (flat ``category, (times),
...``), fired anchors (flat), recent products per category (flat ``category, (t, id,
t, id, ...)``), then the dumps of counters, purchases, engagement, preferences and cart
(each a tuple, see their modules; the windowed counters carry a definition version
each, :data:`state.counters.VERSIONS`), custom tags (flat), and the rules' verdict and
cooldowns (:meth:`state.rules.engine.Derived.dump`), the erasure time, the customer
this id was merged into, the anonymous ids seen (flat), and the declared traits' states
(:meth:`state.traits.state.TraitStates.dump`: per definition hash, its group keys and
cells); these four were appended later: shorter snapshots read as ``None``, no devices
and no trait state. Maps are
flattened into tuples because a pickled tuple costs less than a dict of tuples: a
typical customer (60 events over 30 days) takes about 1.2 to 1.6 KB pickled.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

from state.cart import Cart
from state.counters import Counters
from state.dedupe import SeenIds
from state.engagement import Engagement
from state.events import NO_TIME
from state.exceptions import SnapshotVersionError
from state.preferences import Preferences
from state.profile import CustomerState
from state.purchases import Purchases
from state.rules.engine import Derived
from state.traits.state import TraitStates
from state.trigger_context import dump_products, load_products
from state.windows import RecentTimes

__all__ = [
    "STATE_VERSION",
    "Peek",
    "from_portable",
    "from_snapshot",
    "peek",
    "to_portable",
    "to_snapshot",
]

STATE_VERSION = 3
_DERIVED = 21  # position of the rules' verdict in a version-3 snapshot

_ID_BYTES = 16


def to_snapshot(st: CustomerState) -> tuple[Any, ...]:
    """A deep, immutable-by-construction copy of ``st``."""
    return (
        STATE_VERSION,
        st.key,
        st.watermark,
        st.revision,
        st.pruned_at,
        st.clock,
        st.forgotten_to,
        _pack_ids(st.seen.ids),
        tuple(x for name, (v, t) in st.attrs.items() for x in (name, v, t)),
        st.first_seen,
        st.last_active,
        _flat(st.event_counts),
        tuple(x for c, w in st.category_views.items() for x in (c, tuple(w.times))),
        _flat(st.fired),
        tuple(
            x
            for c, recent in st.viewed_products.items()
            for x in (c, tuple(y for entry in recent for y in entry))
        ),
        st.counters.dump(),
        st.purchases.dump(),
        st.engagement.dump(),
        st.preferences.dump(),
        st.cart.dump(),
        _flat(st.tags),
        st.derived.dump(),
        st.erased_at,
        st.merged_into,
        _flat(st.devices),
        st.traits.dump(),
        dump_products(st.products),
    )


@dataclass(frozen=True, slots=True)
class Peek:
    """What a timer needs to know of a snapshot without restoring it."""

    watermark: int
    as_of: int
    next_deadline: int | None


def peek(snap: tuple[Any, ...]) -> Peek | None:
    """Read the times of a current-layout snapshot cheaply; ``None`` if it must be restored
    to tell (an older layout, or no cached deadline)."""
    if not snap or snap[0] != STATE_VERSION:
        return None
    nxt = snap[_DERIVED][4]
    if nxt is False:
        return None
    watermark, clock = snap[2], snap[5]
    return Peek(watermark, max(watermark, clock), nxt)


def from_snapshot(snap: tuple[Any, ...]) -> CustomerState:
    """The state ``snap`` was taken of (version 3; versions 1 and 2 upgraded)."""
    version = snap[0] if snap else None
    if version == 1:
        return _from_v1(snap)
    if version == 2:  # no rules verdict yet: the next evaluation derives it afresh
        snap = (STATE_VERSION, *snap[1:], Derived().dump())
    elif version != STATE_VERSION:
        raise SnapshotVersionError(
            f"snapshot layout version {version!r}; this code reads 1 to {STATE_VERSION}"
        )
    (_, key, watermark, revision, pruned_at, clock, forgotten_to, seen, attrs, first_seen,
     last_active, counts, views, fired, products, counters, purchases, engagement,
     preferences, cart, tags, derived, *rest) = snap  # fmt: skip
    return CustomerState(
        key=key,
        watermark=watermark,
        revision=revision,
        seen=SeenIds(_unpack_ids(seen)),
        pruned_at=pruned_at,
        attrs={n: (v, t) for n, v, t in zip(attrs[::3], attrs[1::3], attrs[2::3], strict=True)},
        first_seen=first_seen,
        last_active=last_active,
        event_counts=_unflat(counts),
        category_views={c: RecentTimes(list(ts)) for c, ts in _unflat(views).items()},
        fired=_unflat(fired),
        viewed_products={
            c: [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
            for c, flat in _unflat(products).items()
        },
        clock=clock,
        forgotten_to=forgotten_to,
        counters=Counters.load(counters),
        purchases=Purchases.load(purchases),
        engagement=Engagement.load(engagement),
        preferences=Preferences.load(preferences),
        cart=Cart.load(cart),
        tags=_unflat(tags),
        derived=Derived.load(derived),
        erased_at=rest[0] if rest else None,
        merged_into=rest[1] if len(rest) > 1 else None,
        devices=_unflat(rest[2]) if len(rest) > 2 else {},
        traits=TraitStates.load(rest[3]) if len(rest) > 3 else TraitStates(),
        products=load_products(rest[4]) if len(rest) > 4 else {},
    )


def _from_v1(snap: tuple[Any, ...]) -> CustomerState:
    (_, key, watermark, revision, _pruned_at, seen, attrs, first_seen, last_active,
     counts, views, fired, products) = snap  # fmt: skip
    return CustomerState(
        key=key,
        watermark=watermark,
        revision=revision,
        seen=SeenIds(dict(seen)),
        pruned_at=NO_TIME,  # compact at the next event, with the new counters
        attrs=dict(attrs),
        first_seen=first_seen,
        last_active=last_active,
        event_counts=dict(counts),
        category_views={c: RecentTimes(list(ts)) for c, ts in views.items()},
        fired=dict(fired),
        viewed_products={c: list(p) for c, p in products.items()},
    )


def to_portable(snap: tuple[Any, ...]) -> str:
    """``snap`` as JSON text, for a snapshot that travels in an event (a customer merge):
    not pickle, which would run code from whoever can write to the topic.

    >>> snap = (3, "c1", b"\\x00\\xff", (1.5, None, True), {"k": ("v",)})
    >>> from_portable(to_portable(snap)) == snap
    True
    """
    return json.dumps(_portable(snap), separators=(",", ":"))


def from_portable(text: str) -> tuple[Any, ...]:
    """The snapshot :func:`to_portable` wrote (raises ``ValueError`` if ``text`` is not one)."""
    value = _unportable(json.loads(text))
    if not isinstance(value, tuple):
        raise ValueError("a portable snapshot is a JSON array")
    return value


def _portable(value: Any) -> Any:
    # Tuples become lists, bytes {"b": base64}, dicts {"d": [[k, v], ...]}: every list read
    # back is a tuple again, as in the snapshot.
    if isinstance(value, tuple | list):
        return [_portable(v) for v in value]
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {"d": [[_portable(k), _portable(v)] for k, v in value.items()]}
    return value


def _unportable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_unportable(v) for v in value)
    if isinstance(value, dict):
        if "b" in value:
            return base64.b64decode(value["b"], validate=True)
        return {_unportable(k): _unportable(v) for k, v in value["d"]}
    return value


def _flat(d: dict[Any, Any]) -> tuple[Any, ...]:
    return tuple(x for kv in d.items() for x in kv)


def _unflat(flat: tuple[Any, ...] | list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


_ID = struct.Struct(">Qq")  # per id: the 8-byte digest, unsigned; the event time, signed


def _pack_ids(ids: dict[int, int]) -> bytes:
    return b"".join(map(_ID.pack, ids.keys(), ids.values()))


def _unpack_ids(packed: bytes) -> dict[int, int]:
    if len(packed) % _ID_BYTES == 0:
        return dict(_ID.iter_unpack(packed))
    # Not written by _pack_ids (a handover from elsewhere): read as this layout always was.
    return {
        int.from_bytes(packed[i : i + 8], "big"): int.from_bytes(
            packed[i + 8 : i + _ID_BYTES], "big", signed=True
        )
        for i in range(0, len(packed), _ID_BYTES)
    }
