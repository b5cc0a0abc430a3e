"""Events on a real broker -> ``cdpflow run`` -> triggers and dead letters on real topics."""

from __future__ import annotations

import time

from flows.decode import to_ms
from tests.conftest import T0, H
from tests.integration.conftest import read_topic, run_cdpflow, settings_env


def test_category_interest_and_dead_letters_on_kafka(
    kafka_settings, produce_events, json_event_factory
) -> None:
    j = json_event_factory
    ada = [j(t=T0 + d, customer="ada") for d in (0, H, 23 * H)]
    ben = [j(t=T0 + d, customer="ben") for d in (0, 12 * H, 24 * H + 1)]
    cleo = [j(t=T0, customer="cleo"), j(t=T0 + H, customer="cleo")]
    cleo.append(dict(cleo[0]))  # redelivered: must not count as the third view
    poison = b"\xc3\x01 definitely not avro"
    # The poison record sits between Ada's views: the ones after it must still count.
    items = [ada[0], ada[1], poison, ada[2], *ben, *cleo]
    coordinates = produce_events(kafka_settings, items)

    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))

    out = read_topic(kafka_settings, kafka_settings.topics.triggers)
    # Only the case study's rule: these customers' last activity is weeks before today, so
    # the lifecycle rules also (rightly) move them to lapsed with a win_back trigger.
    interest = [
        (r, m) for name, r, m in out if name == "cdp.Trigger" and r["rule"] == "category_interest"
    ]
    assert [(t["customer_id"], t["category"], to_ms(t["event_time"])) for t, _ in interest] == [
        ("ada", "shoes", T0 + 23 * H)
    ]
    assert [m.key() for _, m in interest] == [b"ada"]

    dead = read_topic(kafka_settings, kafka_settings.topics.dead_letters)
    letters = [
        (r["reason"], r["source_partition"], r["source_offset"], r["raw"]) for _, r, _ in dead
    ]
    assert letters == [("unknown_schema", *coordinates[2], poison)]
    assert dead[0][1]["source_topic"] == kafka_settings.topics.events

    profiles = {
        m.key(): r for name, r, m in read_topic(kafka_settings, kafka_settings.topics.profiles)
    }
    assert set(profiles) == {b"ada", b"ben", b"cleo"}


def test_tags_lifecycle_segments_and_triggers_on_kafka(kafka_settings, produce_events) -> None:
    """The default rules on the real broker: TagChange and Trigger records, including the
    abandoned cart that a timer fires 60 minutes after the last cart change."""
    now = int(time.time() * 1000)
    t = now - 3 * H
    item = {"product": {"product_id": "sku-9", "price": 120.0}, "quantity": 1}

    def ev(i: int, kind: str, at: int, payload: dict) -> dict:
        return {"event_id": f"r-{i}", "type": kind, "customer_id": "dana", "timestamp": at,
                "source": "test", "payload": payload}  # fmt: skip

    events = [
        ev(1, "identify", t, {"email": "dana@example.com", "first_name": "Dana"}),
        ev(2, "preference_updated", t + 1, {"preferences": {"interests": "premium"}}),
        *(
            ev(
                3 + k,
                "order_completed",
                t + 2 + k,
                {"order_id": f"o{k}", "revenue": 200.0, "items": [item]},
            )
            for k in range(3)
        ),
        ev(9, "cart_item_added", t + H, {"item": item}),
    ]
    produce_events(kafka_settings, events)
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))

    out = read_topic(kafka_settings, kafka_settings.topics.triggers)
    changes = {(r["tag"], r["added"]) for name, r, _ in out if name == "cdp.TagChange"}
    assert {
        ("lifecycle:active", True),
        ("interest:premium", True),
        ("frequent_buyer", True),
        ("high_value", True),
        ("segment:recent_high_value_premium", True),
        ("abandoned_cart", True),
    } <= changes
    triggers = {r["rule"]: r for name, r, _ in out if name == "cdp.Trigger"}
    assert set(triggers) == {"segment_entered", "abandoned_cart"}
    cart = triggers["abandoned_cart"]
    assert to_ms(cart["event_time"]) == t + 2 * H  # 60 minutes after the cart change
    assert cart["amount"] == 120.0
    assert cart["email"] == "dana@example.com"
    assert cart["profile"]["first_name"] == "Dana"
    assert "frequent_buyer" in cart["profile"]["tags"]
    [snapshot] = [r for name, r, _ in read_topic(kafka_settings, kafka_settings.topics.profiles)]
    assert snapshot["lifecycle"] == "active"
    assert "abandoned_cart" in snapshot["tags"]
    assert snapshot["segments"] == ["recent_high_value_premium"]


def test_identity_stitching_on_kafka(kafka_settings, produce_events) -> None:
    """Two views on a phone before login, the login, one view after: the trigger is the
    customer's, and the link is audited on the identities topic."""
    view = {"product": {"product_id": "sku-1", "category": "shoes"}}

    def e(i: int, t: int, kind: str, payload: dict, customer: str | None = None) -> dict:
        return {"event_id": f"id-{i}", "type": kind, "customer_id": customer,
                "anonymous_id": "device-1", "timestamp": t, "source": "web",
                "payload": payload}  # fmt: skip

    produce_events(kafka_settings, [
        e(1, T0, "product_viewed", view),
        e(2, T0 + H, "product_viewed", view),
        e(3, T0 + 2 * H, "identify", {"email": "d@example.com"}, customer="dora"),
        e(4, T0 + 3 * H, "product_viewed", view),
        e(3, T0 + 2 * H, "identify", {"email": "d@example.com"}, customer="dora"),  # again
    ])  # fmt: skip
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))

    out = read_topic(kafka_settings, kafka_settings.topics.triggers)
    interest = [r for n, r, _ in out if n == "cdp.Trigger" and r["rule"] == "category_interest"]
    assert [(t["customer_id"], t["email"]) for t in interest] == [("dora", "d@example.com")]
    links = read_topic(kafka_settings, kafka_settings.topics.identities)
    assert [(r["outcome"], r["anonymous_id"], r["linked_to"], r["merged_events"])
            for _, r, _ in links] == [("linked", "device-1", "dora", 2)]  # fmt: skip
