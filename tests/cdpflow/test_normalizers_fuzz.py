"""Fuzzing the normalizers with hypothesis: whatever JSON arrives, a normalizer either
returns an event that encodes with the Avro schema, or raises ``EventValidationError``
with a reason and a message; never another exception (which would be a 500 at the edge)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import PAYLOAD_RECORD, record_from_json
from collector.segment import segment_to_json
from collector.shopify import shopify_to_json

CODEC = default_codec()
NOW = 1_793_000_000_000

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["2026-10-25T10:00:00Z", "2026-10-25T10:00:00", "shoes", "", "null",
                     "USD", "1.5", "-1", "9" * 30]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _fields(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that mostly use the names a normalizer looks for, with any values."""
    return st.dictionaries(st.sampled_from(names) | st.text(max_size=6), json_values,
                           max_size=len(names))  # fmt: skip


def _encodes_or_refuses(produce: Any) -> None:
    refused: EventValidationError | None = None
    try:
        records = produce()
    except EventValidationError as exc:
        refused, records = exc, []
    if refused is not None:
        assert refused.reason  # a reason for the dead letter or the 400
        assert str(refused)
    for record in records:
        CODEC.encode("cdp.Event", record)  # a valid record must encode


EVENT_FIELDS = ["event_id", "type", "customer_id", "anonymous_id", "timestamp", "source",
                "payload", "context", "received_at", "sent_at"]  # fmt: skip
PAYLOAD_FIELDS = ["product", "item", "items", "order_id", "total", "currency", "email",
                  "category", "product_id", "price", "quantity", "name", "properties",
                  "traits", "action", "subscribed", "path", "session_id"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=_fields(EVENT_FIELDS),
    kind=st.sampled_from(sorted(PAYLOAD_RECORD)),
    payload=_fields(PAYLOAD_FIELDS),
)
def test_record_from_json_encodes_or_refuses(event: dict, kind: str, payload: dict) -> None:
    # Half the time the envelope is well-formed, so the payload rules get exercised too.
    base = {"event_id": "e1", "type": kind, "customer_id": "c1", "timestamp": NOW,
            "source": "fuzz", "payload": payload}  # fmt: skip
    _encodes_or_refuses(lambda: [record_from_json({**base, **event}, CODEC)])
    _encodes_or_refuses(lambda: [record_from_json(base, CODEC)])


SEGMENT_FIELDS = ["type", "userId", "anonymousId", "messageId", "event", "timestamp",
                  "sentAt", "properties", "traits", "context", "previousId", "name"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=_fields(SEGMENT_FIELDS),
    call=st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "x"]),
    event=st.sampled_from(
        ["Product Viewed", "Product Added", "Order Completed", "Email Opened", "Signed Up", ""]
    ),
    properties=_fields([*PAYLOAD_FIELDS, "products", "revenue", "url"]),
    batch_context=st.none() | _fields(["library", "ip", "page", "campaign", "timezone"]),
    public=st.booleans(),
)
def test_segment_messages_encode_or_refuse(
    message: dict,
    call: str,
    event: str,
    properties: dict,
    batch_context: dict | None,
    public: bool,
) -> None:
    base = {"type": call, "userId": "u1", "messageId": "m1", "event": event,
            "timestamp": "2026-10-25T10:00:00Z", "properties": properties}  # fmt: skip

    def normalize(msg: Any) -> list[dict]:
        out = segment_to_json(
            msg, None, received_at=NOW, batch_context=batch_context, public=public
        )
        return [record_from_json(out, CODEC)]

    _encodes_or_refuses(lambda: normalize({**base, **message}))
    _encodes_or_refuses(lambda: normalize(base))


SHOPIFY_FIELDS = ["id", "email", "customer", "line_items", "total_price", "currency",
                  "created_at", "updated_at", "token", "accepts_marketing", "first_name",
                  "email_marketing_consent", "phone"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic=st.sampled_from(
        [
            "orders/create",
            "checkouts/create",
            "checkouts/update",
            "carts/create",
            "carts/update",
            "customers/create",
            "customers/update",
            "unknown/topic",
        ]
    ),
    body=_fields(SHOPIFY_FIELDS) | json_values,
)
def test_shopify_webhooks_encode_or_refuse(topic: str, body: Any) -> None:
    def normalize() -> list[dict]:
        return [record_from_json(e, CODEC) for e in shopify_to_json(topic, body, "w1", NOW)]

    _encodes_or_refuses(normalize)
