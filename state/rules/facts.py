"""The names a rule may use: the facts the profile exposes to the rules engine.

Times are milliseconds since the epoch (UTC), durations milliseconds, money in the
order's currency. ``tags``, ``segments`` and ``lifecycle`` are what the engine has
derived so far in the same evaluation (tags first, in file order; then preference tags;
then the lifecycle stage; then segments, in file order), so later rules may use earlier
ones.
"""

from __future__ import annotations

__all__ = ["FACTS"]

FACTS: dict[str, str] = {
    "orders": "lifetime number of orders",
    "revenue": "lifetime revenue",
    "average_order_value": "lifetime revenue / orders (null before the first order)",
    "orders_90d": "orders in the trailing 90 days (day buckets)",
    "revenue_180d": "revenue in the trailing 180 days (day buckets)",
    "last_order_at": "time of the newest order",
    "first_seen": "time of the oldest event",
    "last_active": "time of the newest event",
    "signup_at": "sign-up date (identify.signup_date) as a time, midnight UTC",
    "active_days_7d": "distinct UTC days with activity in the trailing 7 days",
    "active_days_30d": "distinct UTC days with activity in the trailing 30 days",
    "email_engagements_7d": "email opens + clicks in the trailing 7 days",
    "email_opens": "lifetime email opens",
    "email_clicks": "lifetime email clicks",
    "page_views": "lifetime page views",
    "cart_items": "items (quantity summed) in the current cart",
    "cart_value": "value of the current cart",
    "cart_updated_at": "time of the last cart change (null with an empty cart)",
    "unsubscribed": "true once the customer opted out of marketing email",
    "email": "the email address, if known",
    "attributes": "identity attributes and traits, e.g. attributes.country",
    "preferences": "preference-centre key/values, e.g. preferences.interests",
    "subscriptions": "topic -> subscribed",
    "category_views_24h": "category -> views in the trailing 24 hours",
    "tags": "tags derived so far in this evaluation",
    "segments": "segments derived so far in this evaluation",
    "lifecycle": "lifecycle stage derived in this evaluation",
}
