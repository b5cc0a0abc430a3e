"""One record never stops a worker: hostile records on the events topic, and exceptions in
every stage, become dead letters while the neighbours' outputs stay right.

Records here are written straight with fastavro (``encode_with``), as a rogue producer on
``cdp.events`` would, past every check the collector makes.
"""

from __future__ import annotations

from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

import flows.identity_step
import flows.profile_step
from cdpflow.codec import default_codec
from cdpflow.demo import collect
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings
from flows.dataflow import build_flow
from tests.conftest import T0, H

NOW = T0 + 25 * H


def _rogue(event: dict[str, Any], **changes: Any) -> bytes:
    """``event`` as a cdp.Event record, with ``changes`` applied after validation."""
    codec = default_codec()
    record = record_from_json(event, codec)
    payload = changes.pop("payload", None)
    record.update(changes)
    if payload is not None:
        branch, fields = record["payload"]  # (record name, fields), as fastavro takes a union
        record["payload"] = (branch, {**fields, **payload})
    return codec.encode_with(codec.schema("cdp.Event"), record)


def _run(values: list[bytes], settings: Settings | None = None) -> Any:
    codec = default_codec()
    msgs = [
        KafkaSourceMessage(b"k", v, topic="t", partition=0, offset=i) for i, v in enumerate(values)
    ]
    out: list[Any] = []
    flow = build_flow(TestingSource(msgs), TestingSink(out), settings or Settings(),
                      clock=lambda: NOW)  # fmt: skip
    run_main(flow)
    return collect(out, codec, len(msgs))


def _good(j: Any, customer: str = "ok") -> list[bytes]:
    """Three views of one category in 24 h: one category-interest trigger."""
    codec = default_codec()
    return [
        codec.encode("cdp.Event", record_from_json(j(t=T0 + d, customer=customer), codec))
        for d in (0, H, 2 * H)
    ]


def _order(j: Any, customer: str, revenue: Any = 10.0, t: int = T0) -> dict[str, Any]:
    return j(
        "order_completed",
        t,
        customer=customer,
        payload={"order_id": "o-1", "revenue": revenue, "currency": "EUR", "items": []},
    )


@pytest.mark.parametrize(
    ("hostile", "reason", "field"),
    [
        (lambda j: _rogue(_order(j, "v"), payload={"revenue": float("inf")}), "invalid_field",
         "payload.revenue"),
        (lambda j: _rogue(_order(j, "v"), payload={"revenue": float("nan")}), "invalid_field",
         "payload.revenue"),
        (lambda j: _rogue(_order(j, "v"), payload={"revenue": 1e305}), "invalid_field",
         "payload.revenue"),
        (lambda j: _rogue(j("identify", T0, customer="v", payload={"email": "v@x.example"}),
                          payload={"signup_date": 10**8}), "invalid_field", "signup_date"),
        (lambda j: _rogue(j(t=T0, customer="v"), event_time=3 * 10**14, received_at=3 * 10**14),
         "invalid_time", "event_time"),
        (lambda j: _rogue(j(t=T0, customer="v"), event_time=-(10**12), received_at=-(10**12)),
         "invalid_time", "event_time"),
        (lambda j: _rogue(j("identify", T0, customer="v",
                            payload={"traits": {"bio": '"' + "x" * 30_000 + '"'}})),
         "field_too_large", "payload.traits.bio"),
        (lambda j: _rogue(j(t=T0, customer="v" * 10_000)), "field_too_large", "customer_id"),
    ],
)  # fmt: skip
def test_hostile_record_is_dead_lettered_naming_the_field_and_the_flow_goes_on(
    json_event_factory, hostile, reason, field
) -> None:
    j = json_event_factory
    bad = hostile(j)
    r = _run([bad, *_good(j)])
    assert [(d["reason"], d["source_offset"]) for d in r.dead_letters] == [(reason, 0)]
    assert field in r.dead_letters[0]["error"]
    assert r.dead_letters[0]["raw"] == bad  # kept whole, for a redrive once fixed
    assert [t["customer_id"] for t in r.triggers] == ["ok"]
    assert "v" not in r.profiles


def _snapshot_of(r: Any, customer: str) -> Any:
    import orjson

    return orjson.loads(r.profiles[customer]["profile_json"])


