"""A seeded, pre-encoded workload: Zipf-distributed customers browsing in sessions,
carting (mostly abandoned), buying, and opening and clicking emails.

Of the events: 55 % product views and 15 % page views (one session per customer until 30
minutes without an event), 10 % cart adds, 4 % orders, 16 % email events (delivered,
opened, clicked 3:2:1). Encoding happens before timing starts, so the generator is never
the bottleneck.
"""

from __future__ import annotations

import random
from itertools import accumulate
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage

from cdpflow.codec import AvroCodec

__all__ = ["encoded_events"]

CATEGORIES = [f"cat-{i}" for i in range(30)]
T0 = 1_793_000_000_000
SESSION_GAP_MS = 30 * 60_000
#: Of the email events: delivered, then fewer opened, fewer clicked.
EMAIL_ACTIONS = ("delivered",) * 3 + ("opened",) * 2 + ("clicked",)


def encoded_events(
    codec: AvroCodec,
    events: int,
    customers: int,
    seed: int = 1,
    *,
    zipf: bool = True,
    t0: int = T0,
) -> list[KafkaSourceMessage[bytes | None, bytes | None]]:
    """``zipf=False``: customers in turn, so each of them gets ``events / customers``.
    ``t0``: event time of the first event (they then advance 200 ms apart on average)."""
    rng = random.Random(seed)
    if zipf:
        # Zipf(s=1.1) over customer ranks: a few heavy users, a long tail.
        weights = list(accumulate(1 / (rank**1.1) for rank in range(1, customers + 1)))
        ids = rng.choices(range(customers), cum_weights=weights, k=events)
    else:
        ids = [i % customers for i in range(events)]
    msgs = []
    t = t0
    sessions: dict[int, tuple[str, int]] = {}  # customer -> (session id, its last event time)
    for offset, cid in enumerate(ids):
        t += rng.randint(1, 400)
        # A customer's events less than 30 minutes apart belong to one session.
        session, last = sessions.get(cid, ("", -SESSION_GAP_MS))
        if t - last > SESSION_GAP_MS:
            session = f"s-{cid}-{offset}"
        sessions[cid] = (session, t)
        roll = rng.random()
        category = rng.choice(CATEGORIES)
        product = {"product_id": f"{category}-{rng.randint(1, 50)}", "name": None,
                   "category": category, "price": 49.0, "currency": "EUR"}  # fmt: skip
        payload: tuple[str, dict[str, Any]]
        if roll < 0.55:
            kind = "product_viewed"
            payload = ("cdp.ProductViewed", {"product": product, "session_id": session})
        elif roll < 0.70:
            kind, payload = "page_viewed", ("cdp.PageViewed", {"path": "/", "session_id": session})
        elif roll < 0.80:  # most carts are abandoned: orders are fewer than cart adds
            kind = "cart_item_added"
            payload = ("cdp.CartItemChanged", {"item": {"product": product, "quantity": 1}})
        elif roll < 0.84:
            kind = "order_completed"
            payload = ("cdp.OrderCompleted", {"order_id": f"o-{offset}", "revenue": 49.0,
                       "items": [{"product": product, "quantity": 1}]})  # fmt: skip
        else:
            kind = "email_event"
            action = EMAIL_ACTIONS[int((roll - 0.84) / 0.16 * len(EMAIL_ACTIONS))]
            payload = ("cdp.EmailEvent", {"action": action, "campaign_id": "weekly"})
        record = {"event_id": f"b-{offset}", "event_type": kind, "customer_id": f"c-{cid}",
                  "event_time": t, "received_at": t, "source": "bench",
                  "payload": payload}  # fmt: skip
        key = f"c-{cid}".encode()
        msgs.append(KafkaSourceMessage(key, codec.encode("cdp.Event", record), topic="bench",
                                       partition=0, offset=offset))  # fmt: skip
    return msgs
