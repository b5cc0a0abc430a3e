"""Segment / RudderStack HTTP Tracking API messages to cdpflow's JSON event shape.

The result is the JSON shape of :mod:`cdpflow.json_events`; ``record_from_json`` then
validates it against ``cdp.Event``. Errors raised here name the *Segment* field
(``properties.order_id``), never its value.

- ``messageId`` -> ``event_id`` (missing: a digest of the message when it carries a
  ``timestamp``, so a retried request gets the same id; else a random id).
- ``userId`` -> ``customer_id``, ``anonymousId`` -> ``anonymous_id``; one is required.
- Clock skew, as Segment documents it: ``timestamp = receivedAt - (sentAt -
  originalTimestamp)``, where ``originalTimestamp`` is the device's ``timestamp`` and
  ``sentAt`` the device's send time (the message's own, else the batch's). Without
  ``sentAt`` the ``timestamp`` is taken as is; without ``timestamp`` it is ``receivedAt``.
- E-commerce spec names and email events map to typed events (:data:`TRACK_EVENTS`,
  :data:`EMAIL_ACTIONS`); any other ``track`` (and ``group``/``alias``) becomes a
  ``custom`` event, never dropped.
- A *public* write key (the browser snippet, mobile apps: known to anyone) may not merge
  identities: ``alias``, and a ``track`` named as an identity event (:data:`IDENTITY_EVENTS`),
  are refused (``forbidden_for_public_key``). Its device clock cannot date an event after
  its receipt: a later ``event_time`` is clamped to ``receivedAt``, as Segment does for
  client clocks, so a forged future time cannot win "last write wins" over real events.
- Hostile numbers and times are refused naming the field (``invalid_field``), never
  stored: amounts (prices, totals, revenue, value, discounts; also strings ``float()``
  reads, like ``"NaN"`` or ``"1e400"``) must be finite and within
  ``state.bounds.MAX_AMOUNT``; quantities and ages Avro ``int`` s; every time
  (``timestamp``, ``originalTimestamp``, ``sentAt``, the skew-corrected event time,
  ``receivedAt``) within ``state.bounds``' times; ``traits.createdAt`` within its dates.
- A product's ``image_url`` must be an absolute ``http(s)`` URL (``//host/...`` is read
  as ``https:``); anything else (``javascript:``, ``data:``, a relative path) is refused
  naming the field, as it would become an ``<img src>`` in an email (:mod:`state.image_url`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import orjson

from cdpflow.errors import EventValidationError
from cdpflow.json_events import PAYLOAD_RECORD, parse_time, utc_date
from state.alias import ALIAS_EVENTS, HANDOVER_EVENT
from state.bounds import MAX_TIME_MS, MIN_TIME_MS, amount_problem, date_problem
from state.image_url import http_url
from state.profile import ERASE_EVENT

__all__ = [
    "EMAIL_ACTIONS",
    "IDENTITY_EVENTS",
    "TRACK_EVENTS",
    "segment_to_json",
    "segment_to_record",
]

Json = dict[str, Any]

EMAIL_ACTIONS = {
    "Email Delivered": "delivered",
    "Email Opened": "opened",
    "Email Link Clicked": "clicked",
    "Email Bounced": "bounced",
    "Unsubscribed": "unsubscribed",
    "Email Unsubscribed": "unsubscribed",
    "Email Marked as Spam": "other",
}

IDENTITY_EVENTS = frozenset({*ALIAS_EVENTS, HANDOVER_EVENT, ERASE_EVENT})
"""``track`` names that a public key may not send: the custom events that merge, hand over
or erase customers downstream (``state.alias``, ``state.profile``)."""

_IDENTIFY_TRAITS = {
    "email",
    "firstName",
    "first_name",
    "lastName",
    "last_name",
    "age",
    "address",
    "createdAt",
    "created_at",
}


def segment_to_record(
    message: Any,
    kind: str | None,
    *,
    received_at: int,
    batch_sent_at: Any = None,
    batch_context: Mapping[str, Any] | None = None,
    client_ip: str | None = None,
    public: bool = False,
) -> Json:
    """One Segment message as a ``cdp.Event`` record, ready for the schema check.

    ``kind`` is the endpoint's call type (``track``, ``identify``, ``page``), or ``None``
    in a batch, where each message names its ``type``. The record is what
    :func:`cdpflow.json_events.normalize_json` makes of :func:`segment_to_json`'s event,
    built directly: the collector's hot path.

    ``public``: the message came with a public write key. Then ``alias`` and identity
    events (:data:`IDENTITY_EVENTS`) raise ``EventValidationError``
    (``forbidden_for_public_key``), and an event time after ``received_at`` is clamped to
    ``received_at`` (Segment's rule for client clocks).
    """
    if not isinstance(message, dict):
        raise EventValidationError("invalid_event", "message: expected a JSON object")
    call = kind or message.get("type")
    if not isinstance(call, str) or call not in _CALLS:
        raise EventValidationError(
            "invalid_field", "type: expected track, identify, page, screen, group or alias"
        )
    if public:
        _check_public(call, message)
    if not MIN_TIME_MS <= received_at < MAX_TIME_MS:  # the server's clock, not the sender's
        raise EventValidationError("invalid_field", "receivedAt: time out of range")
    get = message.get
    customer_id = get("userId")
    if type(customer_id) is not str or not customer_id:
        customer_id = _id(customer_id, "userId")
    anonymous_id = get("anonymousId")
    if type(anonymous_id) is not str or not anonymous_id:
        anonymous_id = _id(anonymous_id, "anonymousId")
    if customer_id is None and anonymous_id is None:
        raise EventValidationError("missing_identity", "userId or anonymousId: required")
    context = get("context")
    if type(context) is not dict:
        context = _object(context, "context")
    if batch_context:
        context = {**batch_context, **context}
    event_type, payload = _CALLS[call](message)
    sent_at = get("sentAt", batch_sent_at)
    if sent_at is not None:
        if type(sent_at) is not int:
            sent_at = _time(sent_at, "sentAt")
        elif not MIN_TIME_MS <= sent_at < MAX_TIME_MS:
            raise EventValidationError("invalid_field", "sentAt: time out of range")
    event_time = _corrected_time(message, sent_at, received_at)
    if public and event_time > received_at:
        event_time = received_at
    elif not MIN_TIME_MS <= event_time < MAX_TIME_MS:  # skew-corrected
        raise EventValidationError("invalid_field", "timestamp: time out of range after sentAt")
    return {
        "event_id": _event_id(message),
        "event_type": event_type,
        "customer_id": customer_id,
        "anonymous_id": anonymous_id,
        "event_time": event_time,
        "sent_at": sent_at,
        "received_at": received_at,
        "source": _source(context),
        "context": _context(context, message, client_ip),
        "payload": (PAYLOAD_RECORD[event_type], payload),
    }


def segment_to_json(
    message: Any,
    kind: str | None,
    *,
    received_at: int,
    batch_sent_at: Any = None,
    batch_context: Mapping[str, Any] | None = None,
    client_ip: str | None = None,
    public: bool = False,
) -> Json:
    """One Segment message as a cdpflow JSON event (the shape of :mod:`cdpflow.json_events`)."""
    record = segment_to_record(
        message,
        kind,
        received_at=received_at,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
        client_ip=client_ip,
        public=public,
    )
    json_event = {_JSON_NAMES.get(k, k): v for k, v in record.items()}
    json_event["payload"] = record["payload"][1]
    return json_event


_JSON_NAMES = {"event_type": "type", "event_time": "timestamp"}


def _check_public(call: str, message: Json) -> None:
    """Refuse what a public write key may not send: anything that merges identities."""
    if call == "alias":
        raise EventValidationError(
            "forbidden_for_public_key", "type: alias is not allowed with a public write key"
        )
    name = message.get("event")
    if call == "track" and isinstance(name, str) and name in IDENTITY_EVENTS:
        raise EventValidationError(
            "forbidden_for_public_key",
            "event: alias, merge and erase events are not allowed with a public write key",
        )


def _corrected_time(message: Json, sent_at: int | None, received_at: int) -> int:
    original, field = message.get("timestamp"), "timestamp"
    if original is None:
        original, field = message.get("originalTimestamp"), "originalTimestamp"
        if original is None:
            return received_at
    device_time = _time(original, field)
    if sent_at is None:
        return device_time
    return received_at - (sent_at - device_time)


def _event_id(message: Json) -> str:
    value = message.get("messageId")
    if type(value) is str and value:
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)
    if value is not None:
        raise EventValidationError("invalid_field", "messageId: expected a string")
    if message.get("timestamp") is None:
        return f"r-{uuid.uuid4().hex}"
    try:
        text = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels)
        raise EventValidationError(
            "invalid_field", "messageId: required for a message nested this deeply"
        ) from None
    return f"h-{hashlib.sha256(text).hexdigest()[:32]}"


# --- calls ---------------------------------------------------------------------------


def _track(message: Json) -> tuple[str, Json]:
    name = message.get("event")
    if not isinstance(name, str) or not name:
        raise EventValidationError("missing_field", "event: required for track")
    props = _object(message.get("properties"), "properties")
    mapper = TRACK_EVENTS.get(name)
    if mapper is not None:
        return mapper(props)
    if name in EMAIL_ACTIONS:
        return "email_event", {
            "action": EMAIL_ACTIONS[name],
            "campaign_id": _opt_text(props.get("campaign_id"), "properties.campaign_id"),
            "message_id": _opt_text(props.get("email_id"), "properties.email_id"),
            "link_url": _opt_text(props.get("link_url"), "properties.link_url"),
        }
    return "custom", {"name": name, "properties": _text_map(props, "properties")}


def _identify(message: Json) -> tuple[str, Json]:
    # RudderStack's SDKs send identify traits in context.traits, Segment's at the top.
    in_context = _object(_dict_or_empty(message.get("context")).get("traits"), "context.traits")
    traits = {**in_context, **_object(message.get("traits"), "traits")}
    address = _object(traits.get("address"), "traits.address")
    created = traits.get("createdAt", traits.get("created_at"))
    return "identify", {
        "email": _opt_text(traits.get("email"), "traits.email"),
        "first_name": _opt_text(
            traits.get("firstName", traits.get("first_name")), "traits.firstName"
        ),
        "last_name": _opt_text(traits.get("lastName", traits.get("last_name")), "traits.lastName"),
        "age": _opt_int(traits.get("age"), "traits.age"),
        "signup_date": None if created is None else _date(created, "traits.createdAt"),
        "location": {
            "country": _opt_text(address.get("country"), "traits.address.country"),
            "region": _opt_text(address.get("state"), "traits.address.state"),
            "city": _opt_text(address.get("city"), "traits.address.city"),
        }
        if address
        else None,
        "traits": _text_map(
            {k: v for k, v in traits.items() if k not in _IDENTIFY_TRAITS}, "traits"
        ),
    }


def _page(message: Json) -> tuple[str, Json]:
    props = _object(message.get("properties"), "properties")
    return "page_viewed", {
        "path": _opt_text(props.get("path"), "properties.path"),
        "title": _opt_text(props.get("title", message.get("name")), "properties.title"),
        "session_id": _opt_text(props.get("session_id"), "properties.session_id"),
    }


def _other(call: str) -> Callable[[Json], tuple[str, Json]]:
    def custom(message: Json) -> tuple[str, Json]:
        fields = ("groupId", "previousId", "traits", "properties", "name")
        props = {k: message[k] for k in fields if message.get(k) is not None}
        return "custom", {"name": call, "properties": _text_map(props, "properties")}

    return custom


_CALLS: dict[str, Callable[[Json], tuple[str, Json]]] = {
    "track": _track,
    "identify": _identify,
    "page": _page,
    "screen": _page,
    "group": _other("group"),
    "alias": _other("alias"),
}


# --- e-commerce spec (v2) --------------------------------------------------------------


def _product_viewed(p: Json) -> tuple[str, Json]:
    session_id = _opt_text(p.get("session_id"), "properties.session_id")
    return "product_viewed", {"product": _product(p, "properties"), "session_id": session_id}


def _cart(event_type: str) -> Callable[[Json], tuple[str, Json]]:
    def mapper(p: Json) -> tuple[str, Json]:
        return event_type, {
            "cart_id": _opt_text(p.get("cart_id"), "properties.cart_id"),
            "item": _line_item(p, "properties"),
        }

    return mapper


def _checkout_started(p: Json) -> tuple[str, Json]:
    value = p.get("value", p.get("revenue", p.get("total")))
    return "checkout_started", {
        "checkout_id": _opt_text(p.get("checkout_id", p.get("order_id")), "properties.checkout_id"),
        "cart_id": _opt_text(p.get("cart_id"), "properties.cart_id"),
        "items": _line_items(p),
        "value": None if value is None else _number(value, "properties.value"),
        "currency": _opt_text(p.get("currency"), "properties.currency"),
    }


def _order_completed(p: Json) -> tuple[str, Json]:
    order_id = _opt_text(p.get("order_id"), "properties.order_id")
    if order_id is None:
        raise EventValidationError("missing_field", "properties.order_id: required")
    items = _line_items(p)
    total = p.get("total", p.get("revenue"))
    if total is None:
        prices = [i["product"]["price"] for i in items]
        if not items or None in prices:
            raise EventValidationError("missing_field", "properties.total: required")
        revenue = sum(i["product"]["price"] * i["quantity"] for i in items)
        if amount_problem(revenue) is not None:
            raise EventValidationError(
                "invalid_field", "properties.total: the products' sum is out of range"
            )
    else:
        revenue = _number(total, "properties.total")
    discount = p.get("discount")
    return "order_completed", {
        "order_id": order_id,
        "items": items,
        "revenue": revenue,
        "currency": _opt_text(p.get("currency"), "properties.currency"),
        "discount": None if discount is None else _number(discount, "properties.discount"),
    }


def _form_submitted(p: Json) -> tuple[str, Json]:
    form_id = _opt_text(p.get("form_id"), "properties.form_id")
    if form_id is None:
        raise EventValidationError("missing_field", "properties.form_id: required")
    fields = _object(p.get("fields"), "properties.fields")
    texts = _text_map(fields, "properties.fields")
    return "form_submitted", {"form_id": form_id, "fields": texts}


TRACK_EVENTS: dict[str, Callable[[Json], tuple[str, Json]]] = {
    "Product Viewed": _product_viewed,
    "Product Added": _cart("cart_item_added"),
    "Product Removed": _cart("cart_item_removed"),
    "Checkout Started": _checkout_started,
    "Order Completed": _order_completed,
    "Form Submitted": _form_submitted,
}


def _product(p: Json, where: str) -> Json:
    product_id = p.get("product_id", p.get("sku", p.get("id")))
    pid = _opt_text(product_id, f"{where}.product_id")
    if pid is None:
        raise EventValidationError("missing_field", f"{where}.product_id: required")
    price = p.get("price")
    return {
        "product_id": pid,
        "name": _opt_text(p.get("name"), f"{where}.name"),
        "category": _opt_text(p.get("category"), f"{where}.category"),
        "price": None if price is None else _number(price, f"{where}.price"),
        "currency": _opt_text(p.get("currency"), f"{where}.currency"),
        "image_url": _image_url(p.get("image_url"), f"{where}.image_url"),
    }


def _image_url(value: Any, field: str) -> str | None:
    """The spec's ``image_url``: absent or empty is none; an absolute http(s) URL (a
    ``//host`` one taken as https) is kept; anything else is refused, as any malformed
    field is (``state.image_url``: it becomes an ``<img src>`` in an email)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventValidationError("invalid_field", f"{field}: expected a string")
    url = http_url(value)
    if url is None:
        raise EventValidationError("invalid_field", f"{field}: not an absolute http(s) URL")
    return url


def _line_item(p: Json, where: str) -> Json:
    quantity = p.get("quantity", 1)
    return {"product": _product(p, where), "quantity": _int(quantity, f"{where}.quantity")}


def _line_items(p: Json) -> list[Json]:
    products = p.get("products") or []
    if not isinstance(products, list):
        raise EventValidationError("invalid_field", "properties.products: expected an array")
    return [
        _line_item(_object(item, f"properties.products[{i}]"), f"properties.products[{i}]")
        for i, item in enumerate(products)
    ]


# --- context ---------------------------------------------------------------------------

_UTM = ("source", "medium", "name", "term", "content")
_EMPTY: Json = {}
_LIBRARY_SOURCES = {
    "analytics.js": "web",
    "cdpflow.js": "web",
    "analytics-ios": "ios",
    "analytics-android": "android",
}


def _source(context: Json) -> str:
    library = context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    if not isinstance(name, str) or not name:
        return "segment"
    source = _LIBRARY_SOURCES.get(name)
    return f"segment:{name[:64]}" if source is None else source


def _context(context: Json, message: Json, client_ip: str | None) -> Json:
    """Segment's ``context`` as ``cdp.Context``; non-text metadata values are left out."""
    # _str_or_none inlined: this runs for every event.
    get = context.get
    page = get("page")
    page_get = page.get if isinstance(page, dict) else _EMPTY.get
    ip, agent, locale, zone = get("ip"), get("userAgent"), get("locale"), get("timezone")
    url, referrer = page_get("url"), page_get("referrer")
    if not (isinstance(url, str) and url) or not (isinstance(referrer, str) and referrer):
        props = _dict_or_empty(message.get("properties"))
        if not (isinstance(url, str) and url):
            url = props.get("url")
        if not (isinstance(referrer, str) and referrer):
            referrer = props.get("referrer")
    campaign = get("campaign")
    return {
        "ip": ip if isinstance(ip, str) and ip else client_ip,
        "user_agent": agent if isinstance(agent, str) and agent else None,
        "page_url": url if isinstance(url, str) and url else None,
        "referrer": referrer if isinstance(referrer, str) and referrer else None,
        "locale": locale if isinstance(locale, str) and locale else None,
        "timezone": zone if isinstance(zone, str) and zone else None,
        "campaign": {k: _str_or_none(campaign.get(k)) for k in _UTM}
        if isinstance(campaign, dict)
        else None,
    }


# --- small converters ------------------------------------------------------------------


def _object(value: Any, field: str) -> Json:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventValidationError("invalid_field", f"{field}: expected an object")
    return value


def _id(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EventValidationError("invalid_field", f"{field}: expected a string")
    return str(value)


def _opt_text(value: Any, field: str) -> str | None:
    if type(value) is str or value is None:
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise EventValidationError("invalid_field", f"{field}: expected a string")


#: "YYYY-MM-DDTHH:MM" of device times -> milliseconds since the epoch at that minute (UTC).
_MINUTES: dict[str, int] = {}
_SECONDS = {f"{s:02d}": s * 1000 for s in range(60)}
_MILLIS = {f"{m:03d}": m for m in range(1000)}
_UTC_SUFFIXES = ("Z", "+00:00")


def _time(value: Any, field: str) -> int:
    """:func:`~cdpflow.json_events.parse_time`, with a fast path for what SDKs send:
    ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff](Z|+00:00)``. The minute's milliseconds are
    remembered (found by ``parse_time`` once); seconds and milliseconds are looked up as
    exact ASCII digits. What the fast path takes, ``parse_time`` takes, with the same
    result; anything else goes to ``parse_time``."""
    if type(value) is str and 20 <= len(value) <= 32 and value[16] == ":":
        if value[-1] == "Z":
            fraction = value[19:-1]
        elif value.endswith("+00:00"):
            fraction = value[19:-6]
        else:
            return parse_time(value, field)
        base = _MINUTES.get(value[:16])
        if base is None:
            base = _minute(value[:16])
        seconds = _SECONDS.get(value[17:19])
        if base is not None and seconds is not None:
            if not fraction:
                return base + seconds
            if fraction[0] == "." and (len(fraction) == 4 or len(fraction) == 7):
                millis = _MILLIS.get(fraction[1:4])
                micros = fraction[4:]
                if millis is not None and (not micros or (micros.isascii() and micros.isdigit())):
                    return base + seconds + millis
    return parse_time(value, field)


def _minute(prefix: str) -> int | None:
    """The milliseconds of a ``YYYY-MM-DDTHH:MM`` minute in UTC, remembered; None if
    ``parse_time`` does not take it."""
    if not (prefix[4] == prefix[7] == "-" and prefix[10] == "T" and prefix[13] == ":"):
        return None
    try:
        base = parse_time(prefix + ":00Z", "timestamp")
    except EventValidationError:
        return None
    if len(_MINUTES) >= 100_000:  # device clocks are spread; keep the memo bounded
        _MINUTES.clear()
    _MINUTES[prefix] = base
    return base


def _dict_or_empty(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any, field: str) -> float:
    """An amount: a JSON number or a numeric string, finite and within ``MAX_AMOUNT``."""
    if type(value) is float:
        number = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EventValidationError("invalid_field", f"{field}: expected a number")
    else:
        try:
            number = float(value)
        except (ValueError, OverflowError):  # OverflowError: an int beyond a double
            raise EventValidationError("invalid_field", f"{field}: expected a number") from None
    problem = amount_problem(number)
    if problem is not None:  # "NaN", "Infinity", "1e400", 1e305: never stored
        raise EventValidationError("invalid_field", f"{field}: {problem}")
    return number


_INT32 = (-(2**31), 2**31 - 1)


def _int(value: Any, field: str) -> int:
    """A whole number that fits an Avro ``int`` (quantities, ages)."""
    whole: int
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    elif isinstance(value, float) and value.is_integer():
        whole = int(value)
    else:
        raise EventValidationError("invalid_field", f"{field}: expected a whole number")
    if not _INT32[0] <= whole <= _INT32[1]:
        raise EventValidationError("invalid_field", f"{field}: out of range")
    return whole


def _opt_int(value: Any, field: str) -> int | None:
    return None if value is None else _int(value, field)


def _date(value: Any, field: str) -> str:
    """A sign-up date: ``YYYY-MM-DD``, else a time (its UTC date); within the dates of
    ``state.bounds``."""
    if isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if date_problem(day) is not None:
                raise EventValidationError("invalid_field", f"{field}: date out of range")
            return day.isoformat()
    return utc_date(value, field).isoformat()


def _text_map(values: Json, field: str) -> dict[str, str]:
    """A JSON object as a ``map<string>``: strings as they are, other values as JSON text
    (what ``normalize_json`` does to ``properties`` and ``traits``)."""
    try:
        return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in values.items()}
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits (not from a JSON body)
        raise EventValidationError("invalid_field", f"{field}: a value is not JSON") from None
