"""``/metrics`` of the mailer, its settings, and the JSON / text log formats."""

from __future__ import annotations

import logging
import socket

import httpx
import orjson
import pytest

from cdpflow.errors import ConfigError
from mailer import main as mailer_main
from mailer.logs import configure_logging
from mailer.metrics import MailerMetrics
from mailer.settings import MailerSettings
from mailer.worker import serve_metrics
from tests.mailer.conftest import UNSUBSCRIBE_ENV
from tests.mailer.smtp_server import free_port


def test_metrics_are_served_and_stop_with_the_mailer() -> None:
    metrics = MailerMetrics()
    metrics.triggers.labels("sent").inc()
    metrics.processing_errors.labels("render").inc(2)
    port = free_port()
    stop = serve_metrics(metrics, "127.0.0.1", port)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        stop()
    assert answer.status_code == 200
    assert 'cdpflow_mailer_triggers_total{status="sent"} 1.0' in answer.text
    assert 'cdpflow_mailer_processing_errors_total{stage="render"} 2.0' in answer.text
    assert "cdpflow_mailer_stale_snapshots_total 0.0" in answer.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_port_in_use_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=r"^CDPFLOW_MAILER_METRICS_PORT: cannot listen"):
            serve_metrics(MailerMetrics(), "127.0.0.1", port)


def test_metrics_are_off_unless_a_port_is_set() -> None:
    env = UNSUBSCRIBE_ENV
    assert MailerSettings.from_env(env).metrics_port is None
    assert MailerSettings.from_env({**env, "CDPFLOW_MAILER_METRICS_PORT": "0"}).metrics_port is None
    on = MailerSettings.from_env({**env, "CDPFLOW_MAILER_METRICS_PORT": "9465"})
    assert (on.metrics_host, on.metrics_port) == ("127.0.0.1", 9465)
    with pytest.raises(ConfigError, match="CDPFLOW_MAILER_METRICS_PORT"):
        MailerSettings.from_env({**env, "CDPFLOW_MAILER_METRICS_PORT": "70000"})


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_logs_are_json_lines_by_default_and_text_on_request(restore_root_logging, capsys) -> None:
    configure_logging("info")
    logging.getLogger("cdpflow.mailer").info("trigger %s status=%s", "t-1", "sent")
    line = orjson.loads(capsys.readouterr().err.strip())
    assert (line["level"], line["logger"], line["msg"]) == ("info", "cdpflow.mailer",
                                                            "trigger t-1 status=sent")  # fmt: skip
    assert line["ts"].endswith("+00:00")
    configure_logging("info", "text")
    logging.getLogger("cdpflow.mailer").warning("plain")
    err = capsys.readouterr().err
    assert " WARNING cdpflow.mailer plain" in err
    assert not err.startswith("{")


def test_main_takes_the_log_format(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CDPFLOW_MAILER_DELIVERY", "pigeon")  # stops before running
    assert mailer_main.main(["--log-format", "text", "--until-idle", "1"]) == 2
    with pytest.raises(SystemExit):
        mailer_main.main(["--log-format", "xml"])
    assert "--log-format" in capsys.readouterr().err


def test_the_profile_feeds_skipped_records_are_read_at_scrape_time() -> None:
    skipped = {"undecodable": 1}
    metrics = MailerMetrics()
    metrics.watch_feed(lambda: skipped)
    assert 'cdpflow_mailer_profile_records_skipped_total{reason="undecodable"} 1.0' in (
        metrics.render().decode())  # fmt: skip
    skipped["stale_snapshot"] = 3
    text = metrics.render().decode()
    assert 'cdpflow_mailer_profile_records_skipped_total{reason="stale_snapshot"} 3.0' in text
