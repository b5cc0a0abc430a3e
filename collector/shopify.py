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

``event_id`` names the resource and its version, never the delivery:
``shopify:<topic>:<resource id>`` for a ``*/create`` topic (one order, one
``order_completed``) and ``shopify:<topic>:<resource id>:<updated_at>`` for the others
(one event per state of the resource); a body without its id or ``updated_at`` uses a
digest of the body instead. The resource id is the order's or customer's ``id``, the
checkout's or cart's ``token``; Shopify's ids are unique across shops. So a retried
delivery, and a captured signed body replayed with a fresh ``X-Shopify-Webhook-Id`` (the
signature covers the body only, see :mod:`collector.signatures`), give the event of the
first delivery again, which the dataflow's dedupe drops. A body that is plainly another
resource than its (unsigned) topic names is refused (``invalid_event``): a customer never
has ``line_items``, a checkout or cart no ``financial_status``, an order or cart no
``abandoned_checkout_url``.

The customer id is Shopify's customer id as text; without a customer the checkout or cart
token is the anonymous id. Amounts must be finite and within ``state.bounds.MAX_AMOUNT``,
quantities Avro ``int`` s, times and dates within ``state.bounds`` (``invalid_field``
naming the Shopify field). A line item's image (``image_url``, or an ``image`` URL or
object, when the payload has one) must be an absolute http(s) URL, as Shopify's CDN
gives; another is refused the same way (:mod:`state.image_url`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from cdpflow.errors import EventValidationError
from cdpflow.json_events import parse_time
from state.bounds import amount_problem
from state.image_url import http_url

__all__ = ["shopify_to_json"]

Json = dict[str, Any]


def shopify_to_json(topic: str, body: Any, webhook_id: str, received_at: int) -> list[Json]:
    if not isinstance(body, dict):
        raise EventValidationError("invalid_event", "body: expected a JSON object")
    if not webhook_id:  # every real delivery has one; it no longer names the event
        raise EventValidationError("missing_field", "X-Shopify-Webhook-Id: required")
    _check_resource(topic, body)
    base = {
        "event_id": _event_id(topic, body),
        "received_at": received_at,
        "source": "shopify",
        "timestamp": _when(body, topic, received_at),
    }
    if topic == "orders/create":
        return [{**base, **_identity(body), "type": "order_completed", "payload": _order(body)}]
    if topic in ("checkouts/create", "checkouts/update"):
        payload = {
            "checkout_id": _text(body.get("token"), "token"),
            "cart_id": _text(body.get("cart_token"), "cart_token"),
            "items": _items(body),
            "value": _money(body.get("total_price"), "total_price"),
            "currency": _text(body.get("currency"), "currency"),
        }
        return [{**base, **_identity(body), "type": "checkout_started", "payload": payload}]
    if topic in ("carts/create", "carts/update"):
        name = "Cart Created" if topic == "carts/create" else "Cart Updated"
        props = {
            "cart_id": _text(body.get("token") or body.get("id"), "token"),
            "items": [_flat_item(i) for i in _items(body)],
        }
        identity = {
            "anonymous_id": f"shopify-cart:{_text(body.get('token') or body.get('id'), 'token')}"
        }
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


#: Fields only another resource has, by topic prefix (the topic header is not signed).
_FOREIGN_FIELDS = {
    "orders/": ("abandoned_checkout_url",),
    "checkouts/": ("financial_status",),
    "carts/": ("financial_status", "abandoned_checkout_url"),
    "customers/": ("line_items",),
}


def _check_resource(topic: str, body: Json) -> None:
    for prefix, fields in _FOREIGN_FIELDS.items():
        if topic.startswith(prefix):
            for name in fields:
                if name in body:
                    raise EventValidationError(
                        "invalid_event", f"{name}: not a field of a {prefix[:-1]} body"
                    )


def _event_id(topic: str, body: Json) -> str:
    """The resource (and for a change, its version) the delivery is about: see above."""
    key = body.get("token") if topic.startswith(("checkouts/", "carts/")) else body.get("id")
    resource = _text(key if key is not None else body.get("id"), "id")
    version = None if topic.endswith("/create") else _text(body.get("updated_at"), "updated_at")
    if resource is None or (version is None and not topic.endswith("/create")):
        try:
            text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes
            raise EventValidationError("invalid_event", "body: nested too deeply") from None
        return f"shopify:{topic}:h-{hashlib.sha256(text).hexdigest()[:32]}"
    return (
        f"shopify:{topic}:{resource}"
        if version is None
        else f"shopify:{topic}:{resource}:{version}"
    )


def _when(body: Json, topic: str, received_at: int) -> int:
    key = "created_at" if topic.endswith("/create") else "updated_at"
    for name in (key, "created_at"):
        value = body.get(name)
        if value:
            return parse_time(value, name)
    return received_at


def _has_identity(body: Json) -> bool:
    customer = body.get("customer")
    return bool(isinstance(customer, dict) and customer.get("id")) or bool(
        body.get("token") or body.get("cart_token")
    )


def _identity(body: Json) -> Json:
    customer = body.get("customer")
    if isinstance(customer, dict) and customer.get("id") is not None:
        return {"customer_id": _text(customer["id"], "customer.id")}
    token = body.get("cart_token") or body.get("token")
    if token:
        return {"anonymous_id": f"shopify-cart:{_text(token, 'token')}"}
    raise EventValidationError("missing_identity", "customer.id or token: required")


def _order(body: Json) -> Json:
    order_id = body.get("id", body.get("order_number"))
    if order_id is None:
        raise EventValidationError("missing_field", "id: required")
    revenue = _money(body.get("total_price"), "total_price")
    if revenue is None:
        raise EventValidationError("missing_field", "total_price: required")
    return {
        "order_id": _text(order_id, "id"),
        "items": _items(body),
        "revenue": revenue,
        "currency": _text(body.get("currency"), "currency"),
        "discount": _money(body.get("total_discounts"), "total_discounts"),
    }


def _customer(base: Json, body: Json) -> list[Json]:
    if body.get("id") is None:
        raise EventValidationError("missing_field", "id: required")
    identity = {"customer_id": _text(body["id"], "id")}
    address = body.get("default_address") if isinstance(body.get("default_address"), dict) else {}
    created = body.get("created_at")
    identify = {
        "email": _text(body.get("email"), "email"),
        "first_name": _text(body.get("first_name"), "first_name"),
        "last_name": _text(body.get("last_name"), "last_name"),
        "signup_date": created[:10] if isinstance(created, str) and len(created) >= 10 else None,
        "location": {
            "country": _text(address.get("country_code"), "default_address.country_code"),
            "region": _text(address.get("province"), "default_address.province"),
            "city": _text(address.get("city"), "default_address.city"),
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
        if not -(2**31) <= quantity < 2**31:  # an Avro int
            raise EventValidationError("invalid_field", f"line_items[{i}].quantity: out of range")
        product = {
            "product_id": _text(pid, f"line_items[{i}].product_id"),
            "name": _text(line.get("title") or line.get("name"), f"line_items[{i}].title"),
            "category": _text(line.get("product_type"), f"line_items[{i}].product_type"),
            "price": _money(line.get("price"), f"line_items[{i}].price"),
            "image_url": _image(line, f"line_items[{i}]"),
        }
        items.append({"product": product, "quantity": quantity})
    return items


def _image(line: Json, where: str) -> str | None:
    """A line item's image, when the payload has one: ``image_url``, or ``image`` as a URL
    or as Shopify's image object (``src``, or ``url`` in newer APIs). Any other shape is no
    image; a URL that is not absolute http(s) is refused (:mod:`state.image_url`)."""
    field, value = f"{where}.image_url", line.get("image_url")
    if value is None:
        field, value = f"{where}.image", line.get("image")
        if isinstance(value, dict):
            key = "src" if value.get("src") else "url"
            field, value = f"{where}.image.{key}", value.get(key)
    if not isinstance(value, str) or not value:
        return None
    url = http_url(value)
    if url is None:
        raise EventValidationError("invalid_field", f"{field}: not an absolute http(s) URL")
    return url


def _flat_item(item: Json) -> Json:
    return {"product_id": item["product"]["product_id"], "quantity": item["quantity"]}


def _text(value: Any, field: str) -> str | None:
    """A string, or a number as text; an object or array (whose text could be anything,
    or too deep to write) is refused."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # a bool too, as before: str(True)
        return str(value)
    raise EventValidationError("invalid_field", f"{field}: expected a string or a number")


def _money(value: Any, field: str) -> float | None:
    """Shopify sends amounts as decimal strings (``"19.99"``); ``"NaN"``, ``"Infinity"``,
    ``"1e400"`` and amounts beyond ``MAX_AMOUNT`` are refused, though ``float()`` reads them."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EventValidationError("invalid_field", f"{field}: expected an amount")
    try:
        amount = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond a double
        raise EventValidationError("invalid_field", f"{field}: expected an amount") from None
    problem = amount_problem(amount)
    if problem is not None:
        raise EventValidationError("invalid_field", f"{field}: {problem}")
    return amount
