"""JSON events to ``cdp.Event`` records: times, types, payload validation, safe messages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import PAYLOAD_RECORD, parse_time, record_from_json

CODEC = default_codec()
SECRET_EMAIL = "jane.doe.4711@example.org"
SECRET_NAME = "Zebulon Quixotic-Marchetti"

MINIMAL_PAYLOADS: dict[str, dict[str, Any]] = {
    "identify": {},
    "page_viewed": {},
    "product_viewed": {"product": {"product_id": "sku-1"}},
    "cart_item_added": {"item": {"product": {"product_id": "sku-1"}}},
    "cart_item_removed": {"item": {"product": {"product_id": "sku-1"}, "quantity": 2}},
    "checkout_started": {},
    "order_completed": {"order_id": "o-1", "revenue": 59.9},
    "email_event": {"action": "opened"},
    "preference_updated": {},
    "form_submitted": {"form_id": "newsletter"},
    "custom": {"name": "wishlist_shared"},
}


def ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime, computed independently of the code under test."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "type": "product_viewed",
        "customer_id": "c-1",
        "timestamp": "2026-11-02T09:00:00Z",
        "source": "web",
        "payload": {"product": {"product_id": "sku-1", "category": "shoes"}},
    }
    base.update(overrides)
    return base


def test_every_event_type_has_a_minimal_payload_here() -> None:
    assert set(MINIMAL_PAYLOADS) == set(PAYLOAD_RECORD)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_RECORD))
def test_happy_path_for_each_event_type(event_type: str) -> None:
    payload = MINIMAL_PAYLOADS[event_type]
    record = record_from_json(event(type=event_type, payload=payload), CODEC)

    assert record["event_type"] == event_type
    assert record["event_id"] == "e-1"
    assert record["customer_id"] == "c-1"
    assert record["anonymous_id"] is None
    assert record["source"] == "web"
    assert record["event_time"] == ms(datetime(2026, 11, 2, 9, tzinfo=UTC))
    assert record["received_at"] == record["event_time"]
    assert record["sent_at"] is None
    assert record["payload"] == (PAYLOAD_RECORD[event_type], payload)

    # It is a valid cdp.Event: it encodes, and reads back into the right payload branch.
    name, decoded = CODEC.decode(CODEC.encode("cdp.Event", record))
    assert name == "cdp.Event"
    assert decoded["event_type"] == event_type
    branch_fields = {f["name"] for f in CODEC.schema(PAYLOAD_RECORD[event_type])["fields"]}
    assert set(decoded["payload"]) == branch_fields
    for key, value in payload.items():
        if not isinstance(value, dict):
            assert decoded["payload"][key] == value


def test_event_type_alias_and_default_source() -> None:
    obj = event()
    del obj["type"], obj["source"]
    obj["event_type"] = "product_viewed"
    record = record_from_json(obj, CODEC)
    assert record["event_type"] == "product_viewed"
    assert record["source"] == "json"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02T09:00:00Z", datetime(2026, 11, 2, 9, tzinfo=UTC)),
        ("2026-11-02T11:00:00+02:00", datetime(2026, 11, 2, 9, tzinfo=UTC)),
        ("2026-11-02T09:00:00.123Z", datetime(2026, 11, 2, 9, 0, 0, 123_000, tzinfo=UTC)),
        (
            "2026-03-29T01:30:00-05:30",
            datetime(2026, 3, 29, 1, 30, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_iso_times_with_offsets(text: str, expected: datetime) -> None:
    record = record_from_json(event(timestamp=text), CODEC)
    assert record["event_time"] == ms(expected)


def test_iso_offset_and_z_name_the_same_instant() -> None:
    z = record_from_json(event(timestamp="2026-11-02T09:00:00Z"), CODEC)
    plus2 = record_from_json(event(timestamp="2026-11-02T11:00:00+02:00"), CODEC)
    assert z["event_time"] == plus2["event_time"]


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2001-09-09T01:46:40Z", 1_000_000_000_000),  # the well-known billennium
        ("1970-01-01T01:00:00.001+01:00", 1),
        ("2199-12-31T23:59:59.999Z", 7_258_118_399_999),  # the last instant accepted
    ],
)
def test_known_epoch_values(text: str, expected_ms: int) -> None:
    assert parse_time(text, "timestamp") == expected_ms


@pytest.mark.parametrize(
    "value",
    [
        "1969-12-31T23:59:59.999Z",  # before state.bounds' first instant (was -1)
        "2200-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC: OverflowError from astimezone
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        -1,
        7_258_118_400_000,
        2**63,
    ],
)
def test_times_outside_the_bounds_are_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(EventValidationError, match=r"^sent_at: time out of range$") as info:
        parse_time(value, "sent_at")
    assert info.value.reason == "invalid_field"


def test_integer_milliseconds_are_taken_as_is() -> None:
    record = record_from_json(
        event(timestamp=1_793_000_000_000, received_at=1_793_000_000_250), CODEC
    )
    assert record["event_time"] == 1_793_000_000_000
    assert record["received_at"] == 1_793_000_000_250


def test_event_time_alias_and_sent_at() -> None:
    obj = event(sent_at="2026-11-02T08:59:59Z", received_at="2026-11-02T09:00:01Z")
    obj["event_time"] = obj.pop("timestamp")
    record = record_from_json(obj, CODEC)
    base = datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert record["event_time"] == ms(base)
    assert record["sent_at"] == ms(base - timedelta(seconds=1))
    assert record["received_at"] == ms(base + timedelta(seconds=1))


@pytest.mark.parametrize("field", ["timestamp", "received_at", "sent_at"])
def test_naive_iso_time_is_rejected(field: str) -> None:
    with pytest.raises(EventValidationError) as info:
        record_from_json(event(**{field: "2026-11-02T09:00:00"}), CODEC)
    assert info.value.reason == "invalid_field"
    assert field in str(info.value)
    assert "zone" in str(info.value)


@pytest.mark.parametrize("bad", ["last tuesday at noon", True, 1.5e12, [1], {"ms": 1}])
def test_non_time_values_are_rejected_without_echo(bad: Any) -> None:
    with pytest.raises(EventValidationError) as info:
        record_from_json(event(timestamp=bad), CODEC)
    assert info.value.reason == "invalid_field"
    assert str(info.value).startswith("timestamp:")
    assert "tuesday" not in str(info.value)


def test_missing_timestamp() -> None:
    obj = event()
    del obj["timestamp"]
    with pytest.raises(EventValidationError) as info:
        record_from_json(obj, CODEC)
    assert info.value.reason == "missing_field"
    assert "timestamp" in str(info.value)


def test_unknown_type_is_rejected_without_echo() -> None:
    with pytest.raises(EventValidationError) as info:
        record_from_json(event(type="zz_secret_kind"), CODEC)
    assert info.value.reason == "invalid_field"
    assert "type" in str(info.value)
    assert "zz_secret_kind" not in str(info.value)


def test_missing_type_is_rejected() -> None:
    obj = event()
    del obj["type"]
    with pytest.raises(EventValidationError, match="type"):
        record_from_json(obj, CODEC)


def test_not_an_object_is_rejected() -> None:
    with pytest.raises(EventValidationError) as info:
        record_from_json(["not", "an", "object"], CODEC)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_event"


def test_missing_product_id_names_the_field_and_not_the_values() -> None:
    payload = {"product": {"name": SECRET_NAME, "category": SECRET_EMAIL}}
    with pytest.raises(EventValidationError) as info:
        record_from_json(event(payload=payload), CODEC)
    message = str(info.value)
    assert info.value.reason == "schema_mismatch"
    assert "product_id" in message
    assert SECRET_NAME not in message
    assert SECRET_EMAIL not in message
    assert "Zebulon" not in message


def test_wrongly_typed_field_names_it_and_not_the_values() -> None:
    payload = {"email": SECRET_EMAIL, "first_name": SECRET_NAME, "age": "forty-two"}
    with pytest.raises(EventValidationError) as info:
        record_from_json(event(type="identify", payload=payload), CODEC)
    message = str(info.value)
    assert "age" in message
    assert "forty-two" not in message
    assert SECRET_EMAIL not in message
    assert SECRET_NAME not in message


def test_missing_event_id_is_a_schema_mismatch_naming_it() -> None:
    obj = event()
    del obj["event_id"]
    with pytest.raises(EventValidationError) as info:
        record_from_json(obj, CODEC)
    assert info.value.reason == "schema_mismatch"
    assert "event_id" in str(info.value)


def test_traits_with_non_string_values_are_json_encoded() -> None:
    traits = {
        "plan": "gold",
        "vip": True,
        "orders": 3,
        "ratio": 0.5,
        "tags": ["a", "b"],
        "meta": {"x": 1},
        "nothing": None,
    }
    record = record_from_json(event(type="identify", payload={"traits": traits}), CODEC)
    encoded = record["payload"][1]["traits"]

    assert set(encoded) == set(traits)
    assert all(isinstance(v, str) for v in encoded.values())
    assert encoded["plan"] == "gold"  # strings stay as they are, not "\"gold\""
    for key, value in traits.items():
        if not isinstance(value, str):
            assert json.loads(encoded[key]) == value, key
    assert encoded["vip"] == "true"
    assert encoded["nothing"] == "null"
    _, decoded = CODEC.decode(CODEC.encode("cdp.Event", record))
    assert decoded["payload"]["traits"] == encoded


def test_custom_properties_are_json_encoded_too() -> None:
    payload = {"name": "n", "properties": {"count": 2, "label": "x"}}
    record = record_from_json(event(type="custom", payload=payload), CODEC)
    assert record["payload"][1]["properties"] == {"count": "2", "label": "x"}


def test_input_payload_is_not_mutated() -> None:
    payload = {"traits": {"vip": True}}
    record_from_json(event(type="identify", payload=payload), CODEC)
    assert payload == {"traits": {"vip": True}}


def test_signup_date_iso_string_becomes_a_date() -> None:
    payload = {"signup_date": "2024-02-29"}
    record = record_from_json(event(type="identify", payload=payload), CODEC)
    assert record["payload"][1]["signup_date"] == date(2024, 2, 29)


def test_bad_signup_date_names_the_field_without_echo() -> None:
    payload = {"signup_date": "2024-02-30"}
    with pytest.raises(EventValidationError) as info:
        record_from_json(event(type="identify", payload=payload), CODEC)
    assert "payload.signup_date" in str(info.value)
    assert "2024-02-30" not in str(info.value)


@pytest.mark.parametrize("payload", ["abc", [1, 2]])
def test_payload_that_is_not_an_object_is_a_validation_error(payload: Any) -> None:
    with pytest.raises(EventValidationError, match="payload"):
        record_from_json(event(payload=payload), CODEC)


def test_traits_that_are_not_an_object_are_a_validation_error() -> None:
    with pytest.raises(EventValidationError, match="traits"):
        record_from_json(event(type="identify", payload={"traits": ["vip"]}), CODEC)


@pytest.mark.parametrize(
    ("where", "payload"),
    [
        ("payload.product", {"product": {"product_id": "sku-1",
                                         "image_url": "javascript:alert(1)"}}),
        ("payload.item.product", {"item": {"product": {"product_id": "sku-1",
                                                       "image_url": "data:image/png;base64,AA"}}}),
        ("payload.items[0].product", {"order_id": "o-1", "items": [
            {"product": {"product_id": "sku-1", "image_url": "/img/1.jpg"}, "quantity": 1}]}),
    ],
)  # fmt: skip
def test_an_image_url_that_is_not_absolute_http_is_refused_naming_the_field(where, payload):
    # The same rule as the collector's (state.image_url): it would become an <img src>.
    kind = {"payload.product": "product_viewed", "payload.item.product": "cart_item_added"}
    with pytest.raises(EventValidationError) as err:
        record_from_json(event(type=kind.get(where, "order_completed"), payload=payload), CODEC)
    assert err.value.reason == "invalid_field"
    assert str(err.value).endswith(f"{where}.image_url: not an absolute http(s) URL")
    assert "javascript" not in str(err.value)
    assert "data:" not in str(err.value)


def test_an_absolute_image_url_is_kept() -> None:
    url = "https://cdn.shop.example/p/sku-1.jpg"
    payload = {"product": {"product_id": "sku-1", "image_url": url}}
    record = record_from_json(event(payload=payload), CODEC)
    assert record["payload"][1]["product"]["image_url"] == url
