"""Shopify webhook payloads -> cdpflow JSON events, validated by record_from_json."""

from __future__ import annotations

from typing import Any

import pytest

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import parse_time, record_from_json
from collector.shopify import shopify_to_json

RECEIVED = 1_790_000_000_000

ORDER = {
    "id": 820982911946154508,
    "created_at": "2026-09-20T10:00:00-04:00",
    "currency": "USD",
    "total_price": "199.65",
    "total_discounts": "5.00",
    "email": "jon@example.com",
    "customer": {"id": 115310627314723954, "email": "jon@example.com"},
    "line_items": [
        {
            "product_id": 632910392,
            "title": "IPod Nano",
            "price": "199.00",
            "quantity": 1,
            "product_type": "music",
        }
    ],
}


def records(topic: str, body: dict[str, Any], webhook_id: str = "wh-1") -> list[dict[str, Any]]:
    events = shopify_to_json(topic, body, webhook_id, RECEIVED)
    out = [record_from_json(e, default_codec()) for e in events]
    return [{**r, "payload": r["payload"][1]} for r in out]


def test_order_create_is_order_completed() -> None:
    [r] = records("orders/create", ORDER)
    assert r["event_type"] == "order_completed"
    assert r["event_id"] == "shopify:orders/create:820982911946154508"  # the order, not wh-1
    assert r["customer_id"] == "115310627314723954"
    assert r["source"] == "shopify"
    assert r["event_time"] == parse_time("2026-09-20T14:00:00Z", "t")
    assert r["payload"]["revenue"] == 199.65
    assert r["payload"]["discount"] == 5.0
    assert r["payload"]["items"][0]["product"]["product_id"] == "632910392"
    assert r["payload"]["items"][0]["product"]["category"] == "music"


def test_checkout_without_customer_uses_the_cart_token() -> None:
    body = {
        "token": "chk-1",
        "cart_token": "cart-1",
        "total_price": "10.00",
        "updated_at": "2026-09-20T10:00:00Z",
        "line_items": [],
    }
    [r] = records("checkouts/update", body)
    assert r["event_type"] == "checkout_started"
    assert r["anonymous_id"] == "shopify-cart:cart-1"
    assert r["payload"]["checkout_id"] == "chk-1"
    assert r["payload"]["value"] == 10.0


def test_cart_update_is_a_custom_snapshot_not_invented_adds() -> None:
    body = {
        "token": "cart-9",
        "updated_at": "2026-09-20T10:00:00Z",
        "line_items": [{"product_id": 1, "quantity": 3, "price": "2.00"}],
    }
    [r] = records("carts/update", body)
    assert r["event_type"] == "custom"
    assert r["payload"]["name"] == "Cart Updated"
    assert r["payload"]["properties"]["items"] == '[{"product_id":"1","quantity":3}]'


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({"email_marketing_consent": {"state": "unsubscribed"}}, False),
        ({"email_marketing_consent": {"state": "subscribed"}}, True),
        ({"accepts_marketing": True}, True),
    ],
)
def test_customer_update_is_identify_plus_consent(consent: dict[str, Any], expected: bool) -> None:
    body = {
        "id": 42,
        "email": "a@example.com",
        "first_name": "A",
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-09-20T10:00:00Z",
        "default_address": {"country_code": "DE", "city": "Berlin"},
        **consent,
    }
    identify, prefs = records("customers/update", body)
    assert identify["event_type"] == "identify"
    assert identify["customer_id"] == "42"
    assert identify["payload"]["email"] == "a@example.com"
    assert identify["payload"]["location"]["country"] == "DE"
    assert prefs["event_type"] == "preference_updated"
    assert identify["event_id"] == "shopify:customers/update:42:2026-09-20T10:00:00Z"
    assert prefs["event_id"] == f"{identify['event_id']}:consent"
    assert prefs["payload"]["email_consent"] is expected


def test_customer_without_stated_consent_is_identify_only() -> None:
    assert len(records("customers/create", {"id": 1, "created_at": "2026-01-01T00:00:00Z"})) == 1


