"""``cdpflow serve`` settings and start-up errors."""

from __future__ import annotations

import pytest

from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret
from profile_api import main as api_main
from profile_api.settings import ApiSettings

TOKEN = "a-token-of-16-chars+"


def test_from_env_reads_the_api_and_shared_variables(tmp_path) -> None:
    s = ApiSettings.from_env({"CDPFLOW_API_TOKENS": f"{TOKEN}, second-token-0123456",
                              "CDPFLOW_API_PORT": "9000", "CDPFLOW_API_STORE_DIR": str(tmp_path),
                              "CDPFLOW_TOPIC_PROFILES": "p.topic",
                              "KAFKA_BOOTSTRAP_SERVERS": "k:1"})  # fmt: skip
    assert [t.reveal() for t in s.tokens] == [TOKEN, "second-token-0123456"]
    assert (s.port, s.store_dir, s.profiles_topic, s.bootstrap_servers) == (
        9000, tmp_path, "p.topic", "k:1")  # fmt: skip
    assert TOKEN not in repr(s)


@pytest.mark.parametrize(
    ("env", "names"),
    [({}, "CDPFLOW_API_TOKENS"), ({"CDPFLOW_API_TOKENS": "short"}, "16 characters"),
     ({"CDPFLOW_API_TOKENS": TOKEN, "CDPFLOW_API_PORT": "70000"}, "CDPFLOW_API_PORT")],
)  # fmt: skip
def test_bad_settings_name_the_variable_not_the_token(env, names) -> None:
    with pytest.raises(ConfigError, match=names) as info:
        ApiSettings.from_env(env)
    assert "short" not in str(info.value)


def test_secret_hides_its_value() -> None:
    assert "x" not in f"{Secret('xxxx')!s} {Secret('xxxx')!r}"


def test_main_reports_a_config_error_as_one_line_and_status_2(monkeypatch, capsys) -> None:
    monkeypatch.delenv("CDPFLOW_API_TOKENS", raising=False)
    assert api_main.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdpflow serve: error: CDPFLOW_API_TOKENS")
    assert err.count("\n") == 1


ADMIN = "an-admin-token-0123456"


def test_admin_tokens_and_erasure_settings_from_env_and_file(tmp_path) -> None:
    admin_file = tmp_path / "admin"
    admin_file.write_text(f"\n{ADMIN}\nrotated-admin-token-0123\n")
    read_file = tmp_path / "read"
    read_file.write_text("file-read-token-0123456\n")
    s = ApiSettings.from_env({"CDPFLOW_API_TOKENS": TOKEN,
                              "CDPFLOW_API_TOKENS_FILE": str(read_file),
                              "CDPFLOW_API_ADMIN_TOKENS_FILE": str(admin_file),
                              "CDPFLOW_API_ERASE_TIMEOUT_MS": "2500",
                              "CDPFLOW_TOPIC_EVENTS": "e.topic"})  # fmt: skip
    assert [t.reveal() for t in s.tokens] == [TOKEN, "file-read-token-0123456"]
    assert [t.reveal() for t in s.admin_tokens] == [ADMIN, "rotated-admin-token-0123"]
    assert (s.events_topic, s.erase_timeout_s) == ("e.topic", 2.5)
    assert ADMIN not in repr(s)


def test_erasure_is_off_unless_an_admin_token_is_set() -> None:
    assert ApiSettings.from_env({"CDPFLOW_API_TOKENS": TOKEN}).admin_tokens == ()


@pytest.mark.parametrize(
    ("env", "names"),
    [({"CDPFLOW_API_ADMIN_TOKENS": "short"}, "ADMIN_TOKENS: every value must be at least 16"),
     ({"CDPFLOW_API_ADMIN_TOKENS": TOKEN}, "differ from every read token"),
     ({"CDPFLOW_API_ADMIN_TOKENS_FILE": "/nonexistent/admin"}, "CDPFLOW_API_ADMIN_TOKENS_FILE"),
     ({"CDPFLOW_API_ERASE_TIMEOUT_MS": "5"}, "CDPFLOW_API_ERASE_TIMEOUT_MS")],
)  # fmt: skip
def test_bad_admin_settings_name_the_variable_not_the_token(env, names) -> None:
    with pytest.raises(ConfigError, match=names) as info:
        ApiSettings.from_env({"CDPFLOW_API_TOKENS": TOKEN, **env})
    assert "short" not in str(info.value)
    assert TOKEN not in str(info.value)


def test_body_limits_and_segments_from_env() -> None:
    s = ApiSettings.from_env({"CDPFLOW_API_TOKENS": TOKEN, "CDPFLOW_API_MAX_BODY_BYTES": "4096",
                              "CDPFLOW_API_BODY_TIMEOUT_MS": "2500"})  # fmt: skip
    assert (s.max_body_bytes, s.body_timeout_s) == (4096, 2.5)
    assert s.segments is not None
    assert "recent_high_value_premium" in s.segments
    d = ApiSettings.from_env({"CDPFLOW_API_TOKENS": TOKEN})
    assert (d.max_body_bytes, d.body_timeout_s) == (16 * 1024, 10.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("CDPFLOW_API_MAX_BODY_BYTES", "10"), ("CDPFLOW_API_MAX_BODY_BYTES", "lots"),
     ("CDPFLOW_API_BODY_TIMEOUT_MS", "0")],
)  # fmt: skip
def test_bad_body_limits_name_the_variable(name, value) -> None:
    with pytest.raises(ConfigError, match=name):
        ApiSettings.from_env({"CDPFLOW_API_TOKENS": TOKEN, name: value})