def test_exception_mid_fold_rolls_the_customer_back_and_dead_letters_the_event(
    json_event_factory, monkeypatch
) -> None:
    """The fold raises *after* changing the state (a half-applied event); the customer's
    outputs and state equal those of a run without that event."""
    j = json_event_factory
    codec = default_codec()
    events = [j(t=T0 + d * H, customer="c") for d in range(6)]
    events.insert(3, _order(j, "c", 99.0, T0 + 2 * H + 1))
    poison_id = events[3]["event_id"]
    values = [codec.encode("cdp.Event", record_from_json(e, codec)) for e in events]
    without = [v for i, v in enumerate(values) if i != 3]
    real = flows.profile_step.apply_routed

    def half_applied(st, ev, cfg, *, resend=True):
        out = real(st, ev, cfg, resend=resend)
        if ev.event_id == poison_id:
            raise ZeroDivisionError("a bug, after the state changed")
        return out

    # More than one journal checkpoint: the rollback replays across them.
    monkeypatch.setattr("state.journal.CHECKPOINT_EVERY", 2)
    monkeypatch.setattr(flows.profile_step, "apply_routed", half_applied)
    failed = _run(values)
    monkeypatch.setattr(flows.profile_step, "apply_routed", real)
    clean = _run(without)

    assert [(d["reason"], d["error_type"], d["event_id"], d["source_offset"])
            for d in failed.dead_letters] == [
        ("processing_error", "ZeroDivisionError", poison_id, 3)
    ]  # fmt: skip
    error = failed.dead_letters[0]["error"]
    assert error.startswith("profile failed: ZeroDivisionError at flows/test_failure_boundary.py:")
    assert "a bug" not in error  # the exception's text could carry values: never kept
    assert _snapshot_of(failed, "c") == _snapshot_of(clean, "c")
    assert _snapshot_of(failed, "c")["purchases"]["order_count"] == 0
    assert sorted(t["trigger_id"] for t in failed.triggers) == sorted(
        t["trigger_id"] for t in clean.triggers
    )


def test_timer_that_raises_is_dead_lettered_once_and_the_customer_goes_on(
    json_event_factory, monkeypatch
) -> None:
    j = json_event_factory
    codec = default_codec()
    cart = j(
        "cart_item_added",
        T0,
        customer="c",
        payload={"item": {"product": {"product_id": "p1", "price": 5.0}, "quantity": 1}},
    )
    real = flows.profile_step.advance

    def broken(st, cfg, until):
        if st.key == "c":
            raise KeyError("rule")
        return real(st, cfg, until)

    monkeypatch.setattr(flows.profile_step, "advance", broken)
    r = _run([codec.encode("cdp.Event", record_from_json(cart, codec)), *_good(j)])
    letters = [(d["reason"], d["error_type"], d["key"]) for d in r.dead_letters]
    assert letters == [("processing_error", "KeyError", b"c")]
    assert r.dead_letters[0]["event_id"] is None
    assert "c" in r.profiles
    assert [t["customer_id"] for t in r.triggers] == ["ok"]


def test_identity_router_exception_restores_its_state_and_dead_letters_the_event(
    json_event_factory, monkeypatch
) -> None:
    j = json_event_factory
    codec = default_codec()
    visit = j(t=T0, customer=None)
    visit["anonymous_id"] = "anon-1"
    real = flows.identity_step.route

    def broken(st, ev, cfg):
        st.buffer.append(ev)  # half-done
        raise RuntimeError("router bug")

    monkeypatch.setattr(flows.identity_step, "route", broken)
    value = codec.encode("cdp.Event", record_from_json(visit, codec))
    r = _run([value, *_good(j)])
    monkeypatch.setattr(flows.identity_step, "route", real)
    assert [(d["reason"], d["error_type"], d["event_id"]) for d in r.dead_letters] == [
        ("processing_error", "RuntimeError", visit["event_id"])
    ]
    assert [t["customer_id"] for t in r.triggers] == ["ok"]


def test_profile_over_the_message_limit_is_written_trimmed_with_a_dead_letter(
    json_event_factory,
) -> None:
    """Bounded fields and counts keep real profiles far below 1 MB; the encoder's guard
    holds whatever the settings: here a 4 KB limit and eight 1 KB traits."""
    j = json_event_factory
    codec = default_codec()
    traits = {f"t{i}": '"' + "x" * 1000 + '"' for i in range(8)}
    who = j("identify", T0, customer="big", payload={"email": "b@x.example", "traits": traits})
    values = [codec.encode("cdp.Event", record_from_json(who, codec)), *_good(j)]
    r = _run(values, Settings(max_message_bytes=4096))
    assert [d["reason"] for d in r.dead_letters] == ["profile_too_large"]
    assert r.dead_letters[0]["key"] == b"big"
    trimmed = _snapshot_of(r, "big")
    assert trimmed["truncated"] is True
    assert trimmed["attributes"] == {"email": "b@x.example"}
    assert r.profiles["big"]["email"] == "b@x.example"
    assert not _snapshot_of(r, "ok").get("truncated")
