"""JSON events (sample files, ``rules test --events``, tools) to ``cdp.Event`` records.

The JSON shape mirrors the Avro envelope, with friendlier names::

    {"event_id": "e-1", "type": "product_viewed", "customer_id": "c-1",
     "timestamp": "2026-11-02T09:00:00Z", "source": "web",
     "payload": {"product": {"product_id": "sku-1", "category": "shoes"}}}

``timestamp`` (or ``event_time``) and ``received_at`` take ISO-8601 with a zone or
milliseconds since the epoch; ``received_at`` defaults to the event time. Errors name
the field and never echo its value.

What arrives here may be hostile (signed webhooks, JSON events): every time must lie in
:mod:`state.bounds`' range (1970 up to 2200), a ``signup_date`` within its dates, and
every amount (``value``, ``revenue``, ``discount``, each product's ``price``) be finite
and at most ``MAX_AMOUNT``; else ``EventValidationError`` (``invalid_field``) names the
field. Nothing downstream then overflows on them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from fastavro.validation import ValidationError, validate

from cdpflow.codec import AvroCodec
from cdpflow.errors import EventValidationError
from flows.decode import to_ms
from state.bounds import amount_problem, date_problem, time_problem
from state.image_url import http_url

__all__ = [
    "PAYLOAD_RECORD",
    "check_amount",
    "normalize_json",
    "parse_time",
    "record_from_json",
    "utc_date",
]

PAYLOAD_RECORD = {
    "identify": "cdp.Identify",
    "page_viewed": "cdp.PageViewed",
    "product_viewed": "cdp.ProductViewed",
    "cart_item_added": "cdp.CartItemChanged",
    "cart_item_removed": "cdp.CartItemChanged",
    "checkout_started": "cdp.CheckoutStarted",
    "order_completed": "cdp.OrderCompleted",
    "email_event": "cdp.EmailEvent",
    "preference_updated": "cdp.PreferenceUpdated",
    "form_submitted": "cdp.FormSubmitted",
    "custom": "cdp.CustomEvent",
}
_JSON_VALUED_MAPS = {"traits", "properties"}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def parse_time(value: Any, field: str) -> int:
    """ISO-8601 with a zone, or integer milliseconds, to milliseconds since the epoch.

    Refused (``invalid_field``, naming ``field``) outside :mod:`state.bounds`' times, so
    ``0001-01-01T00:00:00+01:00`` is an error here, never an ``OverflowError`` later.
    """
    ms = _instant(value, field)
    if time_problem(ms) is not None:
        raise EventValidationError("invalid_field", f"{field}: time out of range")
    return ms


def utc_date(value: Any, field: str) -> date:
    """The UTC date of an ISO-8601 time with a zone or of integer milliseconds, within
    :mod:`state.bounds`' dates (``invalid_field`` naming ``field`` otherwise)."""
    days = _instant(value, field) // 86_400_000
    try:
        day = date.fromordinal(_EPOCH_ORDINAL + days)
    except (ValueError, OverflowError):  # beyond date's years 1-9999
        raise EventValidationError("invalid_field", f"{field}: date out of range") from None
    if date_problem(day) is not None:
        raise EventValidationError("invalid_field", f"{field}: date out of range")
    return day


