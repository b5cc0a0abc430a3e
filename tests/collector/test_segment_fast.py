"""The compiled ``/v1/batch`` fast path (``collector/_segment_fast.pyx``) against the Python path.

The contract: for every item the fast path either declines (``None``: the Python path maps
it) or returns the very message the Python path makes (``segment_to_record`` then
``Normalizer.encode_record``): same topic, key and value bytes, and never for an item the
Python path rejects. And it must take the messages SDKs usually send, or it is no fast path.
Both for a server write key and for a public one (``public=True``: identity events refused,
event times clamped to ``received_at``).
"""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import parse_time
from cdpflow.settings import Topics
from collector import fastpath
from collector.endpoints import _batch_time  # what the endpoint passes as batch_sent_at
from collector.intake import Normalizer
from collector.producer import OutMessage
from collector.segment import EMAIL_ACTIONS, IDENTITY_EVENTS, segment_to_record

CODEC = default_codec()
TOPIC = "cdp.events.test"
NORMALIZER = Normalizer(CODEC, Topics(events=TOPIC))
FAST = fastpath.load(CODEC, TOPIC)
# Only an install that was told not to compile (hatch_build.py) may lack the module; any
# other install without it fails here.
pytestmark = pytest.mark.skipif(
    FAST is None and os.environ.get("CDPFLOW_SKIP_COMPILE") == "1",
    reason="installed with CDPFLOW_SKIP_COMPILE=1: no compiled fast path to test",
)
RECEIVED = 1_793_000_000_000  # 2026-10-25T...Z
REJECTED = "rejected by the Python path"
#: The batch arguments of a batch without sentAt or context, from an unknown address.
PLAIN_ARGS: dict[str, Any] = {
    "received_at": RECEIVED,
    "batch_sent_at": None,
    "batch_context": None,
    "client_ip": None,
    "public": False,
}


def reference(item: Any, args: dict[str, Any]) -> OutMessage | str:
    """What the Python path makes of one batch item: its message, or REJECTED. Any other
    exception is a bug of the Python path and fails the test."""
    try:
        record = segment_to_record(item, None, **args)
        return NORMALIZER.encode_record(record)
    except EventValidationError:
        return REJECTED


def fast_encode(items: list[Any], args: dict[str, Any], skip: set[int] | None = None) -> list[Any]:
    assert FAST is not None, "collector._segment_fast is not built (pip install -e .)"
    return FAST.encode(
        items,
        args["received_at"],
        args["batch_sent_at"],
        args["batch_context"],
        args["client_ip"],
        skip if skip is not None else set(),
        public=args.get("public", False),
    )


def check_contract(
    items: list[Any], args: dict[str, Any], note: Callable[[str], object] = lambda _: None
) -> list[Any]:
    """Every item: None from the fast path, or the Python path's message byte for byte."""
    got = fast_encode(items, args)
    assert len(got) == len(items)
    for index, (item, fast) in enumerate(zip(items, got, strict=True)):
        expected = reference(item, args)
        if fast is None:
            note("rejected" if expected == REJECTED else "python path")
            continue
        note("fast path")
        assert expected != REJECTED, (
            f"fast path took item {index} that the Python path rejects: {item!r} {args!r}"
        )
        assert type(fast) is OutMessage
        assert tuple(fast) == tuple(expected), f"item {index} differs: {item!r} {args!r}"
    return got


def json_round_trip(value: Any) -> Any:
    """As the endpoint sees it: parsed by orjson from the request body."""
    return orjson.loads(orjson.dumps(value))


# --- the module ------------------------------------------------------------------------


def test_the_extension_is_built_and_written_for_the_current_schema() -> None:
    # Fails when the install did not compile collector/_segment_fast.pyx (hatch_build.py).
    assert fastpath.load(CODEC, "t") is not None
    segment_fast = importlib.import_module("collector._segment_fast")
    # A change to cdp.Event must come with a change to the fast path (and its fingerprint).
    assert CODEC.fingerprint_of("cdp.Event").hex() == segment_fast.SCHEMA_FINGERPRINT


# --- the usual shapes are taken ----------------------------------------------------------

