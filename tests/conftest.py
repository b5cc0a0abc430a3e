"""Shared fixtures: factories for events in the shapes each layer consumes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from state.events import HOUR_MS, Event

T0 = 1_793_000_000_000  # 2026-10-25T...Z: an arbitrary, fixed event-time origin
H = HOUR_MS


@pytest.fixture
def event_factory() -> Callable[..., Event]:
    """Build ``state.Event``s with unique ids unless one is given."""
    counter = itertools.count(1)

    def make(
        event_type: str = "product_viewed",
        t: int = T0,
        *,
        customer: str | None = "c-1",
        anonymous: str | None = None,
        event_id: str | None = None,
        category: str | None = "shoes",
        product_id: str = "sku-1",
        payload: dict[str, Any] | None = None,
        received_at: int | None = None,
    ) -> Event:
        if payload is None:
            payload = (
                {"product": {"product_id": product_id, "category": category}}
                if event_type == "product_viewed"
                else {}
            )
        return Event(
            event_id=event_id or f"e-{next(counter)}",
            event_type=event_type,
            event_time=t,
            received_at=t if received_at is None else received_at,
            customer_id=customer,
            anonymous_id=anonymous,
            source="test",
            payload=payload,
        )

    return make


@pytest.fixture
def json_event_factory() -> Callable[..., dict[str, Any]]:
    """Build JSON events as the sample file and ``record_from_json`` take them."""
    counter = itertools.count(1)

    def make(
        event_type: str = "product_viewed",
        t: int = T0,
        *,
        customer: str | None = "c-1",
        event_id: str | None = None,
        category: str = "shoes",
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if payload is None and event_type == "product_viewed":
            payload = {"product": {"product_id": f"sku-{category}", "category": category}}
        return {
            "event_id": event_id or f"j-{next(counter)}",
            "type": event_type,
            "customer_id": customer,
            "timestamp": t,
            "source": "test",
            "payload": payload or {},
        }

    return make
