"""Issue 16: the collector's mappers and the JSON normalizer under hostile values.

Extreme numbers (NaN, the infinities, 1e305, the largest double, the smallest subnormal,
negative zero, integers beyond 64 bits, strings ``float()`` reads), times at and beyond
the edges of the accepted range and of ``datetime``'s years with offsets, deep nesting and
long strings, in every field that carries an amount or a time. Whatever arrives, a
mapper either raises ``EventValidationError`` (a 4xx or a dead letter naming the field)
or gives records that encode and lie in :mod:`state.bounds`' ranges. Any other exception
would be a 500 that an SDK retries for ever, or a poison record downstream.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import normalize_json
from cdpflow.settings import Topics
from collector import fastpath
from collector.intake import Normalizer
from collector.segment import segment_to_record
from collector.shopify import shopify_to_json
from state.bounds import MAX_AMOUNT, MAX_DATE, MAX_TIME_MS, MIN_DATE, MIN_TIME_MS

CODEC = default_codec()
TOPIC = "cdp.events.bounds"
NORMALIZER = Normalizer(CODEC, Topics(events=TOPIC), compiled=False)
FAST = fastpath.load(CODEC, TOPIC)
NOW = 1_793_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- hostile values ------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.floats(),  # NaN and the infinities included (not from JSON text, but from code)
    st.integers(-(2**70), 2**70),
    st.sampled_from(
        [
            *(float("nan"), float("inf"), float("-inf"), 1e305, -1e305),
            *(1.7976931348623157e308, 5e-324, -0.0, 0.0, MAX_AMOUNT, -MAX_AMOUNT),
            *(MAX_AMOUNT + 0.01, 10**9, 10**9 + 1, 2**31, 2**53 + 1, 2**63 - 1, 2**64 - 1),
            *("NaN", "nan", "Infinity", "-Infinity", "inf", "1e400", "-1e400", "1e305"),
            *("1e9", "1000000000.5", "-0", "0.1", " 7 ", "1_000", "0x10", "", "12,5"),
        ]
    ),
)
_OFFSETS = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
_EDGES = [
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "1969-12-31T23:59:59.999",
    "1970-01-01T00:00:00",
    "2199-12-31T23:59:59.999",
    "2200-01-01T00:00:00",
]
_SUFFIXES = ["Z", "+00:00", "+01:00", "-01:00", "+23:59", "-23:59", "+14:00", ""]
TIMES = st.one_of(
    st.builds(lambda e, z: e + z, st.sampled_from(_EDGES), st.sampled_from(_SUFFIXES)),
    st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), st.datetimes(), _OFFSETS),
    st.sampled_from([MIN_TIME_MS - 1, MIN_TIME_MS, MAX_TIME_MS - 1, MAX_TIME_MS]),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.sampled_from(["", "now", "2026-13-01T00:00:00Z", True, None]),
)
DATES = st.one_of(
    TIMES,
    st.dates().map(date.isoformat),
    st.sampled_from(["0001-01-01", "1899-12-31", "1900-01-01", "2199-12-31", "2200-01-01"]),
    st.integers(-(10**9), 10**9),  # days, in a JSON event's signup_date
)


def deep(levels: int) -> Any:
    return orjson.loads(b"[" * levels + b"1" + b"]" * levels)


ODD = st.one_of(
    st.integers(1, 1020).map(deep),
    st.sampled_from([254, 255, 1000, 1020]).map(deep),  # orjson writes 254, reads 1024
    st.integers(0, 20_000).map(lambda n: "x" * n),
    st.text(max_size=20),
    st.none(),
)
ANY = st.one_of(NUMBERS, TIMES, ODD)


# --- what an accepted record must satisfy ------------------------------------------------


def check_in_bounds(value: bytes) -> None:
    """Decode a written cdp.Event and check every time, date and amount against bounds."""
    name, record = CODEC.decode(value, logical=False)
    assert name == "cdp.Event"
    for field in ("event_time", "received_at", "sent_at"):
        ms = record[field]
        assert ms is None or MIN_TIME_MS <= ms < MAX_TIME_MS, field
    payload = record["payload"]
    for field in ("value", "revenue", "discount"):
        _amount(payload.get(field), field)
    products = [payload.get("product"), (payload.get("item") or {}).get("product")]
    products += [line["product"] for line in payload.get("items") or []]
    for product in products:
        if product is not None:
            _amount(product["price"], "price")
    days = payload.get("signup_date")
    if days is not None:
        assert MIN_DATE <= date.fromordinal(_EPOCH_ORDINAL + days) <= MAX_DATE


def _amount(value: float | None, field: str) -> None:
    if value is not None:
        assert -MAX_AMOUNT <= value <= MAX_AMOUNT, field  # False for NaN as well


def accepted_or_refused(make: Any) -> list[bytes]:
    """The written values of what ``make()`` maps, or [] when it refuses with a reason."""
    try:
        records = make()
    except EventValidationError as exc:
        refused: EventValidationError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.reason
        assert str(refused)
        note(f"refused: {refused.reason}")
        return []
    note("accepted")
    try:
        return [NORMALIZER.encode_record(record).value for record in records]
    except EventValidationError as exc:  # the checks while encoding (schema, identity)
        assert exc.reason  # noqa: PT017 - one of several outcomes
        return []


# --- Segment, Python path and fast path ----------------------------------------------------

_AMOUNT_PATHS = [
    ("properties", "price"),
    ("properties", "total"),
    ("properties", "revenue"),
    ("properties", "value"),
    ("properties", "discount"),
    ("properties", "quantity"),
    ("properties", "products", 0, "price"),
    ("properties", "products", 0, "quantity"),
    ("traits", "age"),
]
_TIME_PATHS = [("timestamp",), ("originalTimestamp",), ("sentAt",)]
_EVENTS = ["Order Completed", "Checkout Started", "Product Viewed", "Product Added", "X"]


@st.composite
def segment_messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["track", "identify", "page", "alias", "group"]))
    message: dict[str, Any] = {"type": kind, "userId": "c-1"}
    if draw(st.booleans()):
        message["messageId"] = "m-1"
    if kind == "track":
        message["event"] = draw(st.sampled_from([*_EVENTS, "merge", "alias"]))
        message["properties"] = {
            "order_id": "o-1",
            "product_id": "p-1",
            "total": 10,
            "products": [{"product_id": "p-1", "price": 5, "quantity": 2}],
        }
    if kind == "identify":
        message["traits"] = {"email": "a@example.com"}
        if draw(st.booleans()):
            message["traits"][draw(st.sampled_from(["createdAt", "created_at"]))] = draw(DATES)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from([*_AMOUNT_PATHS, *_TIME_PATHS, ("properties", "nested")]))
        value = draw(TIMES if path in _TIME_PATHS else ANY)
        _set(message, path, value)
    return message


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        if isinstance(node, list):
            while len(node) <= key:
                node.append({})
            node = node[key]
        else:
            node = node.setdefault(key, [] if key in ("products", "line_items") else {})
    node[path[-1]] = value


@_SETTINGS
@given(
    message=segment_messages(),
    public=st.booleans(),
    batch_sent_at=st.one_of(st.none(), TIMES),
)
def test_segment_messages_are_refused_or_in_bounds(
    message: dict[str, Any], public: bool, batch_sent_at: Any
) -> None:
    def make() -> list[dict[str, Any]]:
        return [
            segment_to_record(
                message, None, received_at=NOW, batch_sent_at=batch_sent_at, public=public
            )
        ]

    values = accepted_or_refused(make)
    for value in values:
        check_in_bounds(value)
        if public:
            assert CODEC.decode(value, logical=False)[1]["event_time"] <= NOW
    if FAST is not None:
        # As the endpoint passes them: JSON as orjson parses it, sentAt parsed (or not).
        try:
            item = orjson.loads(orjson.dumps(message))
        except orjson.JSONEncodeError:  # a NaN or a 70-bit int cannot come from JSON text
            return
        [fast] = FAST.encode([item], NOW, batch_sent_at, None, None, set(), public=public)
        if fast is not None:
            check_in_bounds(fast.value)
            python = accepted_or_refused(
                lambda: [
                    segment_to_record(
                        item, None, received_at=NOW, batch_sent_at=batch_sent_at, public=public
                    )
                ]
            )
            assert python == [fast.value]


@pytest.mark.parametrize("received_at", [-1, MAX_TIME_MS, 2**63, -(2**63)])
def test_a_received_at_outside_the_bounds_is_refused(received_at: int) -> None:
    message = {"type": "track", "event": "X", "userId": "c", "messageId": "m"}
    with pytest.raises(EventValidationError, match=r"^receivedAt: time out of range$"):
        segment_to_record(message, None, received_at=received_at)
    if FAST is not None and -(2**63) <= received_at < 2**63:  # the C signature's int64
        assert FAST.encode([message], received_at, None, None, None, set()) == [None]


# --- the repro's examples, one by one --------------------------------------------------------


@pytest.mark.parametrize("amount", [1e305, "NaN", "Infinity", "-Infinity", "1e400", 1e9 + 1])
@pytest.mark.parametrize(
    ("event", "props", "field"),
    [
        ("Order Completed", {"order_id": "o-1"}, "total"),
        ("Order Completed", {"order_id": "o-1"}, "revenue"),
        ("Order Completed", {"order_id": "o-1", "total": 5}, "discount"),
        ("Checkout Started", {}, "value"),
        ("Checkout Started", {}, "revenue"),
    ],
)
def test_an_order_with_a_hostile_amount_is_refused_naming_the_field(
    amount: Any, event: str, props: dict[str, Any], field: str
) -> None:
    # The repro: {"total": 1e305} from the public key crashed the dataflow on every restart.
    properties = {**props, field: amount}
    message = {"type": "track", "event": event, "userId": "u-p", "properties": properties}
    with pytest.raises(EventValidationError) as info:
        segment_to_record(message, None, received_at=NOW, public=True)
    assert info.value.reason == "invalid_field"
    named = {"revenue": "total" if event == "Order Completed" else "value"}.get(field, field)
    assert str(info.value).startswith(f"properties.{named}: ")
    assert not any(text in str(info.value) for text in ("1e", "NaN", "Infinity"))
    if FAST is not None:
        [fast] = FAST.encode([{**message, "messageId": "m"}], NOW, None, None, None, set())
        assert fast is None


@pytest.mark.parametrize("price", [1e305, "NaN", "Infinity", "1e400", -1e10])
@pytest.mark.parametrize(
    ("event", "props", "field"),
    [
        ("Product Viewed", {"product_id": "p"}, "properties.price"),
        ("Product Added", {"product_id": "p"}, "properties.price"),
        ("Order Completed", {"order_id": "o", "total": 1}, "properties.products[0].price"),
        ("Checkout Started", {}, "properties.products[0].price"),
    ],
)
def test_a_hostile_price_or_line_item_is_refused(
    price: Any, event: str, props: dict[str, Any], field: str
) -> None:
    props = {**props}
    if field == "properties.price":
        props["price"] = price
    else:
        props["products"] = [{"product_id": "p", "price": price}]
    message = {"type": "track", "event": event, "userId": "u", "properties": props}
    with pytest.raises(EventValidationError) as info:
        segment_to_record(message, None, received_at=NOW)
    assert str(info.value).startswith(f"{field}: ")


def test_a_computed_order_total_beyond_the_bound_is_refused() -> None:
    products = [{"product_id": "p", "price": MAX_AMOUNT, "quantity": 2}]
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u",
        "properties": {"order_id": "o", "products": products},
    }
    with pytest.raises(EventValidationError, match=r"^properties\.total: "):
        segment_to_record(message, None, received_at=NOW)


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", -1, MAX_TIME_MS]
)
@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp", "sentAt"])
def test_edge_times_are_refused_naming_the_field(when: Any, field: str) -> None:
    message = {"type": "track", "event": "X", "userId": "u", "messageId": "m", field: when}
    with pytest.raises(EventValidationError) as info:
        segment_to_record(message, None, received_at=NOW)
    assert str(info.value) == f"{field}: time out of range"
    assert info.value.reason == "invalid_field"


@pytest.mark.parametrize(
    "created",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1899-12-31",
        "2200-01-01",
        "1899-12-31T23:59:59Z",
        -(10**15),
        10**18,
    ],
)
def test_sign_up_dates_out_of_range_are_refused(created: Any) -> None:
    message = {"type": "identify", "userId": "u", "traits": {"createdAt": created}}
    with pytest.raises(EventValidationError, match=r"^traits\.createdAt: date out of range$"):
        segment_to_record(message, None, received_at=NOW)


def test_sign_up_dates_at_the_edges_are_kept() -> None:
    for created, day in [("1900-01-01", "1900-01-01"), ("2199-12-31T23:00:00-00:59", "2199-12-31")]:
        message = {"type": "identify", "userId": "u", "traits": {"createdAt": created}}
        record = segment_to_record(message, None, received_at=NOW)
        assert record["payload"][1]["signup_date"] == day


def test_a_skew_correction_outside_the_bounds_is_refused() -> None:
    # Each time is in range, but the corrected one is not: NOW - (2199 - 1970).
    message = {
        "type": "track",
        "event": "X",
        "userId": "u",
        "timestamp": "1970-01-01T00:00:00Z",
        "sentAt": "2199-01-01T00:00:00Z",
    }
    with pytest.raises(EventValidationError, match=r"^timestamp: time out of range"):
        segment_to_record(message, None, received_at=NOW)
    if FAST is not None:
        assert FAST.encode([{**message, "messageId": "m"}], NOW, None, None, None, set()) == [None]


# --- Shopify --------------------------------------------------------------------------------

_SHOPIFY_AMOUNTS = ["total_price", "total_discounts"]
_SHOPIFY_IDS = [
    ("note",),
    ("id",),
    ("token",),
    ("customer", "id"),
    ("currency",),
    ("email",),
    ("line_items", 0, "product_id"),
    ("line_items", 0, "title"),
]


@st.composite
def shopify_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": draw(st.one_of(st.integers(1, 2**63), st.text(max_size=5))),
        "token": "t-1",
        "customer": {"id": 7},
        "total_price": "10.00",
        "line_items": [{"product_id": 1, "price": "5.00", "quantity": 2}],
    }
    for name in _SHOPIFY_AMOUNTS:
        if draw(st.booleans()):
            body[name] = draw(NUMBERS)
    if draw(st.booleans()):
        body["line_items"][0]["price"] = draw(NUMBERS)
    if draw(st.booleans()):
        body["line_items"][0]["quantity"] = draw(NUMBERS)
    for name in ("created_at", "updated_at"):
        if draw(st.booleans()):
            body[name] = draw(TIMES)
    for path in draw(st.lists(st.sampled_from(_SHOPIFY_IDS), max_size=2)):
        _set(body, path, draw(ODD))
    return body


@_SETTINGS
@given(
    topic=st.sampled_from(
        [
            *("orders/create", "checkouts/create", "checkouts/update", "carts/update"),
            *("customers/create", "customers/update", "products/update"),
        ]
    ),
    body=shopify_bodies(),
)
def test_shopify_webhooks_are_refused_or_in_bounds(topic: str, body: dict[str, Any]) -> None:
    if topic.startswith("customers/"):
        body.pop("line_items")
    for value in accepted_or_refused(
        lambda: [normalize_json(e) for e in shopify_to_json(topic, body, "w-1", NOW)]
    ):
        check_in_bounds(value)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("id",), "id"),
        (("customer", "id"), "customer.id"),
        (("line_items", 0, "product_id"), "line_items[0].product_id"),
        (("currency",), "currency"),
    ],
)
def test_a_shopify_id_that_is_a_deep_array_is_refused_naming_the_field(
    path: tuple[Any, ...], field: str
) -> None:
    # str() of 1000 nested arrays raises RecursionError: an id must be a string or number.
    body = {"id": 1, "customer": {"id": 7}, "total_price": "1", "line_items": [{"product_id": 1}]}
    _set(body, path, deep(1000))
    with pytest.raises(EventValidationError, match=rf"^{re.escape(field)}: expected a string"):
        shopify_to_json("orders/create", body, "w", NOW)


# --- JSON events (generic signed webhooks, sample files) ----------------------------------


@st.composite
def json_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["order_completed", "checkout_started", "identify", "custom"]))
    product = {"product_id": "p", "price": draw(st.one_of(NUMBERS, st.just(1.0)))}
    payloads = {
        "order_completed": {
            "order_id": "o",
            "revenue": draw(st.one_of(NUMBERS, st.just(10.0))),
            "discount": draw(st.one_of(NUMBERS, st.none())),
            "items": [{"product": product, "quantity": 1}],
        },
        "checkout_started": {"value": draw(NUMBERS), "items": []},
        "identify": {"signup_date": draw(DATES)},
        "custom": {"name": "x", "properties": {"deep": draw(ODD)}},
    }
    event = {
        "event_id": "e-1",
        "type": kind,
        "customer_id": "c",
        "timestamp": draw(st.one_of(st.just(NOW), st.just("2026-11-01T10:00:00+01:00"), TIMES)),
        "payload": payloads[kind],
    }
    for name in ("sent_at", "received_at"):
        if draw(st.booleans()):
            event[name] = draw(TIMES)
    return event


@_SETTINGS
@given(event=json_events())
def test_json_events_are_refused_or_in_bounds(event: dict[str, Any]) -> None:
    for value in accepted_or_refused(lambda: [normalize_json(event)]):
        check_in_bounds(value)


@pytest.mark.parametrize("revenue", [float("inf"), float("nan"), 1e305, 2**70, -1e10])
def test_a_json_event_with_a_hostile_revenue_names_the_field(revenue: float) -> None:
    event = {
        "event_id": "e",
        "type": "order_completed",
        "customer_id": "c",
        "timestamp": NOW,
        "payload": {"order_id": "o", "revenue": revenue},
    }
    with pytest.raises(EventValidationError, match=r"^payload\.revenue: ") as info:
        normalize_json(event)
    assert info.value.reason == "invalid_field"


@pytest.mark.parametrize("days", [10**8, -(10**8), (MAX_DATE - date(1970, 1, 1)).days + 1])
def test_a_json_event_with_a_signup_date_out_of_range_names_the_field(days: int) -> None:
    event = {
        "event_id": "e",
        "type": "identify",
        "customer_id": "c",
        "timestamp": NOW,
        "payload": {"signup_date": days},
    }
    with pytest.raises(EventValidationError, match=r"^payload\.signup_date: date out of range$"):
        normalize_json(event)


def test_the_bounds_are_what_the_tests_assume() -> None:
    # The edges this file probes: 1970 up to 2200, dates 1900 to 2199.
    assert datetime.fromtimestamp(MAX_TIME_MS / 1000, tz=UTC) == datetime(2200, 1, 1, tzinfo=UTC)
    assert (0, date(1900, 1, 1), date(2199, 12, 31)) == (MIN_TIME_MS, MIN_DATE, MAX_DATE)
