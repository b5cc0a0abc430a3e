"""Reading a declared field path out of an event, typed.

A path is dot-separated names into the event's payload (``revenue``,
``product.price``, ``item.product.category``) or, for the element of an ``each`` array,
into that element. A custom event's ``properties`` are strings (the ``cdp.CustomEvent`` map),
JSON-encoded by most producers: a path through them decodes the value first, so
``properties.topic`` of ``{"topic": "\\"pricing\\""}`` is the string ``pricing`` and
``{"n": "3"}`` the number 3; text that is not JSON is taken as the string it is (the JSON
event mapper passes strings through unencoded), as :mod:`state.alias` reads ``previousId``.

:func:`read` returns the value only if it has the declared type — ``string``, ``number``
(an int or a finite float within ``state.bounds.MAX_AMOUNT`` of zero, never a bool: custom
properties are not bounded at the edge, and no sum may leave a float) or ``bool``;
otherwise :data:`SKIP`: the event
is skipped for that trait and counted (:class:`state.traits.state.Skips`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Literal

import orjson

from state.bounds import MAX_AMOUNT

__all__ = [
    "EVENT_FIELDS",
    "SKIP",
    "ValueType",
    "parse_path",
    "property_value",
    "read",
    "typed",
    "walk",
]

ValueType = Literal["string", "number", "bool"]

SKIP: Final = None
"""What :func:`read` returns for a missing or ill-typed value."""

#: Payload field names of each event type (``avro/cdp.*.avsc``): the names a trait's
#: ``where`` and paths may start with.
EVENT_FIELDS: Final[dict[str, frozenset[str]]] = {
    "identify": frozenset(
        {"email", "first_name", "last_name", "signup_date", "age", "location", "traits"}
    ),
    "page_viewed": frozenset({"path", "title", "session_id"}),
    "product_viewed": frozenset({"product", "session_id"}),
    "cart_item_added": frozenset({"cart_id", "item"}),
    "cart_item_removed": frozenset({"cart_id", "item"}),
    "checkout_started": frozenset({"checkout_id", "cart_id", "items", "value", "currency"}),
    "order_completed": frozenset({"order_id", "items", "revenue", "currency", "discount"}),
    "email_event": frozenset({"action", "campaign_id", "message_id", "link_url"}),
    "preference_updated": frozenset({"preferences", "subscriptions", "email_consent"}),
    "form_submitted": frozenset({"form_id", "fields"}),
    "custom": frozenset({"name", "properties"}),
}


def parse_path(text: str) -> tuple[str, ...]:
    """``"product.price"`` -> ``("product", "price")``; raises ``ValueError`` if empty parts.

    >>> parse_path("properties.topic")
    ('properties', 'topic')
    """
    parts = tuple(text.split("."))
    if not text or any(not p for p in parts):
        raise ValueError(f"not a field path: {text!r} (use e.g. revenue or product.price)")
    return parts


def walk(root: Any, path: tuple[str, ...], custom: bool) -> Any:
    """The raw value at ``path`` in ``root`` (``None`` if absent). Under a custom event's
    ``properties`` each value is decoded on the way (:func:`property_value`)."""
    value = root
    for i, key in enumerate(path):
        if type(value) is not dict and not isinstance(value, Mapping):  # dicts: no ABC check
            return None
        value = value.get(key)
        if custom and i == 1 and path[0] == "properties":
            value = property_value(value)
    return value


def property_value(raw: Any) -> Any:
    """A custom event's property: its JSON value, or the text itself if not JSON.

    >>> property_value('"pricing"'), property_value("3"), property_value("pricing")
    ('pricing', 3, 'pricing')
    """
    if not isinstance(raw, str):
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def typed(value: Any, kind: ValueType) -> Any:
    """``value`` if it is of type ``kind``, else :data:`SKIP`.

    >>> typed(2.5, "number"), typed(True, "number"), typed("x", "string"), typed(1, "bool")
    (2.5, None, 'x', None)
    >>> typed(1e300, "number") is SKIP
    True
    """
    if kind == "string":
        return value if isinstance(value, str) else SKIP
    if kind == "bool":
        return value if isinstance(value, bool) else SKIP
    if isinstance(value, bool) or not isinstance(value, int | float):
        return SKIP
    if isinstance(value, float) and not math.isfinite(value):
        return SKIP
    return value if -MAX_AMOUNT <= value <= MAX_AMOUNT else SKIP


def read(root: Any, path: tuple[str, ...], kind: ValueType, custom: bool = False) -> Any:
    """The value at ``path`` if it has type ``kind``, else :data:`SKIP`.

    >>> read({"properties": {"topic": '"pricing"'}}, ("properties", "topic"), "string", True)
    'pricing'
    >>> read({"revenue": "12"}, ("revenue",), "number") is SKIP
    True
    """
    value = walk(root, path, custom)
    if kind == "string" and type(value) is str:  # the common case, without a call
        return value
    return typed(value, kind)