PRODUCT = {
    "product_id": "sku-1",
    "name": "Trail shoe",
    "category": "shoes",
    "price": 89.9,
    "currency": "EUR",
}
TYPICAL: dict[str, dict[str, Any]] = {
    "product_viewed": {
        "type": "track",
        "event": "Product Viewed",
        "properties": {**PRODUCT, "session_id": "s-1", "url": "https://shop.example/p/1"},
    },
    "product_viewed_bare": {"type": "track", "event": "Product Viewed", "properties": {"sku": 7}},
    "product_viewed_id_int_price": {
        "type": "track",
        "event": "Product Viewed",
        "properties": {"id": "p-9", "price": 12, "name": 3.5},
    },
    "product_added": {
        "type": "track",
        "event": "Product Added",
        "properties": {**PRODUCT, "cart_id": "cart-1", "quantity": 2},
    },
    "product_added_default_quantity": {
        "type": "track",
        "event": "Product Added",
        "properties": {"product_id": 123, "price": 5},
    },
    "product_removed": {
        "type": "track",
        "event": "Product Removed",
        "properties": {**PRODUCT, "cart_id": 77, "quantity": 1},
    },
    **{
        f"email_{action}_{name.replace(' ', '_')}": {
            "type": "track",
            "event": name,
            "properties": {
                "campaign_id": "cmp-1",
                "email_id": "em-1",
                "link_url": "https://shop.example/sale",
            },
        }
        for name, action in EMAIL_ACTIONS.items()
    },
    "email_opened_no_properties": {"type": "track", "event": "Email Opened"},
    "custom": {
        "type": "track",
        "event": "Video Played",
        "properties": {
            "title": "Intro",
            "seconds": 12,
            "ratio": 0.5,
            "big": 2**63,
            "muted": False,
            "nothing": None,
            "tags": ["a", 1, None],
            "nested": {"a": {"b": [1.5, "x"]}},
            "unicode": "caf\u00e9 \u65e5\u672c \U0001f600",
        },
    },
    "custom_no_properties": {"type": "track", "event": "Signed Up"},
    "custom_unicode_name": {"type": "track", "event": "Gef\u00e4llt mir \u2764", "properties": {}},
    "page": {
        "type": "page",
        "name": "Home",
        "properties": {
            "path": "/",
            "title": "Welcome",
            "session_id": "s-1",
            "url": "https://shop.example/",
            "referrer": "https://search.example/",
        },
    },
    "page_name_as_title": {"type": "page", "name": "Home", "properties": {"path": "/"}},
    "page_bare": {"type": "page"},
    "screen": {"type": "screen", "name": "Cart", "properties": {"session_id": 42}},
    # identify: Segment's SDKs send traits at the top, RudderStack's in context.traits.
    "identify": {
        "type": "identify",
        "traits": {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"},
    },
    "identify_snake_case_names": {
        "type": "identify",
        "traits": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
    },
    "identify_number_names": {
        "type": "identify",
        "traits": {"email": 12, "firstName": 7, "last_name": 1.5},
    },
    "identify_context_traits": {
        "type": "identify",
        "context": {"traits": {"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}},
    },
    "identify_both_top_level_wins": {
        "type": "identify",
        "context": {
            "traits": {"plan": "free", "email": "old@example.com", "firstName": "Old", "x": 1}
        },
        "traits": {"email": "new@example.com", "plan": "pro", "lastName": "New"},
    },
    "identify_address": {
        "type": "identify",
        "traits": {
            "email": "ada@example.com",
            "address": {"country": "DE", "state": "BE", "city": "Berlin", "street": "Unter"},
        },
    },
    "identify_partial_address": {"type": "identify", "traits": {"address": {"city": "Paris"}}},
    "identify_empty_address": {"type": "identify", "traits": {"email": "a@b.c", "address": {}}},
    "identify_age": {"type": "identify", "traits": {"email": "a@b.c", "age": 36}},
    "identify_age_bounds": {"type": "identify", "traits": {"age": 2**31 - 1}},
    "identify_age_null": {"type": "identify", "traits": {"age": None, "firstName": "Ada"}},
    "identify_custom_traits": {
        "type": "identify",
        "traits": {
            "email": "ada@example.com",
            "plan": "pro",
            "logins": 12,
            "score": 0.5,
            "big": 2**63,
            "vip": True,
            "nothing": None,
            "tags": ["a", 1, None],
            "prefs": {"news": {"weekly": [1.5, "x"]}},
            "unicode": "caf\u00e9 \u65e5\u672c \U0001f600",
        },
    },
    "identify_no_traits": {"type": "identify"},
    "identify_empty_traits": {"type": "identify", "traits": {}},
    # Checkout Started
    "checkout_started": {
        "type": "track",
        "event": "Checkout Started",
        "properties": {
            "checkout_id": "co-1",
            "cart_id": "cart-1",
            "products": [{**PRODUCT, "quantity": 2}, {"product_id": "sku-2", "price": 10}],
            "value": 189.8,
            "currency": "EUR",
        },
    },
    "checkout_started_no_products": {
        "type": "track",
        "event": "Checkout Started",
        "properties": {"checkout_id": "co-1", "value": 10, "currency": "USD"},
    },
    "checkout_started_empty_products": {
        "type": "track",
        "event": "Checkout Started",
        "properties": {"checkout_id": "co-1", "products": []},
    },
    "checkout_started_bare": {"type": "track", "event": "Checkout Started"},
    "checkout_started_revenue_order_id": {
        "type": "track",
        "event": "Checkout Started",
        "properties": {"order_id": "o-1", "revenue": 50, "products": [{"sku": "s-1"}]},
    },
    "checkout_started_total": {
        "type": "track",
        "event": "Checkout Started",
        "properties": {"checkout_id": 123, "cart_id": 77, "total": 12.5, "extra": [1]},
    },
    # Order Completed
    "order_completed": {
        "type": "track",
        "event": "Order Completed",
        "properties": {
            "order_id": "o-1",
            "products": [{**PRODUCT, "quantity": 1}],
            "total": 89.9,
            "currency": "EUR",
        },
    },
    "order_completed_three_products": {
        "type": "track",
        "event": "Order Completed",
        "properties": {
            "order_id": "o-2",
            "products": [
                {**PRODUCT, "quantity": 3},
                {"sku": "sku-2", "name": "Sock", "price": 4},  # quantity defaults to 1
                {"id": 99, "price": 0.5, "quantity": 10, "coupon": "X"},
            ],
            "total": 279.7,
            "discount": 5.0,
            "currency": "EUR",
        },
    },
    "order_completed_revenue": {
        "type": "track",
        "event": "Order Completed",
        "properties": {"order_id": "o-3", "revenue": 42.5, "products": [PRODUCT]},
    },
    "order_completed_int_total_and_discount": {
        "type": "track",
        "event": "Order Completed",
        "properties": {"order_id": 1234, "total": 100, "discount": 10, "products": [PRODUCT]},
    },
    "order_completed_no_products": {
        "type": "track",
        "event": "Order Completed",
        "properties": {"order_id": "o-4", "total": 0, "currency": "USD"},
    },
}
CONTEXT = {
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0",
    "locale": "de-DE",
    "timezone": "Europe/Berlin",
    "page": {"url": "https://shop.example/a", "referrer": "https://ref.example/"},
    "campaign": {"source": "news", "medium": "email", "name": "fall", "term": "t", "content": "c"},
    "library": {"name": "analytics.js", "version": "4.1"},
}
BATCH_CONTEXT = {"library": {"name": "analytics-python"}, "locale": "en-US", "ip": "198.51.100.1"}
TIMES = [
    "2026-11-01T10:00:00Z",
    "2026-11-01T10:00:00.123Z",
    "2026-11-01T10:00:00.123456Z",
    "2026-11-01T10:00:00+00:00",
    "2026-11-01T10:00:00.123+00:00",
]
SENT = "2026-11-01T10:00:05.5Z"  # not in the SDKs' form: fine at batch level, parsed already
IDENTITIES = [{"userId": "c-1"}, {"anonymousId": "a-1"}, {"userId": "c-1", "anonymousId": "a-1"}]


def typical_cases(shape: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(message, batch arguments) for one shape: times, sentAt, contexts and identities."""
    cases = []
    for n, (when, sent, ctx, batch_ctx, ident) in enumerate(
        itertools.product(
            TIMES,
            ["none", "message", "batch", "both"],
            [None, CONTEXT],
            [None, BATCH_CONTEXT],
            IDENTITIES,
        )
    ):
        message = {**shape, **ident, "messageId": f"m-{n}", "timestamp": when}
        if n % 3 == 0:  # some SDKs send originalTimestamp only
            message["originalTimestamp"] = message.pop("timestamp")
        if ctx is not None:  # keeps the shape's own context (context.traits)
            message["context"] = {**shape.get("context", {}), **ctx}
        if sent in ("message", "both"):
            message["sentAt"] = "2026-11-01T10:00:05.000Z"
        batch_sent_at = parse_time(SENT, "sentAt") if sent in ("batch", "both") else None
        args = {
            "received_at": RECEIVED,
            "batch_sent_at": batch_sent_at,
            "batch_context": batch_ctx,
            "client_ip": "127.0.0.1" if n % 2 else None,
            "public": n % 4 in (1, 2),
        }
        cases.append((json_round_trip(message), args))
    return cases


@pytest.mark.parametrize("shape", TYPICAL.values(), ids=TYPICAL.keys())
def test_the_usual_shapes_are_taken_with_the_python_paths_bytes(shape: dict[str, Any]) -> None:
    for message, args in typical_cases(shape):
        [got] = check_contract([message], args)
        assert got is not None, f"fast path declined a typical message: {message!r} {args!r}"


@pytest.mark.parametrize("shape", TYPICAL.values(), ids=TYPICAL.keys())
def test_what_the_fast_path_writes_decodes_as_a_cdp_event(shape: dict[str, Any]) -> None:
    # Independent of the reference: the bytes are a well-formed cdp.Event.
    message, args = typical_cases(shape)[-1]
    [got] = fast_encode([message], args)
    assert got is not None
    assert got.topic == TOPIC
    name, record = CODEC.decode(got.value, logical=False)
    assert name == "cdp.Event"
    assert record["event_id"] == message["messageId"]
    assert record["customer_id"] == message.get("userId")
    assert record["anonymous_id"] == message.get("anonymousId")
    assert got.key == (message.get("userId") or message["anonymousId"]).encode()
    assert record["received_at"] == RECEIVED
    assert record["context"]["user_agent"] == "Mozilla/5.0"
    assert record["source"] == "web"  # the message's library wins over the batch's
    expected_type = {"page": "page_viewed", "screen": "page_viewed", "identify": "identify"}.get(
        shape["type"]
    )
    if expected_type is None:
        expected_type = {
            "Product Viewed": "product_viewed",
            "Product Added": "cart_item_added",
            "Product Removed": "cart_item_removed",
            "Checkout Started": "checkout_started",
            "Order Completed": "order_completed",
            **dict.fromkeys(EMAIL_ACTIONS, "email_event"),
        }.get(shape["event"], "custom")
    assert record["event_type"] == expected_type


def test_skip_forces_the_python_path_for_exactly_the_skipped_items() -> None:
    items = [
        json_round_trip({**TYPICAL["product_viewed"], "userId": "c-1", "messageId": f"m-{i}"})
        for i in range(6)
    ]
    skipped = {id(items[1]), id(items[4])}
    args = dict(PLAIN_ARGS)
    got = fast_encode(items, args, skipped)
    assert [m is None for m in got] == [False, True, False, False, True, False]
    for item, message in zip(items, got, strict=True):
        if message is not None:
            assert message == reference(item, args)
    # An equal item that is another object is not skipped.
    assert fast_encode([dict(items[1])], args, skipped)[0] is not None


def test_items_outside_the_fast_path_are_declined() -> None:
    args = dict(PLAIN_ARGS)
    ok = {"userId": "c-1", "messageId": "m-1", "timestamp": TIMES[0]}

    def order(properties: dict[str, Any]) -> dict[str, Any]:
        return {**ok, "type": "track", "event": "Order Completed", "properties": properties}

    def checkout(properties: dict[str, Any]) -> dict[str, Any]:
        return {**ok, "type": "track", "event": "Checkout Started", "properties": properties}

    declined = [
        None,
        [],
        "track",
        1,
        {**ok, "type": "group", "groupId": "g"},
        {**ok, "type": "alias", "previousId": "p"},
        {**ok, "type": "track", "event": "Form Submitted", "properties": {"form_id": "f"}},
        # identify with a sign-up date: dates are the Python path's
        {**ok, "type": "identify", "traits": {"email": "a@b.c", "createdAt": TIMES[0]}},
        {**ok, "type": "identify", "traits": {"created_at": "2026-01-01"}},
        {**ok, "type": "identify", "context": {"traits": {"createdAt": "2026-01-01"}}},
        # an order without total or revenue: computed from the prices by the Python path
        order({"order_id": "o", "products": [{"product_id": "p", "price": 5, "quantity": 2}]}),
        order({"order_id": "o"}),  # nothing to compute it from: rejected
        order({"order_id": "o", "total": None, "revenue": 5}),  # total null: rejected
        order({"total": 5, "products": [{"product_id": "p"}]}),  # no order_id: rejected
        order({"order_id": None, "total": 5}),  # rejected
        # products: not a list, an item not an object, an item without product id: rejected
        order({"order_id": "o", "total": 5, "products": {"product_id": "p"}}),
        checkout({"products": "p-1"}),
        order({"order_id": "o", "total": 5, "products": ["p-1"]}),
        checkout({"products": [{"product_id": "p"}, None]}),
        order({"order_id": "o", "total": 5, "products": [{"name": "x", "price": 1}]}),
        checkout({"products": [{"product_id": None, "sku": "s"}]}),
        {**ok, "type": "track", "event": "X", "messageId": 12},  # the Python path takes it
        {**ok, "type": "track", "event": "X", "userId": 12},  # the Python path takes it
        {**ok, "type": "track", "event": "X", "timestamp": 1_793_000_000_000},
        {**ok, "type": "track", "event": "X", "timestamp": "2026-11-01T10:00:00+01:00"},
        {**ok, "type": "track", "event": "X", "messageId": None},  # a digest id
        {**ok, "type": "track"},  # no event: rejected
        {"type": "track", "event": "X", "messageId": "m"},  # no identity: rejected
    ]
    assert check_contract(declined, args) == [None] * len(declined)


def test_corners_of_identify_checkout_and_order_are_the_python_path_or_declined() -> None:
    ok = {"userId": "c-1", "messageId": "m-1", "timestamp": TIMES[0]}

    def identify(traits: Any = MISSING, in_context: Any = MISSING) -> dict[str, Any]:
        message = {**ok, "type": "identify", "traits": traits, "context": {"traits": in_context}}
        if in_context is MISSING:
            del message["context"]
        return _drop_missing(message)

    def track(event: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {**ok, "type": "track", "event": event, "properties": properties}

    def checkout(properties: dict[str, Any]) -> dict[str, Any]:
        return track("Checkout Started", properties)

    def order(properties: dict[str, Any]) -> dict[str, Any]:
        return track("Order Completed", {"order_id": "o", **properties})

    corners = [
        identify({"firstName": None, "first_name": "Ada", "lastName": None, "last_name": "L"}),
        identify({"b": 1, "a": 2, "email": "new"}, {"a": 0, "c": 3, "email": "old"}),  # order
        identify({"email": "a"}, {"address": {"city": "B"}}),
        identify({"address": {"zip": "1"}}),  # an address without location fields
        identify({"address": {"country": 1, "state": 1.5, "city": None}}),
        identify({"address": None}),
        identify({"address": []}),
        identify({"address": {"country": True}}),
        identify({"age": 30.0}),
        identify({"age": True}),
        identify({"age": 2**31}),
        identify({"age": -(2**31)}),
        identify({"email": True}),
        identify({"email": ""}),
        identify({"createdAt": None}),
        identify({"big": 2**64 - 1, "neg": -(2**63), "f": 1e300}),
        identify("x"),
        identify(MISSING, "x"),
        identify(None, None),
        {**identify({"email": "a"}), "properties": {"url": "https://x/", "referrer": "r"}},
        checkout({"value": None, "revenue": 5}),
        checkout({"revenue": None, "total": 5}),
        checkout({"value": "12.5"}),
        checkout({"value": True}),
        checkout({"value": 2**64 - 1}),
        checkout({"value": 2**53 + 1}),
        checkout({"value": -0.0}),
        checkout({"checkout_id": None, "order_id": "o"}),
        *[checkout({"products": empty}) for empty in ({}, "", None, 0, False, [])],
        *[checkout({"products": [{"product_id": "p", "quantity": q}]}) for q in (2.0, None, True)],
        checkout({"products": [{"product_id": "p", "quantity": 2**31}]}),
        checkout({"products": [{"product_id": "p", "quantity": -(2**31)}]}),
        checkout({"products": [{"product_id": "p", "price": "1"}]}),
        checkout({"products": [{"product_id": ""}]}),
        order({"order_id": "", "total": 1}),
        order({"order_id": 1.5, "total": 1}),
        order({"total": 1, "discount": None}),
        order({"total": 1, "discount": "2"}),
        order({"total": 1, "discount": True}),
        order({"revenue": None, "total": 3}),
        order({"total": 1.7976931348623157e308, "discount": 2**64 - 1}),
        order({"total": 1, "products": [{"product_id": f"p-{i}"} for i in range(200)]}),
    ]
    corners = [json_round_trip(item) for item in corners]
    check_contract(corners, dict(PLAIN_ARGS))
    batch_traits = {"traits": {"email": "batch@example.com"}, "library": {"name": "x"}}
    check_contract(corners, {**PLAIN_ARGS, "batch_context": batch_traits})
    check_contract(corners, {**PLAIN_ARGS, "public": True})


def test_with_a_public_key_identity_events_are_declined_and_future_times_clamped() -> None:
    ok = {"userId": "c-1", "messageId": "m-1"}
    public = {**PLAIN_ARGS, "public": True}
    merges = [
        {**ok, "type": "track", "event": name, "properties": {"previousId": "victim"}}
        for name in sorted(IDENTITY_EVENTS)
    ]
    assert check_contract(merges, public) == [None] * len(merges)
    assert all(m is not None for m in fast_encode(merges, PLAIN_ARGS))  # a server key: taken
    # A device time a day after receipt: the server key keeps it, the public key clamps it.
    future = "2026-10-26T10:00:00.000Z"
    assert parse_time(future, "t") > RECEIVED
    message = {**ok, "type": "track", "event": "X", "timestamp": future}
    [server], [browser] = fast_encode([message], PLAIN_ARGS), fast_encode([message], public)
    assert server is not None
    assert browser is not None
    assert CODEC.decode(server.value, logical=False)[1]["event_time"] == parse_time(future, "t")
    assert CODEC.decode(browser.value, logical=False)[1]["event_time"] == RECEIVED
    check_contract([message], public)
    past = {**message, "timestamp": "2026-10-01T10:00:00.000Z"}
    [kept] = check_contract([past], public)
    assert CODEC.decode(kept.value, logical=False)[1]["event_time"] == parse_time(
        past["timestamp"], "t"
    )


@pytest.mark.parametrize("created", [253_402_300_800_000, -62_135_596_800_001, 10**18])
def test_a_signup_date_beyond_datetimes_years_is_rejected_naming_the_field(created: int) -> None:
    # The Python path's (the fast path leaves sign-up dates to it): it raised ValueError
    # from datetime.fromtimestamp, which failed the whole batch, instead of rejecting the
    # one event (found by this file's generator).
    message = {
        "type": "identify",
        "userId": "c-1",
        "messageId": "m-1",
        "traits": {"createdAt": created},  # ms: 10000-01-01, before 0001-01-01, far beyond
    }
    with pytest.raises(EventValidationError, match=r"traits\.createdAt: date out of range"):
        segment_to_record(message, None, **PLAIN_ARGS)
    assert check_contract([message], PLAIN_ARGS) == [None]


@pytest.mark.parametrize(
    ("received_at", "timestamp", "sent_at"),
    [
        # event_time = received_at + 5 s: beyond 2**63 - 1
        (2**63 - 1, "2026-11-01T10:00:05Z", "2026-11-01T10:00:00Z"),
        # event_time = received_at - 5 s: below -2**63
        (-(2**63), "2026-11-01T10:00:00Z", "2026-11-01T10:00:05Z"),
    ],
    ids=["above", "below"],
)
def test_a_skew_corrected_time_beyond_64_bits_is_left_to_the_python_path(
    received_at: int, timestamp: str, sent_at: str
) -> None:
    # received_at is the server's clock, so this is far from any real request; but the
    # skew arithmetic must not wrap around in C where Python rejects the event.
    message = {
        "type": "track",
        "event": "X",
        "userId": "c-1",
        "messageId": "m-1",
        "timestamp": timestamp,
        "sentAt": sent_at,
    }
    args = {**PLAIN_ARGS, "received_at": received_at}
    assert reference(message, args) is REJECTED  # event_time does not fit a long
    [got] = fast_encode([message], args)
    wrapped = None if got is None else CODEC.decode(got.value, logical=False)[1]["event_time"]
    assert got is None, (
        f"fast path took it with event_time wrapped around 64 bits: {wrapped} "
        f"(Python: {received_at - (parse_time(sent_at, 's') - parse_time(timestamp, 't'))})"
    )


# --- any message: the fast path is the Python path or declines ------------------------------

MISSING = object()  # the key is left out

_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # JSON-able
_ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "0",
        "\x00",
        "\t\n",
        "caf\u00e9",
        "\u65e5\u672c",
        "\U0001f600",
        "\u2028",
        "\ufeff",
        "\u0663",
        "x" * 70,
        "\u00e9" * 65 + "tail",  # beyond the 64 characters a library name keeps
        "analytics.js",
        "analytics-ios",
        "null",
        "true",
        "1.5",
    ]
)
_STRINGS = st.one_of(_ASCII, _UNICODE, _ODD_STRINGS)
_INTS = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**63), 2**64 - 1),  # what orjson gives as int
    st.sampled_from(
        [0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**64 - 1]
    ),
)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 1e16, 1e300, 0.1, 1793000000000.0, 2.0**63]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _STRINGS)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STRINGS, inner, max_size=3),
    max_leaves=6,
)


# Device times: the SDKs' forms and many that are almost those.
_DATES = st.one_of(
    st.dates(date(1, 1, 1), date(9999, 12, 31)).map(
        lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    ),
    st.sampled_from(
        [
            "2026-11-01",
            "2024-02-29",  # leap day
            "0001-01-01",
            "9999-12-31",
            "1970-01-01",
            "2026-02-29",  # not a leap year
            "2026-13-01",
            "2026-11-1",
            "20261101",
            "2026-11-0\u0663",  # a non-ASCII digit
            "\uff12026-11-01",  # a fullwidth digit
            "2026/11/01",
        ]
    ),
)
_CLOCKS = st.one_of(
    st.times().map(lambda t: f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"),
    st.sampled_from(
        [
            "10:00:00",
            "23:59:59",
            "00:00:00",
            "10:00:60",
            "24:00:00",
            "10:0:00",
            "10:00",
            "1000:00",
            "10:00:0\u0663",
            "10-00-00",
            "10:00:5",
        ]
    ),
)
_FRACTIONS = st.one_of(
    st.sampled_from(["", ".123", ".123456", ".000", ".999", ".999999"]),
    st.integers(0, 999).map(lambda n: f".{n:03d}"),
    st.integers(0, 999_999).map(lambda n: f".{n:06d}"),
    st.sampled_from(
        [".1", ".12", ".1234", ".12345", ".1234567", ".123456789", ",123", ".12a", ".\uff11\uff12"]
    ),
)
_ZONES = st.one_of(
    st.sampled_from(["Z", "+00:00"]),
    st.sampled_from(
        ["z", "+01:00", "-05:30", "-00:00", "+0000", "+00", "", "+00:00Z", "UTC", "+24:00"]
    ),
    st.sampled_from(["+00:00:00", " Z", "Z ", "+00:00\u0663", "+\uff10\uff10:00"]),
)
_SEPARATORS = st.one_of(st.just("T"), st.sampled_from([" ", "t", "_", ""]))


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    text = draw(_DATES) + draw(_SEPARATORS) + draw(_CLOCKS) + draw(_FRACTIONS) + draw(_ZONES)
    if draw(st.integers(0, 7)) == 0:  # one character replaced, or the length changed
        i = draw(st.integers(0, max(0, len(text) - 1)))
        other = draw(st.sampled_from(["", "0", "9", ":", ".", "Z", "+", "-", "T", "\u0663", "00"]))
        text = text[:i] + other + text[i + 1 :]
    return text


_VALID_TIMES = st.builds(
    lambda when, spec, zone: when.isoformat(timespec=spec).replace("+00:00", zone),
    st.datetimes(  # state.bounds' times
        datetime(1970, 1, 1), datetime(2199, 12, 31, 23, 59, 59, 999_999), timezones=st.just(UTC)
    ),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.sampled_from(["Z", "+00:00"]),
)
#: At and beyond the edges of state.bounds' times and of datetime's years.
_EDGE_TIMES = st.sampled_from(
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00.000Z",
        "1970-01-01T00:00:00+00:00",
        "2199-12-31T23:59:59.999Z",
        "2199-12-31T23:59:59.999999+00:00",
        "2200-01-01T00:00:00.000Z",
        -1,
        0,
        7_258_118_399_999,
        7_258_118_400_000,
    ]
)
_TIMES = st.one_of(
    _VALID_TIMES,
    _EDGE_TIMES,
    st.sampled_from(TIMES),
    iso_times(),
    _INTS,
    _FLOATS,
    st.booleans(),
    _STRINGS,
)

# Any value at all in a field, or the field left out.
_ANY = st.one_of(st.just(MISSING), _SCALARS, _JSON, _TIMES)

EVENT_NAMES = [
    *sorted(IDENTITY_EVENTS),
    "Product Viewed",
    "Product Added",
    "Product Removed",
    *EMAIL_ACTIONS,
    "Checkout Started",
    "Order Completed",
    "Form Submitted",
    "Video Played",
    "product viewed",
]
_EVENTS = st.one_of(st.sampled_from(EVENT_NAMES), _STRINGS.filter(bool))
_IDS = st.one_of(_ASCII.filter(bool), _UNICODE.filter(bool), _ODD_STRINGS.filter(bool))
_PROPS_TEXT = st.one_of(_STRINGS, _INTS, _FLOATS)  # what _opt_text takes
_LIBRARIES = st.one_of(
    st.sampled_from(["analytics.js", "cdpflow.js", "analytics-ios", "analytics-android"]),
    _STRINGS,
)


def _drop_missing(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not MISSING}


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(MISSING), strategy)


def _record(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: _optional(v) for k, v in fields.items()}).map(_drop_missing)


_PAGE = _record(url=_STRINGS, referrer=_STRINGS)
_CAMPAIGN = _record(**{k: _STRINGS for k in ("source", "medium", "name", "term", "content")})
_CONTEXT = _record(
    ip=_STRINGS,
    userAgent=_STRINGS,
    locale=_STRINGS,
    timezone=_STRINGS,
    page=_PAGE,
    campaign=_CAMPAIGN,
    library=_record(name=_LIBRARIES, version=_STRINGS),
)
_PROPERTY_NAMES = (
    *("product_id", "sku", "id", "name", "category", "currency", "cart_id", "session_id"),
    *("campaign_id", "email_id", "link_url", "url", "referrer", "path", "title"),
)
#: The message's own fields that the mapping reads.
_FIELDS = (
    *("type", "event", "userId", "anonymousId", "messageId", "timestamp"),
    *("originalTimestamp", "sentAt", "context", "properties", "name", "traits"),
)
_QUANTITIES = st.one_of(st.integers(-3, 10), _INTS)
#: Image URLs the mapping keeps (made https when protocol-relative) or refuses.
_IMAGE_URLS = st.one_of(
    st.sampled_from([
        "https://cdn.shop.example/p/1.jpg", "http://x.example/a.png?w=1&h=2", "//cdn.example/b.jpg",
        "HTTPS://X.EXAMPLE/c.jpg", "", "javascript:alert(1)", "data:image/png;base64,AAAA",
        "/relative.jpg", "https://user:pw@x.example/a.jpg", " https://x.example/a.jpg",
        "https://", "http://[::1/x", "https://例え.jp/画像.png",
    ]),
    st.builds(lambda rest: "https://cdn.example/" + rest, _STRINGS),
    _PROPS_TEXT,
)  # fmt: skip
_PROPERTIES = st.builds(
    lambda known, price, quantity, image, extra: {**extra, **known, **price, **quantity,
                                                  **image},
    _record(**dict.fromkeys(_PROPERTY_NAMES, _PROPS_TEXT)),
    _record(price=st.one_of(_INTS, _FLOATS)),
    _record(quantity=_QUANTITIES),
    _record(image_url=_IMAGE_URLS),
    st.dictionaries(_STRINGS, _JSON, max_size=3),
)  # fmt: skip
#: An item of ``properties.products``: one of the product id keys, and the Product fields.
_PRODUCT_NAMES = ("product_id", "sku", "id", "name", "category", "price", "currency", "quantity")
_PRODUCTS = st.builds(
    lambda id_key, product_id, known, extra: {**extra, **known, id_key: product_id},
    st.sampled_from(["product_id", "sku", "id"]),
    _PROPS_TEXT,
    _record(
        name=_PROPS_TEXT,
        category=_PROPS_TEXT,
        currency=_PROPS_TEXT,
        price=st.one_of(_INTS, _FLOATS),
        quantity=_QUANTITIES,
        image_url=_IMAGE_URLS,
    ),
    st.dictionaries(_STRINGS, _JSON, max_size=2),
)
#: What ``_number`` takes: numbers, and strings float() reads (the fast path may decline).
_NUMBERS = st.one_of(
    _INTS,
    _FLOATS,
    st.sampled_from(["12.5", "1e3", " 7 ", "nan", "inf", "x", "NaN", "Infinity", "1e400"]),
    st.sampled_from([1e305, 1e9, -1e9, 1e9 + 0.5, -1e9 - 1, 10**9, 10**9 + 1, 5e-324, -0.0]),
)
_ORDER_NUMBERS = ("total", "revenue", "value", "discount")
_ORDER_PROPERTIES = st.builds(
    lambda known, numbers, products, extra: {**extra, **known, **numbers, **products},
    _record(**dict.fromkeys(("order_id", "checkout_id", "cart_id", "currency"), _PROPS_TEXT)),
    _record(**dict.fromkeys(_ORDER_NUMBERS, st.one_of(_NUMBERS, st.none()))),
    _record(products=st.lists(_PRODUCTS, max_size=3)),
    st.dictionaries(_STRINGS, _JSON, max_size=2),
)
_TRAIT_TEXTS = ("email", "firstName", "first_name", "lastName", "last_name")
_ADDRESS_NAMES = ("country", "state", "city")
_ADDRESSES = st.builds(
    lambda known, extra: {**extra, **known},
    _record(**dict.fromkeys(_ADDRESS_NAMES, _PROPS_TEXT)),
    st.dictionaries(_STRINGS, _SCALARS, max_size=2),
)
_TRAITS = st.builds(
    lambda known, extra: {**extra, **known},
    _record(
        **dict.fromkeys(_TRAIT_TEXTS, _PROPS_TEXT),
        age=st.one_of(st.none(), st.integers(0, 120), _INTS),
        address=st.one_of(st.none(), st.just({}), _ADDRESSES),
    ),
    st.dictionaries(_STRINGS, _JSON, max_size=3),
)
_SIGNUP_DATES = st.one_of(_DATES, _VALID_TIMES, _TIMES)


@st.composite
def plausible_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message of the fast path's shapes, every field of a type the mapping takes."""
    call = draw(st.sampled_from(["track", "page", "screen", "identify", "checkout", "order"]))
    message: dict[str, Any] = {"type": call, "messageId": draw(_IDS)}
    if call == "track":
        message["event"] = draw(_EVENTS)
    elif call in ("checkout", "order"):
        message["type"] = "track"
        message["event"] = "Checkout Started" if call == "checkout" else "Order Completed"
    elif call != "identify" and draw(st.booleans()):
        message["name"] = draw(_STRINGS)
    identity = draw(st.sampled_from([("userId",), ("anonymousId",), ("userId", "anonymousId")]))
    for field in identity:
        message[field] = draw(_IDS)
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        when = draw(_optional(st.one_of(_VALID_TIMES, st.sampled_from(TIMES))))
        if when is not MISSING:
            message[field] = when
    properties = _ORDER_PROPERTIES if call in ("checkout", "order") else _PROPERTIES
    for field, strategy in (("context", _CONTEXT), ("properties", properties)):
        value = draw(_optional(strategy))
        if value is not MISSING:
            message[field] = value
    if call == "order" and draw(st.integers(0, 4)):  # mostly orders the Python path takes
        props = message.setdefault("properties", {})
        props.setdefault("order_id", draw(_IDS))
        if props.get("total") is None and props.get("revenue") is None:
            props[draw(st.sampled_from(["total", "revenue"]))] = draw(_NUMBERS)
    if call == "identify":
        # Segment's SDKs send traits at the top, RudderStack's in context.traits; or both.
        where = draw(st.sampled_from(["top", "context", "both", "none"]))
        if where in ("top", "both"):
            message["traits"] = draw(_TRAITS)
        if where in ("context", "both"):
            message.setdefault("context", {})["traits"] = draw(_TRAITS)
        if where != "none" and draw(st.integers(0, 7)) == 0:  # a sign-up date: Python's
            traits = message["traits"] if where != "context" else message["context"]["traits"]
            traits[draw(st.sampled_from(["createdAt", "created_at"]))] = draw(_SIGNUP_DATES)
    return message


# Where a mutation can land: every field the mapping reads.
_PATHS = [
    *[(name,) for name in _FIELDS],
    *[("context", k) for k in ("ip", "userAgent", "locale", "timezone", "page", "campaign")],
    ("context", "library"),
    ("context", "library", "name"),
    ("context", "page", "url"),
    ("context", "page", "referrer"),
    *[("context", "campaign", k) for k in ("source", "medium", "name", "term", "content")],
    *[("properties", k) for k in (*_PROPERTY_NAMES, "price", "quantity")],
    *[("properties", k) for k in ("products", *_ORDER_NUMBERS, "order_id", "checkout_id")],
    ("properties", "products", 0),
    ("properties", "products", 1),
    *[("properties", "products", 0, k) for k in _PRODUCT_NAMES],
    ("context", "traits"),
    *[
        (*where, k)
        for where in (("traits",), ("context", "traits"))
        for k in (*_TRAIT_TEXTS, "age", "address", "createdAt", "created_at", "plan")
    ],
    *[("traits", "address", k) for k in _ADDRESS_NAMES],
    ("context", "traits", "address", "city"),
]


def _mutate(message: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Sets (or, for MISSING, removes) the value at path, making the objects and arrays
    (an int is an array index) on the way."""
    node: Any = message
    for key, next_key in itertools.pairwise(path):
        child = node.get(key) if isinstance(node, dict) else node[key]
        if isinstance(next_key, int):
            if not isinstance(child, list):
                child = []
            child.extend({} for _ in range(next_key + 1 - len(child)))
        elif not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    last = path[-1]
    if value is MISSING:
        if isinstance(node, dict):
            node.pop(last, None)
        else:
            del node[last]
    else:
        node[last] = value


_MUTATION_VALUES = st.one_of(
    st.just(MISSING),
    st.none(),
    st.just(""),
    _TIMES,
    _SCALARS,
    st.lists(_SCALARS, max_size=2),
    st.dictionaries(_STRINGS, _SCALARS, max_size=2),
    st.sampled_from(["track", "page", "screen", "identify", "group", "alias", "Track", *TIMES]),
    st.sampled_from(["Order Completed", "Checkout Started", "Product Added", "Form Submitted"]),
    st.lists(_PRODUCTS, max_size=2),
    _TRAITS,
)


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """Mostly plausible messages with a few fields changed to anything; some wild ones."""
    if draw(st.integers(0, 9)) == 0:
        wild = draw(
            st.one_of(
                _JSON,
                st.fixed_dictionaries(dict.fromkeys(_FIELDS, _ANY)).map(_drop_missing),
            )
        )
        return json_round_trip(wild)
    message = draw(plausible_messages())
    for path, value in draw(
        st.lists(st.tuples(st.sampled_from(_PATHS), _MUTATION_VALUES), max_size=3)
    ):
        _mutate(message, path, value)
    return json_round_trip(message)


_BATCH_SENT_AT = st.one_of(
    st.none(),
    st.one_of(_VALID_TIMES, st.sampled_from(TIMES), _TIMES).map(_batch_time),
    _TIMES,  # not parsed: the fast path must still agree
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 2**53, 2**53 + 1, -(2**53), -(2**53) - 1, 2**63, 2**64 - 1, 2**70]),
)
_BATCH_ARGS = st.fixed_dictionaries(
    {
        "received_at": st.one_of(
            st.just(RECEIVED),
            st.integers(RECEIVED - 10**10, RECEIVED + 10**10),
            st.integers(-(2**60), 2**60),
        ),
        "batch_sent_at": _BATCH_SENT_AT,
        "batch_context": st.one_of(
            st.none(),
            st.just({}),
            _CONTEXT,
            st.just(BATCH_CONTEXT),
            st.just({**BATCH_CONTEXT, "traits": {"email": "batch@example.com", "age": 3}}),
        ).map(lambda c: None if c is None else json_round_trip(c)),
        "client_ip": st.sampled_from([None, "127.0.0.1", "2001:db8::1", ""]),
        "public": st.booleans(),
    }
)


@settings(max_examples=400, deadline=None)
@given(items=st.lists(messages(), min_size=1, max_size=4), args=_BATCH_ARGS)
def test_the_fast_path_is_the_python_path_or_declines(
    items: list[Any], args: dict[str, Any]
) -> None:
    check_contract(items, args, event)


@pytest.mark.parametrize(
    ("image", "kept"),
    [("https://cdn.shop.example/p/1.jpg", "https://cdn.shop.example/p/1.jpg"),
     ("//cdn.shop.example/p/1.jpg", "https://cdn.shop.example/p/1.jpg"), ("", None), (None, None),
     ("javascript:alert(1)", REJECTED), ("data:image/png;base64,AAAA", REJECTED),
     ("/p/1.jpg", REJECTED), (7, REJECTED)],
)  # fmt: skip
def test_an_image_url_is_kept_by_both_paths_alike_or_left_to_the_python_path_to_refuse(
    image: Any, kept: str | None
) -> None:
    props: dict[str, Any] = {"product_id": "p1", "name": "Tote", "price": 9.5}
    if image is not None:
        props["image_url"] = image
    for name in ("Product Viewed", "Product Added"):
        item = {"type": "track", "event": name, "userId": "c-1", "messageId": "m-1",
                "properties": props}  # fmt: skip
        [fast] = check_contract([item], PLAIN_ARGS)
        expected = reference(item, PLAIN_ARGS)
        if kept == REJECTED:
            assert (fast, expected) == (None, REJECTED)
            continue
        assert fast is not None  # the usual shape: the fast path took it
        payload = CODEC.decode(fast.value)[1]["payload"]
        product = payload["product"] if name == "Product Viewed" else payload["item"]["product"]
        assert product["image_url"] == kept
