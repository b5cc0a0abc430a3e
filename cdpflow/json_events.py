"""JSON events (sample files, ``rules test --events``, tools) to ``cdp.Event`` records.

The JSON shape mirrors the Avro envelope, with friendlier names::

    {"event_id": "e-1", "type": "product_viewed", "customer_id": "c-1",
     "timestamp": "2026-11-02T09:00:00Z", "source": "web",
     "payload": {"product": {"product_id": "sku-1", "category": "shoes"}}}

``timestamp`` (or ``event_time``) and ``received_at`` take ISO-8601 with a zone or
milliseconds since the epoch; ``received_at`` defaults to the event time. Errors name
the field and never echo its value.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastavro.validation import ValidationError, validate

from cdpflow.codec import AvroCodec
from cdpflow.errors import EventValidationError
from flows.decode import to_ms

__all__ = ["PAYLOAD_RECORD", "normalize_json", "parse_time", "record_from_json"]

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


def parse_time(value: Any, field: str) -> int:
    """ISO-8601 with a zone, or integer milliseconds, to milliseconds since the epoch."""
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
        return to_ms(parsed.astimezone(UTC))
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
    if isinstance(payload.get("signup_date"), str):
        try:
            payload["signup_date"] = date.fromisoformat(payload["signup_date"])
        except ValueError:
            raise EventValidationError(
                "invalid_field", "payload.signup_date: not an ISO date"
            ) from None
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


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
