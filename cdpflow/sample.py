"""The bundled sample: a few days of a small shop, as JSON events.

``cdpflow/data/sample_events.jsonl`` is this module's output, committed so the demo
reads a file like any user would (``python -m cdpflow.sample`` rewrites it; a test
checks the two agree). Seeded, so every run is the same.

It tells a few stories among background traffic:

- ``c-1001`` (Ada) views shoes at t, t+1h and t+23h: one ``category_interest`` trigger;
- ``c-1002`` (Ben) views shoes at t, t+12h and t+24h+1ms: none (the first fell out);
- ``c-1003`` (Cleo) has her first bags view delivered twice: counted once, so with her
  second view that makes two, and no trigger;
- ``c-1002`` (Ben) also browses hats on his phone before logging in: two anonymous
  views, a login that links the phone to him (its history merges into his profile) and
  one more view: a ``category_interest`` for hats, for Ben;
- ``c-1011`` (Kai) says in the preference centre that premium interests him: with his
  orders that puts him in the ``recent_high_value_premium`` segment;
- ``c-1010`` (Jon) unsubscribes on day two: no trigger reaches him after that;
- an anonymous visitor browses; a late view arrives for ``c-1004``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

__all__ = ["SAMPLE_PATH", "generate", "load"]

SAMPLE_PATH = Path(__file__).with_name("data") / "sample_events.jsonl"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
CATEGORIES = ("shoes", "bags", "jackets", "watches", "hats", "premium")
NAMES = [("Ada", "Lovelace"), ("Ben", "Okafor"), ("Cleo", "Martin"), ("Dev", "Patel"),
         ("Eva", "Novak"), ("Finn", "Berg"), ("Gia", "Rossi"), ("Hugo", "Blanc"),
         ("Ines", "Costa"), ("Jon", "Holm"), ("Kai", "Tanaka"), ("Lea", "Weber")]  # fmt: skip


class _Builder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._n = 0

    def add(self, kind: str, when: datetime, payload: dict[str, Any], *, customer: str | None,
            anonymous: str | None = None, event_id: str | None = None,
            received: datetime | None = None) -> str:  # fmt: skip
        self._n += 1
        eid = event_id or f"evt-{self._n:05d}"
        event = {
            "event_id": eid,
            "type": kind,
            "customer_id": customer,
            "anonymous_id": anonymous,
            "timestamp": _iso(when),
            "received_at": _iso(received or when + timedelta(milliseconds=120)),
            "source": "web",
            "context": {"timezone": "Europe/Berlin", "page_url": f"https://shop.example/{kind}"},
            "payload": payload,
        }
        self.events.append(event)
        return eid


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _product(rng: random.Random, category: str) -> dict[str, Any]:
    n = rng.randint(1, 40)
    price = round(rng.uniform(15, 400) * (3 if category == "premium" else 1), 2)
    return {"product_id": f"{category[:3]}-{n:03d}", "name": f"{category.title()} #{n}",
            "category": category, "price": price, "currency": "EUR"}  # fmt: skip


def generate(seed: int = 7) -> list[dict[str, Any]]:
    """The sample events, in arrival order (mostly event-time order, a few out of order)."""
    rng = random.Random(seed)
    b = _Builder()
    hour = timedelta(hours=1)
    for i, (first, last) in enumerate(NAMES):
        cid = f"c-{1001 + i}"
        b.add("identify", START + i * timedelta(minutes=7),
              {"email": f"{first.lower()}@example.com", "first_name": first, "last_name": last,
               "signup_date": "2026-10-20", "location": {"country": "DE", "city": "Berlin"}},
              customer=cid)  # fmt: skip

    t = START + 2 * hour
    ada, ben, cleo = "c-1001", "c-1002", "c-1003"
    shoes = [_product(rng, "shoes") for _ in range(3)]
    for offset, product in zip((timedelta(0), hour, 23 * hour), shoes, strict=True):
        b.add("product_viewed", t + offset, {"product": product}, customer=ada)
    for offset, product in zip(
        (timedelta(0), 12 * hour, 24 * hour + timedelta(milliseconds=1)), shoes, strict=True
    ):
        b.add("product_viewed", t + offset, {"product": product}, customer=ben)
    bag = _product(rng, "bags")
    first = b.add("product_viewed", t, {"product": bag}, customer=cleo)
    b.add("product_viewed", t, {"product": bag}, customer=cleo, event_id=first)  # redelivered
    b.add("product_viewed", t + 2 * hour, {"product": _product(rng, "bags")}, customer=cleo)
    # Ben browses hats on his phone before logging in: two views as an anonymous visitor,
    # then the login links the phone to him, and one more view completes the three.
    hat = _product(rng, "hats")
    b.add("product_viewed", t + 25 * hour, {"product": hat}, customer=None, anonymous="phone-ben")
    b.add("product_viewed", t + 26 * hour, {"product": _product(rng, "hats")}, customer=None,
          anonymous="phone-ben")  # fmt: skip
    b.add("identify", t + 27 * hour, {"email": "ben@example.com"}, customer=ben,
          anonymous="phone-ben")  # fmt: skip
    b.add("product_viewed", t + 28 * hour, {"product": hat}, customer=ben, anonymous="phone-ben")

    # Preference centre, placed in time among the background traffic below: Kai likes
    # premium; Jon opts out of marketing email.
    scheduled = [
        (START + 5 * hour, {"preferences": {"interests": "premium,outdoor"}}, "c-1011"),
        (START + 30 * hour, {"email_consent": False}, "c-1010"),
    ]

    # Background traffic: sessions of page and product views, carts, orders, email activity.
    clock = START + 3 * hour
    customers = [f"c-{1001 + i}" for i in range(len(NAMES))]
    while len(b.events) < 340:
        clock += timedelta(minutes=rng.randint(3, 25))
        while scheduled and scheduled[0][0] <= clock:
            when, prefs, who = scheduled.pop(0)
            b.add("preference_updated", when, prefs, customer=who)
        cid = rng.choice(customers[3:])
        favourite = CATEGORIES[int(cid[-2:]) % len(CATEGORIES)]
        roll = rng.random()
        if roll < 0.15:
            b.add("page_viewed", clock, {"path": "/", "title": "Home"}, customer=cid)
        elif roll < 0.55:
            category = favourite if rng.random() < 0.3 else rng.choice(CATEGORIES)
            b.add("product_viewed", clock, {"product": _product(rng, category)}, customer=cid)
        elif roll < 0.78:
            item = {"product": _product(rng, favourite), "quantity": rng.randint(1, 2)}
            b.add("cart_item_added", clock, {"cart_id": f"cart-{cid}", "item": item},
                  customer=cid)  # fmt: skip
        elif roll < 0.86:
            items = [{"product": _product(rng, favourite), "quantity": 1}]
            revenue = round(sum(i["product"]["price"] for i in items), 2)
            b.add("order_completed", clock, {"order_id": f"ord-{len(b.events)}", "items": items,
                  "revenue": revenue, "currency": "EUR"}, customer=cid)  # fmt: skip
        else:
            action = rng.choice(["delivered", "opened", "opened", "clicked"])
            b.add("email_event", clock, {"action": action, "campaign_id": "autumn-sale"},
                  customer=cid)  # fmt: skip
        if rng.random() < 0.05:
            anon = f"anon-{rng.randint(100, 999)}"
            b.add("product_viewed", clock, {"product": _product(rng, rng.choice(CATEGORIES))},
                  customer=None, anonymous=anon)  # fmt: skip

    # A view from a phone that was offline for two days arrives now: late for the window.
    b.add("product_viewed", clock - timedelta(days=2), {"product": _product(rng, "hats")},
          customer="c-1004", received=clock)  # fmt: skip
    return b.events


def load(path: Path = SAMPLE_PATH) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def write(path: Path = SAMPLE_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in generate()))


if __name__ == "__main__":
    write()
