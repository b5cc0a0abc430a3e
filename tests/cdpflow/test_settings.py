"""Settings from the environment: defaults, overrides, and one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpflow.errors import ConfigError
from cdpflow.settings import Settings, Topics
from state.rules.model import RulesError

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS

WHOLE_NUMBER_VARS = [
    "CDPFLOW_PARTITIONS",
    "CDPFLOW_RECOVERY_PARTITIONS",
    "CDPFLOW_ALLOWED_LATENESS_MS",
    "CDPFLOW_DEDUPE_HORIZON_MS",
    "CDPFLOW_IDLE_TTL_MS",
    "CDPFLOW_MAX_FUTURE_MS",
    "CDPFLOW_MAX_AGE_MS",
]


def test_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.topics.events == "cdp.events"
    assert s.topics.triggers == "cdp.triggers"
    assert s.topics.profiles == "cdp.profiles"
    assert s.topics.dead_letters == "cdp.events.dlq"
    assert s.start_from == "earliest"
    assert s.partitions == 4
    assert s.recovery_partitions == 32
    assert s.recovery_dir == Path("var/recovery")
    assert s.snapshot_interval_s == 10.0
    assert s.profile.allowed_lateness_ms == HOUR_MS
    assert s.profile.dedupe_horizon_ms == 7 * DAY_MS
    assert s.profile.category_interest.threshold == 3
    assert s.profile.category_interest.window_ms == DAY_MS
    assert s.limits.max_future_ms == DAY_MS
    assert s.limits.max_age_ms == 400 * DAY_MS


def test_empty_environment_matches_the_constructor_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings().topics == Topics()


def test_blank_values_mean_default() -> None:
    env = {"CDPFLOW_PARTITIONS": "", "CDPFLOW_START_FROM": " ", "CDPFLOW_MAX_FIELD_BYTES": ""}
    assert Settings.from_env(env) == Settings()


def test_a_blank_broker_address_is_refused_not_replaced() -> None:
    """Set but empty is a mistake (a template that did not fill it in), not a default."""
    with pytest.raises(ConfigError, match=r"^KAFKA_BOOTSTRAP_SERVERS is set but empty"):
        Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "   "})


def test_byte_limits_from_the_environment() -> None:
    s = Settings.from_env(
        {"CDPFLOW_MAX_FIELD_BYTES": "2048", "CDPFLOW_MAX_MESSAGE_BYTES": "900000"}
    )
    assert (s.limits.max_field_bytes, s.max_message_bytes) == (2048, 900_000)
    with pytest.raises(ConfigError, match="CDPFLOW_MAX_FIELD_BYTES must be between 64 and"):
        Settings.from_env({"CDPFLOW_MAX_FIELD_BYTES": "10"})
    with pytest.raises(ConfigError, match="CDPFLOW_MAX_MESSAGE_BYTES must be at least 65536"):
        Settings.from_env({"CDPFLOW_MAX_MESSAGE_BYTES": "1000"})


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "CDPFLOW_UNKNOWN": "x"}) == Settings()


def test_overrides_from_an_explicit_mapping() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-a:19092,broker-b:19092",
        "CDPFLOW_TOPIC_EVENTS": "t.events",
        "CDPFLOW_TOPIC_TRIGGERS": "t.triggers",
        "CDPFLOW_TOPIC_PROFILES": "t.profiles",
        "CDPFLOW_TOPIC_DLQ": "t.dlq",
        "CDPFLOW_START_FROM": "latest",
        "CDPFLOW_PARTITIONS": "12",
        "CDPFLOW_RECOVERY_DIR": "/data/recovery",
        "CDPFLOW_RECOVERY_PARTITIONS": " 3 ",
        "CDPFLOW_SNAPSHOT_INTERVAL_S": "2.5",
        "CDPFLOW_ALLOWED_LATENESS_MS": "1000",
        "CDPFLOW_DEDUPE_HORIZON_MS": "2000",
        "CDPFLOW_IDLE_TTL_MS": "3000",
        "CDPFLOW_MAX_FUTURE_MS": "4000",
        "CDPFLOW_MAX_AGE_MS": "5000",
    }
    s = Settings.from_env(env)
    assert s.bootstrap_servers == "broker-a:19092,broker-b:19092"
    assert s.topics == Topics("t.events", "t.triggers", "t.profiles", "t.dlq")
    assert s.start_from == "latest"
    assert s.partitions == 12
    assert s.recovery_dir == Path("/data/recovery")
    assert s.recovery_partitions == 3
    assert s.snapshot_interval_s == 2.5
    assert s.profile.allowed_lateness_ms == 1000
    assert s.profile.dedupe_horizon_ms == 2000
    assert s.profile.idle_ttl_ms == 3000
    assert s.limits.max_future_ms == 4000
    assert s.limits.max_age_ms == 5000


def test_one_override_leaves_the_rest_at_default() -> None:
    s = Settings.from_env({"CDPFLOW_TOPIC_DLQ": "other.dlq"})
    assert s.topics.dead_letters == "other.dlq"
    assert s.topics.events == "cdp.events"
    assert s.bootstrap_servers == "127.0.0.1:9092"


def test_none_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "from-os-environ:9092")
    monkeypatch.setenv("CDPFLOW_PARTITIONS", "7")
    s = Settings.from_env()
    assert s.bootstrap_servers == "from-os-environ:9092"
    assert s.partitions == 7


def test_explicit_mapping_ignores_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDPFLOW_PARTITIONS", "7")
    assert Settings.from_env({}).partitions == 4


@pytest.mark.parametrize("name", WHOLE_NUMBER_VARS)
@pytest.mark.parametrize("raw", ["four", "1.5", "0x10", "0", "-3"])
def test_bad_whole_numbers_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)


@pytest.mark.parametrize("name", WHOLE_NUMBER_VARS)
def test_non_integer_says_whole_number(name: str) -> None:
    with pytest.raises(ConfigError, match="whole number"):
        Settings.from_env({name: "ten"})


@pytest.mark.parametrize("name", WHOLE_NUMBER_VARS)
@pytest.mark.parametrize("raw", ["0", "-1"])
def test_zero_and_negative_say_at_least_one(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        Settings.from_env({name: raw})


@pytest.mark.parametrize("name", WHOLE_NUMBER_VARS)
def test_one_is_the_smallest_accepted_value(name: str) -> None:
    Settings.from_env({name: "1"})  # must not raise


@pytest.mark.parametrize("raw", ["soon", "0", "-2.5", "0.0"])
def test_bad_snapshot_interval_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"CDPFLOW_SNAPSHOT_INTERVAL_S": raw})
    assert "CDPFLOW_SNAPSHOT_INTERVAL_S" in str(info.value)


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_non_finite_snapshot_interval_is_rejected(raw: str) -> None:
    with pytest.raises(ConfigError, match="CDPFLOW_SNAPSHOT_INTERVAL_S"):
        Settings.from_env({"CDPFLOW_SNAPSHOT_INTERVAL_S": raw})


@pytest.mark.parametrize("raw", ["beginning", "newest", "earliest,latest"])
def test_bad_start_from_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"CDPFLOW_START_FROM": raw})
    assert "CDPFLOW_START_FROM" in str(info.value)
    assert "earliest" in str(info.value)


def test_config_error_reason() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"CDPFLOW_PARTITIONS": "0"})
    assert info.value.reason == "config"


def test_rules_file_is_read_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('version = 1\n[tags.big_spender]\nwhen = "revenue >= 1000"\n')
    s = Settings.from_env({"CDPFLOW_RULES_FILE": str(path)})
    assert list(s.profile.rules.tags) == ["big_spender"]
    path.write_text('version = 1\n[tags.big_spender]\nwhen = "revenu >= 1000"\n')
    with pytest.raises(RulesError, match=r"rules.toml: tags.big_spender.when: unknown name"):
        Settings.from_env({"CDPFLOW_RULES_FILE": str(path)})


def test_default_rules_without_a_rules_file() -> None:
    assert "frequent_buyer" in Settings.from_env({}).profile.rules.tags


@pytest.mark.parametrize("value", ["2", "yes", "-1"])
def test_gc_tuning_is_0_or_1(value: str) -> None:
    with pytest.raises(ConfigError, match=f"^CDPFLOW_GC_TUNING must be 0 or 1, got '{value}'$"):
        Settings.from_env({"CDPFLOW_GC_TUNING": value})
    assert Settings.from_env({"CDPFLOW_GC_TUNING": "0"}) == Settings()