def check_amount(value: Any, field: str) -> None:
    """Refuse a number that is not a finite amount within ``state.bounds.MAX_AMOUNT``
    (``invalid_field`` naming ``field``); other types are the schema's to judge."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problem = amount_problem(value)
        if problem is not None:
            raise EventValidationError("invalid_field", f"{field}: {problem}")


def _instant(value: Any, field: str) -> int:
    """Milliseconds since the epoch, unbounded; exact integer maths (an aware
    difference, which cannot overflow where ``astimezone`` would at years 1 and 9999)."""
    if isinstance(value, bool):
        raise EventValidationError("invalid_field", f"{field}: expected a time, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise EventValidationError("invalid_field", f"{field}: not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            raise EventValidationError("invalid_field", f"{field}: time has no zone offset")
        return to_ms(parsed)
    raise EventValidationError("invalid_field", f"{field}: expected a time")


def normalize_json(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``cdp.Event`` record of one JSON event, not yet checked against the schema.

    Raises ``EventValidationError`` naming the field for what it converts (type, times,
    payload shape); :func:`record_from_json` adds the schema check. For callers that check
    the schema another way, e.g. while encoding.
    """
    if not isinstance(obj, dict):
        raise EventValidationError("invalid_event", "an event must be a JSON object")
    event_type = obj.get("type") or obj.get("event_type")
    if not isinstance(event_type, str) or event_type not in PAYLOAD_RECORD:  # a list: no hash
        raise EventValidationError("invalid_field", "type: unknown event type")
    when = obj.get("timestamp", obj.get("event_time"))
    if when is None:
        raise EventValidationError("missing_field", "timestamp: required")
    event_time = parse_time(when, "timestamp")
    payload = obj.get("payload") or {}
    if not isinstance(payload, dict):
        raise EventValidationError("invalid_field", "payload: expected an object")
    payload = dict(payload)
    for name in _JSON_VALUED_MAPS & payload.keys():
        values = payload[name] or {}
        if not isinstance(values, dict):
            raise EventValidationError("invalid_field", f"payload.{name}: expected an object")
        try:
            payload[name] = {k: _as_text(v) for k, v in values.items()}
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits (not from JSON text)
            raise EventValidationError(
                "invalid_field", f"payload.{name}: a value is not JSON"
            ) from None
    if "signup_date" in payload:
        payload["signup_date"] = _signup_date(payload["signup_date"])
    _check_amounts(payload)
    return {
        "event_id": obj.get("event_id"),
        "event_type": event_type,
        "customer_id": obj.get("customer_id"),
        "anonymous_id": obj.get("anonymous_id"),
        "event_time": event_time,
        "sent_at": None if obj.get("sent_at") is None else parse_time(obj["sent_at"], "sent_at"),
        "received_at": parse_time(obj.get("received_at", event_time), "received_at"),
        "source": obj.get("source") or "json",
        "context": obj.get("context"),
        "payload": (PAYLOAD_RECORD[event_type], payload),
    }


def record_from_json(obj: dict[str, Any], codec: AvroCodec) -> dict[str, Any]:
    """Normalize and validate one JSON event; raise ``EventValidationError`` naming the field."""
    record = normalize_json(obj)
    schema = codec.schema("cdp.Event")
    # The quiet check first: raise_errors=True builds an error object for every union branch
    # it rejects, even on valid events (3-6x the cost). Only a failure pays for the detail.
    if validate(record, schema, raise_errors=False):
        return record
    try:
        validate(record, schema, raise_errors=True)
    except ValidationError as exc:
        fields = sorted({str(e.field) for e in exc.errors if getattr(e, "field", None)})
        where = ", ".join(fields) or "record"
        raise EventValidationError(
            "schema_mismatch", f"does not fit cdp.Event at: {where}"
        ) from None
    return record


def _signup_date(value: Any) -> Any:
    """``payload.signup_date``: an ISO date, a ``date`` or Avro's days since the epoch,
    within the accepted dates; other types are the schema's to judge."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise EventValidationError(
                "invalid_field", "payload.signup_date: not an ISO date"
            ) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            value = date.fromordinal(_EPOCH_ORDINAL + value)
        except (ValueError, OverflowError):
            raise EventValidationError(
                "invalid_field", "payload.signup_date: date out of range"
            ) from None
    if isinstance(value, date) and date_problem(value) is not None:
        raise EventValidationError("invalid_field", "payload.signup_date: date out of range")
    return value


def _check_amounts(payload: dict[str, Any]) -> None:
    """Every amount of the payload records (``cdp.CheckoutStarted``, ``cdp.OrderCompleted``,
    the products of ``cdp.ProductViewed`` and ``cdp.CartItemChanged``)."""
    for name in ("value", "revenue", "discount"):
        check_amount(payload.get(name), f"payload.{name}")
    _check_price(payload.get("product"), "payload.product")
    item = payload.get("item")
    if isinstance(item, dict):
        _check_price(item.get("product"), "payload.item.product")
    items = payload.get("items")
    if isinstance(items, list):
        for i, line in enumerate(items):
            if isinstance(line, dict):
                _check_price(line.get("product"), f"payload.items[{i}].product")


def _check_price(product: Any, field: str) -> None:
    """The price, and an image URL, which would become an ``<img src>`` in an email: the
    collector's rule (:mod:`state.image_url`), so both edges refuse the same URLs."""
    if isinstance(product, dict):
        check_amount(product.get("price"), f"{field}.price")
        image = product.get("image_url")
        if isinstance(image, str) and image and http_url(image) is None:
            raise EventValidationError(
                "invalid_field", f"{field}.image_url: not an absolute http(s) URL"
            )


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