def test_unknown_topic_is_kept_as_custom() -> None:
    [r] = records("products/update", {"id": 5, "updated_at": "2026-09-20T10:00:00Z"})
    assert r["event_type"] == "custom"
    assert r["payload"]["name"] == "shopify:products/update"


@pytest.mark.parametrize(
    ("topic", "body", "field"),
    [
        ("orders/create", {**ORDER, "total_price": "lots"}, "total_price"),
        ("orders/create", {**ORDER, "line_items": [{"title": "x"}]}, "line_items[0].product_id"),
        ("orders/create", {k: v for k, v in ORDER.items() if k != "customer"}, "customer.id"),
        ("customers/update", {"email": "x"}, "id"),
    ],
)
def test_errors_name_the_shopify_field(topic: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(EventValidationError) as info:
        shopify_to_json(topic, body, "wh", RECEIVED)
    assert str(info.value).startswith(field)


def test_webhook_id_is_required() -> None:
    with pytest.raises(EventValidationError, match="X-Shopify-Webhook-Id"):
        shopify_to_json("orders/create", ORDER, "", RECEIVED)


# --- replays: the event is the resource's, not the delivery's (issue 16) -----------------


def test_a_replayed_order_with_a_new_webhook_id_is_the_same_event() -> None:
    # The signature covers the body only: a captured order with a fresh X-Shopify-Webhook-Id
    # must map to the first delivery's event, which the dataflow's dedupe then drops.
    first = records("orders/create", ORDER, webhook_id="wh-1")
    replay = records("orders/create", ORDER, webhook_id="wh-attacker")
    assert first == replay
    other_order = records("orders/create", {**ORDER, "id": 1}, webhook_id="wh-1")
    assert other_order[0]["event_id"] != first[0]["event_id"]


def test_each_state_of_an_updated_resource_is_its_own_event() -> None:
    body = {"id": 42, "email": "a@example.com", "updated_at": "2026-09-20T10:00:00Z"}
    [one] = records("customers/update", body, webhook_id="w-1")
    [again] = records("customers/update", body, webhook_id="w-2")
    [later] = records("customers/update", {**body, "updated_at": "2026-09-21T10:00:00Z"})
    assert one["event_id"] == again["event_id"]
    assert later["event_id"] != one["event_id"]
    # Without updated_at, the body itself is the version.
    bare = {"id": 42, "email": "a@example.com"}
    [x] = records("customers/update", bare, webhook_id="w-1")
    [y] = records("customers/update", bare, webhook_id="w-2")
    [z] = records("customers/update", {**bare, "first_name": "B"})
    assert x["event_id"] == y["event_id"] != z["event_id"]
    # Checkouts and carts are named by their token.
    checkout = {"token": "chk-1", "total_price": "1", "updated_at": "2026-09-20T10:00:00Z"}
    [c] = records("checkouts/update", checkout, webhook_id="w-9")
    assert c["event_id"] == "shopify:checkouts/update:chk-1:2026-09-20T10:00:00Z"


@pytest.mark.parametrize(
    ("topic", "body", "field"),
    [
        ("customers/create", {**ORDER}, "line_items"),  # an order presented as a customer
        ("checkouts/create", {**ORDER, "financial_status": "paid"}, "financial_status"),
        ("carts/update", {**ORDER, "token": "t", "financial_status": "paid"}, "financial_status"),
        (
            "orders/create",
            {**ORDER, "abandoned_checkout_url": "https://x/"},
            "abandoned_checkout_url",
        ),
    ],
)
def test_a_body_of_another_resource_than_its_topic_is_refused(
    topic: str, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        shopify_to_json(topic, body, "wh", RECEIVED)
    assert info.value.reason == "invalid_event"
    assert str(info.value).startswith(field)


@pytest.mark.parametrize(
    "amount", ["NaN", "Infinity", "-Infinity", "1e400", "1e305", 1e305, 10**400, "1000000000.01"]
)
@pytest.mark.parametrize("where", ["total_price", "total_discounts", "line_items[0].price"])
def test_amounts_must_be_finite_and_bounded(amount: Any, where: str) -> None:
    body = {**ORDER, "line_items": [dict(ORDER["line_items"][0])]}
    if where.startswith("line_items"):
        body["line_items"][0]["price"] = amount
    else:
        body[where] = amount
    with pytest.raises(EventValidationError) as info:
        shopify_to_json("orders/create", body, "wh", RECEIVED)
    assert info.value.reason == "invalid_field"
    assert str(info.value).startswith(f"{where}: ")


@pytest.mark.parametrize("quantity", [2**31, -(2**31) - 1, 2**64])
def test_quantities_must_fit_an_avro_int(quantity: int) -> None:
    body = {**ORDER, "line_items": [{**ORDER["line_items"][0], "quantity": quantity}]}
    with pytest.raises(EventValidationError, match=r"^line_items\[0\]\.quantity: out of range"):
        shopify_to_json("orders/create", body, "wh", RECEIVED)


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z", 2**63],
)
def test_times_out_of_range_are_refused_naming_the_shopify_field(when: Any) -> None:
    with pytest.raises(EventValidationError, match=r"^created_at: time out of range$"):
        shopify_to_json("orders/create", {**ORDER, "created_at": when}, "wh", RECEIVED)
    update = {"id": 1, "updated_at": when}
    with pytest.raises(EventValidationError, match=r"^updated_at: time out of range$"):
        shopify_to_json("customers/update", update, "wh", RECEIVED)


@pytest.mark.parametrize("created", ["0001-01-01T00:00:00+01:00", "1899-12-31T00:00:00Z"])
def test_a_signup_date_out_of_range_is_refused(created: str) -> None:
    body = {"id": 1, "created_at": created, "updated_at": "2026-01-01T00:00:00Z"}
    [identify] = shopify_to_json("customers/update", body, "w", RECEIVED)
    with pytest.raises(EventValidationError, match=r"^payload\.signup_date: date out of range$"):
        record_from_json(identify, default_codec())


IMAGE = "https://cdn.shopify.com/s/files/1/0001/products/ipod.jpg"


@pytest.mark.parametrize(
    ("line", "kept"),
    [({"image_url": IMAGE}, IMAGE), ({"image": IMAGE}, IMAGE), ({"image": {"src": IMAGE}}, IMAGE),
     ({"image": {"url": IMAGE, "alt": "iPod"}}, IMAGE),
     ({"image": "//cdn.shopify.com/ipod.jpg"}, "https://cdn.shopify.com/ipod.jpg"),
     ({}, None), ({"image": None}, None), ({"image": {"id": 5}}, None), ({"image": 5}, None)],
)  # fmt: skip
def test_a_line_items_image_is_mapped_when_the_payload_has_one(line: dict, kept: str | None):
    body = {**ORDER, "line_items": [{**ORDER["line_items"][0], **line}]}
    [r] = records("orders/create", body)
    assert r["payload"]["items"][0]["product"]["image_url"] == kept


@pytest.mark.parametrize(
    ("line", "field"),
    [({"image_url": "javascript:alert(1)"}, "line_items[0].image_url"),
     ({"image": "data:image/png;base64,AAAA"}, "line_items[0].image"),
     ({"image": {"src": "/files/ipod.jpg"}}, "line_items[0].image.src")],
)  # fmt: skip
def test_an_image_that_is_not_absolute_http_is_refused_naming_the_field(line: dict, field: str):
    body = {**ORDER, "line_items": [{**ORDER["line_items"][0], **line}]}
    with pytest.raises(EventValidationError) as err:
        shopify_to_json("orders/create", body, "wh", RECEIVED)
    assert (err.value.reason, str(err.value)) == (
        "invalid_field",
        f"{field}: not an absolute http(s) URL",
    )
    assert "javascript" not in str(err.value)
