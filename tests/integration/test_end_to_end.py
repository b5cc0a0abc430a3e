"""Events on a real broker -> ``cdpflow run`` -> triggers and dead letters on real topics."""

from __future__ import annotations

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
    triggers = [r for name, r, _ in out if name == "cdp.Trigger"]
    assert [(t["customer_id"], t["category"], to_ms(t["event_time"])) for t in triggers] == [
        ("ada", "shoes", T0 + 23 * H)
    ]
    assert [m.key() for name, _, m in out if name == "cdp.Trigger"] == [b"ada"]

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
