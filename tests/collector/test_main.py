"""``cdpflow collect`` start-up errors a user can fix: one line on stderr, exit status 2,
no uvicorn log or traceback (issue 17). The broker-side check (a missing topic) is in
``tests/integration/test_collector_outage.py``."""

from __future__ import annotations

import socket

import pytest

from collector.main import main


@pytest.fixture(autouse=True)
def write_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDPFLOW_WRITE_KEYS", "k")


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cdpflow collect: error: ")
    return lines[0]


def test_a_port_in_use_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    line = one_line_error(capsys)
    assert f"127.0.0.1:{port}" in line
    assert "in use" in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bad_host_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    assert main(["--host", "no-such-host.invalid", "--workers", workers]) == 2
    assert "no-such-host.invalid" in one_line_error(capsys)


def test_a_bad_cors_origin_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDPFLOW_CORS_ORIGINS", "notaurl")
    assert main([]) == 2
    assert "CDPFLOW_CORS_ORIGINS" in one_line_error(capsys)
