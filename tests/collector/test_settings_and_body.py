"""Collector settings from the environment, and bounded body decoding."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from cdpflow.errors import ConfigError
from collector.body import gunzip
from collector.exceptions import MalformedRequest, PayloadTooLarge
from collector.settings import CollectorSettings


def test_defaults_reuse_the_project_topics_and_kafka_address() -> None:
    s = CollectorSettings.from_env({"CDPFLOW_WRITE_KEYS": "k1, k2"})
    assert s.topics.events == "cdp.events"
    assert s.topics.dead_letters == "cdp.events.dlq"
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert [k.reveal() for k in s.write_keys] == ["k1", "k2"]
    assert (s.max_event_bytes, s.max_batch_bytes) == (32 * 1024, 500 * 1024)
    assert s.fast_path is True


def test_topics_and_limits_are_overridable() -> None:
    s = CollectorSettings.from_env(
        {
            "CDPFLOW_WRITE_KEYS": "k",
            "CDPFLOW_TOPIC_EVENTS": "ev",
            "CDPFLOW_TOPIC_DLQ": "dl",
            "KAFKA_BOOTSTRAP_SERVERS": "b:1",
            "CDPFLOW_COLLECTOR_PORT": "9000",
            "CDPFLOW_CORS_ORIGINS": "https://a.example, https://b.example",
            "CDPFLOW_COLLECTOR_PRODUCE_TIMEOUT_MS": "2500",
            "CDPFLOW_COLLECTOR_FAST_PATH": "0",
        }
    )
    assert (s.topics.events, s.topics.dead_letters, s.bootstrap_servers) == ("ev", "dl", "b:1")
    assert s.port == 9000
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.produce_timeout_ms == 2500
    assert s.fast_path is False


def test_secrets_from_files_and_per_source_webhooks(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("from-file\n\n")
    shop = tmp_path / "shop"
    shop.write_text("s-old\ns-new\n")
    s = CollectorSettings.from_env(
        {
            "CDPFLOW_WRITE_KEYS_FILE": str(keys),
            "CDPFLOW_WEBHOOK_SECRETS_CRM": "c1,c2",
            "CDPFLOW_WEBHOOK_SECRETS_SHOPIFY_EU_FILE": str(shop),
        }
    )
    assert [k.reveal() for k in s.write_keys] == ["from-file"]
    assert sorted(s.webhook_secrets) == ["crm", "shopify-eu"]
    assert [x.reveal() for x in s.webhook_secrets["shopify-eu"]] == ["s-old", "s-new"]
    assert "c1" not in repr(s)
    assert "from-file" not in repr(s)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "CDPFLOW_WRITE_KEYS"),
        ({"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_COLLECTOR_PORT": "http"}, "CDPFLOW_COLLECTOR_PORT"),
        ({"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_COLLECTOR_PORT": "70000"}, "CDPFLOW_COLLECTOR_PORT"),
        ({"CDPFLOW_WRITE_KEYS_FILE": "/nonexistent/keys"}, "CDPFLOW_WRITE_KEYS_FILE"),
        (
            {"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_WEBHOOK_SECRETS_CRM": " , "},
            "CDPFLOW_WEBHOOK_SECRETS_CRM",
        ),
        (
            {"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_COLLECTOR_MAX_IN_FLIGHT_BYTES": "10"},
            "CDPFLOW_COLLECTOR_MAX_IN_FLIGHT_BYTES",
        ),
        ({"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_COLLECTOR_FAST_PATH": "yes"}, "FAST_PATH"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        CollectorSettings.from_env(env)


def test_gunzip_round_trip() -> None:
    assert gunzip(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000


def test_gunzip_stops_at_the_limit_whatever_the_ratio() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)  # ~50 KB on the wire
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        gunzip(bomb, 500 * 1024)


@pytest.mark.parametrize("data", [b"not gzip", gzip.compress(b"x" * 1000)[:-12]])
def test_gunzip_refuses_corrupt_or_truncated_streams(data: bytes) -> None:
    with pytest.raises(MalformedRequest):
        gunzip(data, 10_000)


def test_gunzip_refuses_bytes_after_the_stream() -> None:
    with pytest.raises(MalformedRequest, match="after the end"):
        gunzip(gzip.compress(b"{}") + b"\x00junk", 10_000)
    with pytest.raises(MalformedRequest):  # a second member is not accepted either
        gunzip(gzip.compress(b"{}") + gzip.compress(b"{}"), 10_000)


def test_edge_limits_and_the_demo_switch_from_the_environment() -> None:
    d = CollectorSettings.from_env({"CDPFLOW_WRITE_KEYS": "k"})
    assert (d.body_timeout_s, d.max_batch_items, d.max_rejects_listed) == (10.0, 2_000, 100)
    assert (d.in_flight_key_share_pct, d.in_flight_peer_share_pct) == (50, 25)
    assert d.demo is False
    s = CollectorSettings.from_env(
        {
            "CDPFLOW_WRITE_KEYS": "k",
            "CDPFLOW_COLLECTOR_BODY_TIMEOUT_S": "3",
            "CDPFLOW_MAX_BATCH_ITEMS": "500",
            "CDPFLOW_COLLECTOR_MAX_REJECTS_LISTED": "0",
            "CDPFLOW_COLLECTOR_KEY_SHARE_PCT": "100",
            "CDPFLOW_COLLECTOR_PEER_SHARE_PCT": "100",
            "CDPFLOW_COLLECTOR_DEMO": "1",
        }
    )
    assert (s.body_timeout_s, s.max_batch_items, s.max_rejects_listed) == (3.0, 500, 0)
    assert (s.in_flight_key_share_pct, s.in_flight_peer_share_pct) == (100, 100)
    assert s.demo is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CDPFLOW_COLLECTOR_BODY_TIMEOUT_S", "0"),
        ("CDPFLOW_MAX_BATCH_ITEMS", "0"),
        ("CDPFLOW_COLLECTOR_KEY_SHARE_PCT", "101"),
        ("CDPFLOW_COLLECTOR_PEER_SHARE_PCT", "0"),
        ("CDPFLOW_COLLECTOR_DEMO", "yes"),
        ("CDPFLOW_CORS_ORIGINS", "notaurl"),
        ("CDPFLOW_CORS_ORIGINS", "https://shop.example/path"),
        ("CDPFLOW_CORS_ORIGINS", "ftp://shop.example"),
        ("CDPFLOW_CORS_ORIGINS", "https://shop.example:99999"),
    ],
)
def test_bad_edge_settings_are_one_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        CollectorSettings.from_env({"CDPFLOW_WRITE_KEYS": "k", name: value})
    assert "\n" not in str(info.value)


def test_cors_origins_keep_origins_and_the_wildcard() -> None:
    env = {"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_CORS_ORIGINS": "https://a.example:8443, *"}
    assert CollectorSettings.from_env(env).cors_origins == ("https://a.example:8443", "*")
