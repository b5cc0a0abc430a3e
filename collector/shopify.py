"""Shopify webhooks (``X-Shopify-Topic``) to cdpflow JSON events.

========================  ==========================================================
topic                     event(s)
========================  ==========================================================
``orders/create``         ``order_completed`` (line items, total, discount)
``checkouts/create``,     ``checkout_started`` (checkout token, cart token, items)
``checkouts/update``
``carts/create``,         ``custom`` named ``Cart Created`` / ``Cart Updated``: a cart
``carts/update``          webhook carries the whole cart, not what changed, so it is
                          recorded as a snapshot rather than invented item adds
``customers/create``,     ``identify``; plus ``preference_updated`` when the payload
``customers/update``      states the email-marketing consent
anything else             ``custom`` named ``shopify:<topic>``, never dropped
========================  ==========================================================

``event_id`` is ``shopify:<X-Shopify-Webhook-Id>`` (Shopify resends a failed delivery with
the same id, so retries dedupe downstream). The customer id is Shopify's customer id as
text; without a customer the checkout or cart token is the anonymous id.
"""

from __future__ import annotations

from typing import Any

from cdpflow.errors import EventValidationError

__all__ = ["shopify_to_json"]

Json = dict[str, Any]


def shopify_to_json(topic: str, body: Any, webhook_id: str, received_at: int) -> list[Json]:
    if not isinstance(body, dict):
        raise EventValidationError("invalid_event", "body: expected a JSON object")
    if not webhook_id:
        raise EventValidationError("missing_field", "X-Shopify-Webhook-Id: required")
    base = {
        "event_id": f"shopify:{webhook_id}",
        "received_at": received_at,
        "source": "shopify",
        "timestamp": _when(body, topic, received_at),
    }
    if topic == "orders/create":
        return [{**base, **_identity(body), "type": "order_completed", "payload": _order(body)}]
    if topic in ("checkouts/create", "checkouts/update"):
        payload = {
            "checkout_id": _text(body.get("token")),
            "cart_id": _text(body.get("cart_token")),
            "items": _items(body),
            "value": _money(body.get("total_price"), "total_price"),
            "currency": _text(body.get("currency")),
        }
        return [{**base, **_identity(body), "type": "checkout_started", "payload": payload}]
    if topic in ("carts/create", "carts/update"):
        name = "Cart Created" if topic == "carts/create" else "Cart Updated"
        props = {
            "cart_id": _text(body.get("token") or body.get("id")),
            "items": [_flat_item(i) for i in _items(body)],
        }
        identity = {"anonymous_id": f"shopify-cart:{_text(body.get('token') or body.get('id'))}"}
        return [
            {**base, **identity, "type": "custom", "payload": {"name": name, "properties": props}}
        ]
    if topic in ("customers/create", "customers/update"):
        return _customer(base, body)
    identity = _identity(body) if _has_identity(body) else {"anonymous_id": "shopify"}
    return [
        {
            **base,
            **identity,
            "type": "custom",
            "payload": {"name": f"shopify:{topic}", "properties": {"id": body.get("id")}},
        }
    ]


def _when(body: Json, topic: str, received_at: int) -> Any:
    key = "created_at" if topic.endswith("/create") else "updated_at"
    return body.get(key) or body.get("created_at") or received_at


def _has_identity(body: Json) -> bool:
    customer = body.get("customer")
    return bool(isinstance(customer, dict) and customer.get("id")) or bool(
        body.get("token") or body.get("cart_token")
    )


def _identity(body: Json) -> Json:
    customer = body.get("customer")
    if isinstance(customer, dict) and customer.get("id") is not None:
        return {"customer_id": _text(customer["id"])}
    token = body.get("cart_token") or body.get("token")
    if token:
        return {"anonymous_id": f"shopify-cart:{_text(token)}"}
    raise EventValidationError("missing_identity", "customer.id or token: required")


def _order(body: Json) -> Json:
    order_id = body.get("id", body.get("order_number"))
    if order_id is None:
        raise EventValidationError("missing_field", "id: required")
    revenue = _money(body.get("total_price"), "total_price")
    if revenue is None:
        raise EventValidationError("missing_field", "total_price: required")
    return {
        "order_id": _text(order_id),
        "items": _items(body),
        "revenue": revenue,
        "currency": _text(body.get("currency")),
        "discount": _money(body.get("total_discounts"), "total_discounts"),
    }


def _customer(base: Json, body: Json) -> list[Json]:
    if body.get("id") is None:
        raise EventValidationError("missing_field", "id: required")
    identity = {"customer_id": _text(body["id"])}
    address = body.get("default_address") if isinstance(body.get("default_address"), dict) else {}
    created = body.get("created_at")
    identify = {
        "email": _text(body.get("email")),
        "first_name": _text(body.get("first_name")),
        "last_name": _text(body.get("last_name")),
        "signup_date": created[:10] if isinstance(created, str) and len(created) >= 10 else None,
        "location": {
            "country": _text(address.get("country_code")),
            "region": _text(address.get("province")),
            "city": _text(address.get("city")),
        }
        if address
        else None,
        "traits": {k: body[k] for k in ("tags", "state", "verified_email") if k in body},
    }
    events = [{**base, **identity, "type": "identify", "payload": identify}]
    consent = _consent(body)
    if consent is not None:
        events.append(
            {
                **base,
                **identity,
                "event_id": f"{base['event_id']}:consent",
                "type": "preference_updated",
                "payload": {"email_consent": consent},
            }
        )
    return events


def _consent(body: Json) -> bool | None:
    """Shopify's ``email_marketing_consent.state`` (or the older ``accepts_marketing``)."""
    state = body.get("email_marketing_consent")
    if isinstance(state, dict) and isinstance(state.get("state"), str):
        return {"subscribed": True, "unsubscribed": False}.get(state["state"])
    accepts = body.get("accepts_marketing")
    return accepts if isinstance(accepts, bool) else None


def _items(body: Json) -> list[Json]:
    lines = body.get("line_items") or []
    if not isinstance(lines, list):
        raise EventValidationError("invalid_field", "line_items: expected an array")
    items = []
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            raise EventValidationError("invalid_field", f"line_items[{i}]: expected an object")
        pid = line.get("product_id") or line.get("variant_id") or line.get("sku")
        if pid is None:
            raise EventValidationError("missing_field", f"line_items[{i}].product_id: required")
        quantity = line.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise EventValidationError(
                "invalid_field", f"line_items[{i}].quantity: expected a whole number"
            )
        product = {
            "product_id": _text(pid),
            "name": _text(line.get("title") or line.get("name")),
            "category": _text(line.get("product_type")),
            "price": _money(line.get("price"), f"line_items[{i}].price"),
        }
        items.append({"product": product, "quantity": quantity})
    return items


def _flat_item(item: Json) -> Json:
    return {"product_id": item["product"]["product_id"], "quantity": item["quantity"]}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _money(value: Any, field: str) -> float | None:
    """Shopify sends amounts as decimal strings (``"19.99"``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EventValidationError("invalid_field", f"{field}: expected an amount")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EventValidationError("invalid_field", f"{field}: expected an amount") from None
