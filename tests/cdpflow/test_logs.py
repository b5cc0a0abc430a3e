"""Every service logs the same way: JSON lines by default, text with --log-format text."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.parametrize("module", ["profile_api.main", "collector.main", "mailer.main"])
def test_services_offer_both_log_formats(module: str) -> None:
    help_text = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
    assert "--log-format {json,text}" in help_text


def test_json_lines_carry_fields_and_only_the_exception_type(capsys) -> None:
    import logging

    from cdpflow.logs import configure_logging

    configure_logging("info", "json", ("cdpflow.test",))
    log = logging.getLogger("cdpflow.test")
    log.info("stored", extra={"fields": {"events": 3}})
    try:
        raise ValueError("a@victim.example")
    except ValueError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "victim" not in err
    lines = [orjson.loads(line) for line in err.splitlines()]
    assert [(x["msg"], x.get("events"), x.get("exc_type")) for x in lines] == [
        ("stored", 3, None), ("failed", None, "ValueError")]  # fmt: skip
    assert all(set(x) >= {"ts", "level", "logger"} for x in lines)
