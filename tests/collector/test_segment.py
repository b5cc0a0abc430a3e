"""Segment messages -> cdpflow JSON events, checked all the way through record_from_json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import parse_time, record_from_json
from collector.segment import IDENTITY_EVENTS, _time, segment_to_json, segment_to_record

RECEIVED = 1_790_000_000_000
T0 = "2026-09-21T12:00:00Z"


def to_record(message: dict[str, Any], kind: str | None = "track", **kw: Any) -> dict[str, Any]:
    """The validated ``cdp.Event`` record, with ``payload`` unwrapped from its union branch."""
    event = segment_to_json(message, kind, received_at=RECEIVED, **kw)
    record = record_from_json(event, default_codec())
    return {**record, "payload": record["payload"][1]}


def ms(iso: str) -> int:
    from cdpflow.json_events import parse_time

    return parse_time(iso, "t")


def base(**extra: Any) -> dict[str, Any]:
    return {"userId": "c-1", "messageId": "m-1", **extra}


def test_clock_skew_is_corrected_as_segment_documents() -> None:
    # Device clock 10 minutes fast: it stamped the event at 12:00 and sent it at 12:00:30
    # by its own clock; the server received it at RECEIVED.
    msg = base(event="Signed Up", timestamp="2026-09-21T12:00:00Z", sentAt="2026-09-21T12:00:30Z")
    event = segment_to_json(msg, "track", received_at=RECEIVED)
    assert event["timestamp"] == RECEIVED - 30_000
    assert event["sent_at"] == ms("2026-09-21T12:00:30Z")
    assert event["received_at"] == RECEIVED


def test_batch_sent_at_applies_when_the_message_has_none() -> None:
    msg = base(event="X", timestamp="2026-09-21T12:00:00Z")
    event = segment_to_json(
        msg, "track", received_at=RECEIVED, batch_sent_at="2026-09-21T12:00:05Z"
    )
    assert event["timestamp"] == RECEIVED - 5_000


def test_without_sent_at_the_timestamp_is_kept_and_without_timestamp_received_at() -> None:
    kept = segment_to_json(base(event="X", timestamp=T0), "track", received_at=RECEIVED)
    assert kept["timestamp"] == ms(T0)
    now = segment_to_json(base(event="X"), "track", received_at=RECEIVED)
    assert now["timestamp"] == RECEIVED


@pytest.mark.parametrize(
    ("name", "props", "event_type"),
    [
        (
            "Product Viewed",
            {"product_id": "p1", "category": "shoes", "price": 10},
            "product_viewed",
        ),
        ("Product Added", {"product_id": "p1", "quantity": 2, "cart_id": "c"}, "cart_item_added"),
        ("Product Removed", {"sku": "p1"}, "cart_item_removed"),
        (
            "Checkout Started",
            {"order_id": "o1", "value": 20, "products": [{"product_id": "p1"}]},
            "checkout_started",
        ),
        (
            "Order Completed",
            {
                "order_id": "o1",
                "total": 20.5,
                "currency": "EUR",
                "products": [{"product_id": "p1", "price": 20.5}],
            },
            "order_completed",
        ),
        ("Email Opened", {"campaign_id": "cmp", "email_id": "e1"}, "email_event"),
        ("Form Submitted", {"form_id": "newsletter", "fields": {"size": 42}}, "form_submitted"),
        ("Wishlist Shared", {"anything": [1, 2]}, "custom"),
    ],
)
def test_track_names_map_to_event_types(name: str, props: dict[str, Any], event_type: str) -> None:
    record = to_record(base(event=name, properties=props))
    assert record["event_type"] == event_type
    assert record["event_id"] == "m-1"
    assert record["customer_id"] == "c-1"


def test_typed_payloads_carry_the_spec_fields() -> None:
    added = to_record(
        base(
            event="Product Added",
            properties={
                "product_id": "p1",
                "name": "Boot",
                "price": "59.9",
                "quantity": 2,
                "cart_id": "cart-9",
            },
        )
    )
    assert added["payload"] == {
        "cart_id": "cart-9",
        "item": {
            "product": {
                "product_id": "p1",
                "name": "Boot",
                "category": None,
                "price": 59.9,
                "currency": None,
                "image_url": None,
            },
            "quantity": 2,
        },
    }
    order = to_record(
        base(
            event="Order Completed",
            properties={
                "order_id": 77,
                "products": [{"product_id": "a", "price": 5, "quantity": 3}],
            },
        )
    )
    assert order["payload"]["order_id"] == "77"
    assert order["payload"]["revenue"] == 15.0  # no total: summed from the lines
    email = to_record(base(event="Email Link Clicked", properties={"link_url": "https://x"}))
    assert email["payload"]["action"] == "clicked"
    assert email["payload"]["link_url"] == "https://x"


def test_unknown_track_is_kept_as_custom_with_its_properties() -> None:
    record = to_record(base(event="Coupon Applied", properties={"code": "X", "pct": 10}))
    assert record["payload"] == {"name": "Coupon Applied", "properties": {"code": "X", "pct": "10"}}


def test_identify_maps_traits() -> None:
    record = to_record(
        base(
            traits={
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "L",
                "age": 36,
                "address": {"country": "GB", "city": "London"},
                "createdAt": "2024-03-01T10:00:00Z",
                "plan": "pro",
            }
        ),
        "identify",
    )
    p = record["payload"]
    assert (p["email"], p["first_name"], p["last_name"], p["age"]) == (
        "ada@example.com",
        "Ada",
        "L",
        36,
    )
    assert p["location"] == {"country": "GB", "region": None, "city": "London"}
    assert p["signup_date"].isoformat() == "2024-03-01"
    assert p["traits"] == {"plan": "pro"}


def test_identify_traits_may_come_in_context_as_rudderstack_sends_them() -> None:
    record = to_record(
        base(
            context={"traits": {"email": "r@example.com", "plan": "free"}}, traits={"plan": "pro"}
        ),
        "identify",
    )
    assert record["payload"]["email"] == "r@example.com"
    assert record["payload"]["traits"] == {"plan": "pro"}  # the top level wins


def test_page_and_context() -> None:
    record = to_record(
        {
            "anonymousId": "a-1",
            "messageId": "m",
            "name": "Home",
            "properties": {"path": "/"},
            "context": {
                "ip": "10.0.0.1",
                "userAgent": "UA",
                "locale": "de-DE",
                "page": {"url": "https://shop/", "referrer": "https://ref/"},
                "campaign": {"source": "news", "medium": "email"},
                "library": {"name": "analytics.js"},
            },
        },
        "page",
    )
    assert record["event_type"] == "page_viewed"
    assert record["anonymous_id"] == "a-1"
    assert record["customer_id"] is None
    assert record["payload"]["title"] == "Home"
    assert record["source"] == "web"
    ctx = record["context"]
    assert (ctx["ip"], ctx["page_url"], ctx["referrer"]) == (
        "10.0.0.1",
        "https://shop/",
        "https://ref/",
    )
    assert ctx["campaign"]["source"] == "news"


def test_client_ip_fills_a_missing_context_ip() -> None:
    event = segment_to_json(base(event="X"), "track", received_at=RECEIVED, client_ip="192.0.2.1")
    assert event["context"]["ip"] == "192.0.2.1"


def test_a_missing_message_id_is_derived_from_content_when_timestamped() -> None:
    msg = {"userId": "c", "event": "X", "timestamp": T0}
    first = segment_to_json(dict(msg), "track", received_at=RECEIVED)["event_id"]
    again = segment_to_json(dict(msg), "track", received_at=RECEIVED + 5)["event_id"]
    other = segment_to_json({**msg, "event": "Y"}, "track", received_at=RECEIVED)["event_id"]
    assert first == again != other
    untimed = segment_to_json({"userId": "c", "event": "X"}, "track", received_at=RECEIVED)
    assert untimed["event_id"].startswith("r-")


@pytest.mark.parametrize(
    ("message", "kind", "field", "reason"),
    [
        ({"event": "X"}, "track", "userId or anonymousId", "missing_identity"),
        (base(), "track", "event", "missing_field"),
        (
            base(event="Order Completed", properties={"total": 1}),
            "track",
            "properties.order_id",
            "missing_field",
        ),
        (
            base(event="Product Viewed", properties={"product_id": "p", "price": "cheap"}),
            "track",
            "properties.price",
            "invalid_field",
        ),
        (
            base(event="Product Viewed", properties={}),
            "track",
            "properties.product_id",
            "missing_field",
        ),
        (base(event="X", timestamp="yesterday"), "track", "timestamp", "invalid_field"),
        (base(type="screenshot"), None, "type", "invalid_field"),
        (base(traits={"age": "old"}), "identify", "traits.age", "invalid_field"),
        (base(event="X", properties=[1]), "track", "properties", "invalid_field"),
    ],
)
def test_errors_name_the_segment_field(
    message: Any, kind: str | None, field: str, reason: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        segment_to_json(message, kind, received_at=RECEIVED)
    assert str(info.value).startswith(field)
    assert info.value.reason == reason


def test_error_messages_do_not_echo_values() -> None:
    msg = base(event="Product Viewed", properties={"product_id": "p", "price": "ada@example.com"})
    with pytest.raises(EventValidationError) as info:
        segment_to_json(msg, "track", received_at=RECEIVED)
    assert "ada@example.com" not in str(info.value)


def test_screen_group_and_alias_are_kept() -> None:
    assert to_record(base(name="Settings"), "screen")["event_type"] == "page_viewed"
    group = to_record(base(type="group", groupId="g-1"), None)
    assert group["payload"]["name"] == "group"
    assert group["payload"]["properties"]["groupId"] == "g-1"
    assert to_record(base(type="alias", previousId="a-1"), None)["payload"]["name"] == "alias"


_SPECS = ["seconds", "milliseconds", "microseconds"]
_ZONES = [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]


@st.composite
def device_times(draw: st.DrawFn) -> str:
    """SDK timestamps (analytics.js: milliseconds and Z; Python's isoformat: +00:00),
    other zones, and some with one character replaced."""
    when = draw(st.datetimes(timezones=st.sampled_from(_ZONES)))
    text = when.isoformat(timespec=draw(st.sampled_from(_SPECS)))
    if draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    if draw(st.booleans()):
        i = draw(st.integers(0, len(text) - 1))
        other = draw(st.sampled_from(["0", "5", "9", ":", ".", "Z", "+", "-", " ", "\u0663"]))
        text = text[:i] + other + text[i + 1 :]
    return text


@settings(max_examples=500, deadline=None)
@given(value=device_times())
def test_device_times_fast_path_agrees_with_parse_time(value: str) -> None:
    # The collector's fast path for SDK timestamps must take exactly what parse_time
    # takes, with the same milliseconds, and refuse the rest the same way.
    try:
        expected: int | str = parse_time(value, "timestamp")
    except EventValidationError as exc:
        expected = exc.reason
    try:
        got: int | str = _time(value, "timestamp")
    except EventValidationError as exc:
        got = exc.reason
    assert got == expected


def test_device_times_fast_path_examples() -> None:
    assert _time("2026-11-01T10:00:12.345Z", "t") == parse_time("2026-11-01T10:00:12.345Z", "t")
    assert _time("1970-01-01T00:00:00.500Z", "t") == 500
    assert _time("1970-01-01T00:00:00.999999+00:00", "t") == 999  # floor, as parse_time
    # Before 1970 (state.bounds' first instant), as parse_time: refused.
    with pytest.raises(EventValidationError, match=r"^t: time out of range$"):
        _time("1969-12-31T23:59:59.500Z", "t")
    with pytest.raises(EventValidationError, match="timestamp"):
        _time("2026-11-01T10:00:60.000Z", "timestamp")


# --- a public write key --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (base(previousId="victim"), "alias"),
        (base(type="alias", previousId="victim"), None),
        *[
            (base(event=name, properties={"previousId": "victim"}), "track")
            for name in sorted(IDENTITY_EVENTS)
        ],
    ],
)
def test_a_public_key_may_not_merge_identities(message: dict[str, Any], kind: str | None) -> None:
    with pytest.raises(EventValidationError) as info:
        segment_to_record(message, kind, received_at=RECEIVED, public=True)
    assert info.value.reason == "forbidden_for_public_key"
    assert str(info.value).startswith(("type: alias", "event:"))
    assert "victim" not in str(info.value)
    # A server key still may (state.alias applies it downstream).
    assert segment_to_record(message, kind, received_at=RECEIVED)["event_type"] == "custom"


def test_a_public_key_cannot_date_an_event_after_its_receipt() -> None:
    later = datetime.fromtimestamp((RECEIVED + 23 * 3600_000) / 1000, tz=UTC).isoformat()
    for field in ("timestamp", "originalTimestamp"):
        msg = base(event="X", **{field: later})
        assert to_record(msg, "track")["event_time"] == RECEIVED + 23 * 3600_000
        clamped = segment_to_record(msg, "track", received_at=RECEIVED, public=True)
        assert clamped["event_time"] == RECEIVED
    # Skew correction may also put it later (device sent it "before" it happened).
    skewed = base(event="X", timestamp=T0, sentAt="2000-01-01T00:00:00Z")
    assert (
        segment_to_record(skewed, "track", received_at=RECEIVED, public=True)["event_time"]
        == RECEIVED
    )
    earlier = base(event="X", timestamp=T0)
    assert segment_to_record(earlier, "track", received_at=RECEIVED, public=True)[
        "event_time"
    ] == ms(T0)
