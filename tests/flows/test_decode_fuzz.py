"""Hypothesis over the decoder: extreme numbers, times, dates, sizes and corrupted bytes.
``decode_one`` never raises; what it lets through lies within ``state.bounds``."""

from __future__ import annotations

import math
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from flows.dead_letters import DeadLetter
from flows.decode import decode_one
from state.bounds import MAX_AMOUNT, MAX_TIME_MS, MIN_TIME_MS
from state.events import Event
from state.validation import EventLimits

CODEC = default_codec()
SCHEMA = CODEC.schema("cdp.Event")
LIMITS = EventLimits()
T = 1_793_000_000_000

_BASES = [
    ("order_completed", {"order_id": "o", "revenue": 1.0, "currency": "EUR", "items": [
        {"product": {"product_id": "p", "price": 2.0}, "quantity": 1}]}),
    ("identify", {"email": "a@b.example", "traits": {"k": '"v"'}}),
    ("cart_item_added", {"item": {"product": {"product_id": "p", "price": 3.0}, "quantity": 2}}),
    ("page_viewed", {"path": "/"}),
]  # fmt: skip

longs = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, MAX_TIME_MS - 1, MAX_TIME_MS, 3 * 10**14, -(10**12), T]),
)
doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e305, -1e305, MAX_AMOUNT, MAX_AMOUNT * 1.0000001, -0.0, 5e-324]),
)
texts = st.one_of(st.text(max_size=20), st.integers(0, 40_000).map(lambda n: "é" * n))


def _message(value: bytes) -> KafkaSourceMessage[bytes | None, bytes | None]:
    return KafkaSourceMessage(b"k", value, topic="t", partition=0, offset=7)


def _check(out: Event | DeadLetter) -> None:
    if isinstance(out, DeadLetter):
        assert out.reason
        assert out.error
        assert out.origin is not None
        assert out.origin.offset == 7
        return
    assert MIN_TIME_MS <= out.event_time < MAX_TIME_MS
    assert MIN_TIME_MS <= out.received_at < MAX_TIME_MS

    def walk(v: Any) -> None:
        if isinstance(v, float):
            assert math.isfinite(v)
            assert abs(v) <= MAX_AMOUNT
        elif isinstance(v, str):
            assert len(v.encode("utf-8", "surrogatepass")) <= LIMITS.max_field_bytes
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(out.payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_BASES),
    longs,
    longs,
    doubles,
    texts,
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
)
def test_extreme_values_from_a_rogue_producer_never_raise(
    base, event_time, received_at, amount, text, signup
) -> None:
    kind, payload = base
    record = record_from_json({"event_id": "e", "type": kind, "customer_id": "c",
                               "timestamp": T, "payload": payload}, CODEC)  # fmt: skip
    record["event_time"], record["received_at"] = event_time, received_at
    branch, fields = record["payload"]
    fields = dict(fields)
    if "revenue" in fields:
        fields["revenue"] = amount
    if "item" in fields:
        fields["item"] = {**fields["item"], "product": {"product_id": text, "price": amount}}
    if kind == "identify":
        fields["signup_date"], fields["first_name"] = signup, text
    if kind == "page_viewed":
        fields["path"] = text
    record["payload"] = (branch, fields)
    try:
        value = CODEC.encode_with(SCHEMA, record)
    except (ValueError, OverflowError):
        return  # not representable in Avro at all: no producer can send it
    _check(decode_one(_message(value), CODEC, LIMITS, lambda: T))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_BASES), st.data())
def test_corrupted_bytes_never_raise(base, data) -> None:
    kind, payload = base
    record = record_from_json({"event_id": "e", "type": kind, "customer_id": "c",
                               "timestamp": T, "payload": payload}, CODEC)  # fmt: skip
    value = bytearray(CODEC.encode("cdp.Event", record))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(value) - 1))
        value[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(value)))
    _check(decode_one(_message(bytes(value[:cut])), CODEC, LIMITS, lambda: T))
