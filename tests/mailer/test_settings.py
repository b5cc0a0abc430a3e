"""``cdpflow mailer`` settings and start-up errors."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from cdpflow.errors import ConfigError
from mailer import main as mailer_main
from mailer.links import UNSUBSCRIBE_URL_REQUIRED
from mailer.settings import MailerSettings
from tests.mailer.conftest import UNSUBSCRIBE_ENV, UNSUBSCRIBE_URL


def test_defaults_are_safe() -> None:
    s = MailerSettings.from_env(UNSUBSCRIBE_ENV)
    assert (s.delivery, s.smtp.security, s.policy.cap_count) == ("smtp", "starttls", 1)
    assert (s.policy.quiet_hours.start, s.policy.quiet_hours.end) == (time(21), time(8))
    assert (s.triggers_topic, s.dead_letter_topic) == ("cdp.triggers", "cdp.events.dlq")


def test_from_env_reads_every_part(tmp_path: Path) -> None:
    s = MailerSettings.from_env({
        "CDPFLOW_TOPIC_TRIGGERS": "t", "CDPFLOW_TOPIC_PROFILES": "p", "CDPFLOW_TOPIC_DLQ": "d",
        "CDPFLOW_MAILER_STATE_DIR": str(tmp_path), "CDPFLOW_MAILER_GROUP": "g",
        "CDPFLOW_MAILER_FROM": "shop@example.com", "CDPFLOW_MAILER_SHOP_NAME": "Shop",
        "CDPFLOW_SMTP_HOST": "mx", "CDPFLOW_SMTP_PORT": "587", "CDPFLOW_SMTP_USER": "u",
        "CDPFLOW_SMTP_PASSWORD": "hunter2-password", "CDPFLOW_SMTP_SECURITY": "tls",
        "CDPFLOW_MAILER_CAP": "2", "CDPFLOW_MAILER_CAP_WINDOW_MS": "3600000",
        "CDPFLOW_MAILER_QUIET_HOURS": "off", "CDPFLOW_MAILER_MAX_ATTEMPTS": "6",
        "CDPFLOW_MAILER_RETRY_BASE_S": "0.5", "CDPFLOW_MAILER_TEMPLATES_DIR": str(tmp_path),
        **UNSUBSCRIBE_ENV,
    })  # fmt: skip
    assert (s.triggers_topic, s.profiles_topic, s.dead_letter_topic) == ("t", "p", "d")
    assert (s.state_dir, s.group_id, s.shop_name) == (tmp_path, "g", "Shop")
    assert s.sender == "shop@example.com"
    assert (s.smtp.host, s.smtp.port, s.smtp.security, s.smtp.username) == ("mx", 587, "tls", "u")
    assert s.smtp.password.reveal() == "hunter2-password"
    assert "hunter2" not in repr(s)
    assert (s.policy.cap_count, s.policy.cap_window_ms, s.policy.quiet_hours) == (2, 3600000, None)
    assert (s.backoff.max_attempts, s.backoff.base_s) == (6, 0.5)
    assert s.templates_dir == tmp_path
    assert s.links.unsubscribe_url == UNSUBSCRIBE_URL


def test_webhook_delivery_needs_a_url_and_a_long_secret() -> None:
    base = {"CDPFLOW_MAILER_DELIVERY": "webhook", **UNSUBSCRIBE_ENV}
    with pytest.raises(ConfigError, match="CDPFLOW_WEBHOOK_URL"):
        MailerSettings.from_env(base)
    with pytest.raises(ConfigError, match="CDPFLOW_WEBHOOK_SECRET"):
        MailerSettings.from_env({**base, "CDPFLOW_WEBHOOK_URL": "https://x.example/h",
                                 "CDPFLOW_WEBHOOK_SECRET": "short"})  # fmt: skip
    s = MailerSettings.from_env({**base, "CDPFLOW_WEBHOOK_URL": "https://x.example/h",
                                 "CDPFLOW_WEBHOOK_SECRET": "long-enough-secret"})  # fmt: skip
    assert s.webhook is not None
    assert "long-enough" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [("CDPFLOW_MAILER_DELIVERY", "pigeon"), ("CDPFLOW_SMTP_SECURITY", "ssl3"),
     ("CDPFLOW_SMTP_PORT", "99999"), ("CDPFLOW_SMTP_PORT", "x"),
     ("CDPFLOW_MAILER_QUIET_HOURS", "late"), ("CDPFLOW_MAILER_CAP", "0"),
     ("CDPFLOW_MAILER_FROM", "nobody"), ("CDPFLOW_MAILER_FROM", "a@b.example, c@d.example"),
     ("CDPFLOW_MAILER_FROM", "Shop <a@b.example>"),
     ("CDPFLOW_MAILER_TEMPLATES_DIR", "/no/such/dir")],
)  # fmt: skip
def test_a_bad_value_names_its_variable(name, value) -> None:
    with pytest.raises(ConfigError, match=name):
        MailerSettings.from_env({name: value})


def test_main_reports_a_config_error_as_one_line_and_status_2(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CDPFLOW_MAILER_DELIVERY", "pigeon")
    assert mailer_main.main(["--until-idle", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdpflow mailer: error: CDPFLOW_MAILER_DELIVERY")
    assert err.count("\n") == 1


def test_the_mailer_needs_an_unsubscribe_url_and_names_the_setting() -> None:
    """Every marketing email carries List-Unsubscribe (RFC 8058): no URL, no mailer."""
    for env in ({}, {"CDPFLOW_UNSUBSCRIBE_SECRET": "u" * 32},
                {"CDPFLOW_MAILER_DELIVERY": "webhook", "CDPFLOW_WEBHOOK_URL": "https://x.example/h",
                 "CDPFLOW_WEBHOOK_SECRET": "long-enough-secret"}):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            MailerSettings.from_env(env)
        assert str(err.value) == UNSUBSCRIBE_URL_REQUIRED
    assert "\n" not in UNSUBSCRIBE_URL_REQUIRED
    assert "CDPFLOW_MAILER_UNSUBSCRIBE_URL" in UNSUBSCRIBE_URL_REQUIRED
    # The URL without its secret is still the secret's error, as before.
    with pytest.raises(ConfigError, match="needs CDPFLOW_UNSUBSCRIBE_SECRET"):
        MailerSettings.from_env({"CDPFLOW_MAILER_UNSUBSCRIBE_URL": UNSUBSCRIBE_URL})
    # A preview renders without one (with a placeholder link: test_preview.py).
    assert MailerSettings.from_env({}, for_preview=True).links.unsubscribe_url is None


def test_the_mailer_refuses_to_start_without_an_unsubscribe_url(monkeypatch, capsys) -> None:
    for name in UNSUBSCRIBE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CDPFLOW_UNSUBSCRIBE_SECRET_FILE", raising=False)
    assert mailer_main.main(["--until-idle", "1"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"cdpflow mailer: error: {UNSUBSCRIBE_URL_REQUIRED}"]
