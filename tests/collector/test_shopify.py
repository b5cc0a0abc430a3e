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
    assert r["event_id"] == "shopify:wh-1"
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
    assert prefs["event_id"] == "shopify:wh-1:consent"
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
