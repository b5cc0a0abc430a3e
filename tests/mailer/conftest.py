"""Factories for triggers and profiles as the mailer sees them, and a real SMTP server."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from cdpflow.codec import default_codec
from cdpflow.secrets import Secret
from mailer.links import LinkConfig
from state.store import StoredProfile
from tests.mailer.smtp_server import RecordingHandler, smtp_server

NOW = 1_795_000_000_000  # 2026-11-17T...Z, a fixed wall clock for unit tests
#: The one-click unsubscribe every mailer needs (it does not start without it).
UNSUBSCRIBE_URL = "https://collect.shop.example/v1/unsubscribe"
UNSUBSCRIBE_SECRET = "u" * 32
UNSUBSCRIBE_ENV = {
    "CDPFLOW_MAILER_UNSUBSCRIBE_URL": UNSUBSCRIBE_URL,
    "CDPFLOW_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
}
UNSUBSCRIBE_LINKS = LinkConfig(
    unsubscribe_url=UNSUBSCRIBE_URL, secrets=(Secret(UNSUBSCRIBE_SECRET),)
)


@pytest.fixture
def trigger_factory() -> Callable[..., dict[str, Any]]:
    """``cdp.Trigger`` records (times in ms) with unique ids unless one is given."""
    counter = itertools.count(1)

    def make(
        rule: str = "category_interest",
        *,
        customer: str = "c-1",
        trigger_id: str | None = None,
        emitted_at: int = NOW,
        **fields: Any,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "trigger_id": trigger_id or f"t-{next(counter)}",
            "rule": rule,
            "customer_id": customer,
            "email": "ada@example.com",
            "category": "shoes",
            "product_ids": ["sho-021", "sho-026"],
            "items": [],
            "amount": None,
            "currency": None,
            "attributes": {"views": "3"},
            "profile": {"email": "ada@example.com", "first_name": "Ada", "timezone": None,
                        "lifecycle": None, "tags": [], "segments": []},
            "event_time": emitted_at - 1000,
            "emitted_at": emitted_at,
        }  # fmt: skip
        record.update(fields)
        return record

    return make


@pytest.fixture
def encode_trigger() -> Callable[[dict[str, Any]], bytes]:
    return lambda record: default_codec().encode("cdp.Trigger", record)


@pytest.fixture
def stored_profile_factory() -> Callable[..., StoredProfile]:
    def make(
        customer: str = "c-1",
        *,
        email: str | None = "ada@example.com",
        first_name: str | None = "Ada",
        unsubscribed: bool = False,
        timezone: str | None = None,
        consent: bool | None = None,
    ) -> StoredProfile:
        attrs: dict[str, Any] = {"email": email, "first_name": first_name}
        if timezone:
            attrs["timezone"] = timezone
        view = {"attributes": attrs, "unsubscribed": unsubscribed,
                "preferences": {"email_consent": consent}}  # fmt: skip
        return StoredProfile.from_snapshot(
            {"customer_id": customer, "email": email, "first_name": first_name,
             "profile_json": orjson.dumps(view).decode(), "state_version": 1,
             "event_time": NOW, "emitted_at": NOW}
        )  # fmt: skip

    return make


@pytest.fixture
def smtp_handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def smtp(smtp_handler: RecordingHandler) -> Iterator[tuple[str, int]]:
    with smtp_server(smtp_handler) as address:
        yield address
