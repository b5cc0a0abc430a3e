"""The whole dataflow, in-process: decode, key, state, encode, dead letters."""

from __future__ import annotations

import orjson

from cdpflow import sample
from flows.decode import to_ms
from tests.conftest import T0, H


def test_case_study_through_the_dataflow(run_flow, json_event_factory) -> None:
    j = json_event_factory
    ada = [j(t=T0 + d, customer="ada") for d in (0, H, 23 * H)]
    ben = [j(t=T0 + d, customer="ben") for d in (0, 12 * H, 24 * H + 1)]
    events = ada + ben
    r = run_flow(events)
    assert [(t["customer_id"], t["category"], to_ms(t["event_time"])) for t in r.triggers] == [
        ("ada", "shoes", T0 + 23 * H)
    ]
    assert r.dead_letters == []
    assert set(r.profiles) == {"ada", "ben"}


def test_redelivered_event_does_not_count_twice(run_flow, json_event_factory) -> None:
    j = json_event_factory
    first = j(t=T0)
    r = run_flow([first, first, j(t=T0 + H)])
    assert r.triggers == []
    assert r.dead_letters == []


def test_corrupt_message_becomes_a_dead_letter_and_the_flow_goes_on(
    run_flow, json_event_factory
) -> None:
    j = json_event_factory
    events = [j(t=T0), j(t=T0 + H), j(t=T0 + 2 * H)]
    r = run_flow(events, raw=[(1, b"\x00garbage"), (2, b"\xc3\x01" + bytes(8) + b"x")])
    assert [(d["reason"], d["source_offset"], d["source_topic"]) for d in r.dead_letters] == [
        ("corrupt_avro", 1, "t"),
        ("unknown_schema", 2, "t"),
    ]
    assert r.dead_letters[0]["raw"] == b"\x00garbage"
    # Events after the poison records were still applied and fired the trigger.
    assert len(r.triggers) == 1


def test_invalid_events_are_dead_lettered_with_their_id(run_flow, json_event_factory) -> None:
    j = json_event_factory
    future = j(t=T0)
    future["received_at"] = T0 - 3 * 24 * H
    anonymous = j(t=T0, customer=None)
    r = run_flow([future, anonymous])
    reasons = sorted((d["reason"], d["event_id"]) for d in r.dead_letters)
    assert reasons == sorted([("event_time_in_future", future["event_id"]),
                              ("missing_identity", anonymous["event_id"])])  # fmt: skip


def test_sample_one_and_two_workers_agree(run_flow) -> None:
    events = sample.load()
    one = run_flow(events)
    two = run_flow(events, workers=2)

    def key(r):
        return (
            sorted(t["trigger_id"] for t in r.triggers),
            {c: p["profile_json"] for c, p in r.profiles.items()},
            sorted((d["reason"], d["event_id"]) for d in r.dead_letters),
        )

    assert key(one) == key(two)
    assert len(one.triggers) > 0


def test_late_events_and_dead_letters_are_counted_in_metrics(run_flow, json_event_factory) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_late = value("cdpflow_late_events_total")
    before_dlq = value("cdpflow_dead_letters_total", reason="late_event")
    before_corrupt = value("cdpflow_dead_letters_total", reason="corrupt_avro")
    j = json_event_factory
    late = [j(t=T0 + 10 * H), j(t=T0), j(t=T0 + H)]  # two views more than 1 h behind
    r = run_flow(late, raw=[(0, b"junk")])
    refused = [d for d in r.dead_letters if d["reason"] == "late_event"]
    assert len(refused) == 2
    assert value("cdpflow_late_events_total") - before_late == len(refused)
    assert value("cdpflow_dead_letters_total", reason="late_event") - before_dlq == 2
    assert value("cdpflow_dead_letters_total", reason="corrupt_avro") - before_corrupt == 1


def _anon_story() -> list[dict]:
    def e(i: int, t: int, kind: str, payload: dict, customer: str | None = None) -> dict:
        return {"event_id": f"s-{i}", "type": kind, "customer_id": customer,
                "anonymous_id": "visitor-7", "timestamp": t, "source": "web",
                "payload": payload}  # fmt: skip

    view = {"product": {"product_id": "sku-1", "category": "shoes"}}
    return [e(1, T0, "product_viewed", view), e(2, T0 + H, "product_viewed", view),
            e(3, T0 + 2 * H, "identify", {"email": "v@example.com"}, customer="c-77"),
            e(4, T0 + 3 * H, "product_viewed", view)]  # fmt: skip


def test_identity_stitching_through_the_dataflow_on_two_workers(run_flow) -> None:
    for workers in (1, 2):
        r = run_flow(_anon_story(), workers=workers)
        interest = [t for t in r.triggers if t["rule"] == "category_interest"]
        assert [(t["customer_id"], t["email"]) for t in interest] == [("c-77", "v@example.com")]
        assert set(r.profiles) == {"c-77", "anon:visitor-7"}
        counts = orjson.loads(r.profiles["c-77"]["profile_json"])["event_counts"]
        assert counts == {"identify": 1, "product_viewed": 3}


def test_customer_alias_through_the_dataflow_hands_the_state_over_and_forwards(
    run_flow,
) -> None:
    view = {"product": {"product_id": "sku-1", "category": "shoes"}}

    def e(i: int, t: int, kind: str, payload: dict, customer: str) -> dict:
        return {"event_id": f"a-{i}", "type": kind, "customer_id": customer,
                "timestamp": t, "source": "web", "payload": payload}  # fmt: skip

    alias = {"name": "alias", "properties": {"previousId": '"guest-9"'}}
    story = [e(1, T0, "product_viewed", view, "guest-9"),
             e(2, T0 + H, "product_viewed", view, "guest-9"),
             e(3, T0 + 2 * H, "custom", alias, "c-9"),
             e(4, T0 + 3 * H, "product_viewed", view, "guest-9")]  # fmt: skip
    for workers in (1, 2):
        r = run_flow(story, workers=workers)
        assert [(m["previous_id"], m["customer_id"], m["outcome"], m["merged_events"])
                for m in r.customer_merges] == [("guest-9", "c-9", "merged", 2)]  # fmt: skip
        handover, forwarded = r.resent
        assert (handover["customer_id"], handover["source"]) == ("c-9", "cdpflow merge")
        assert handover["payload"]["name"] == "merge_state"
        assert (forwarded["event_id"], forwarded["customer_id"]) == ("a-4", "c-9")
        assert "guest-9" not in r.profiles  # a tombstone followed its last snapshot
