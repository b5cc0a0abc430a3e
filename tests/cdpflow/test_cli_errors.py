"""Every error a user can fix: one line on stderr naming what to fix, exit status 2.

An unreachable broker is tried for every command that talks to Kafka, with fd-level
capture: librdkafka writes its log from C, straight to file descriptor 2, so only
``capfd`` would see it leak.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpflow import kafka_log
from cdpflow.cli import main

BROKER_COMMANDS = [
    ["topics", "create"],
    ["tail", "events"],
    ["tail", "dlq", "--from-beginning"],
    ["dlq", "list"],
    ["dlq", "redrive"],
    ["forget", "c-1"],
    ["archive", "ARCHIVE"],
    ["replay", "--recovery-dir", "REPLAY"],
    ["run", "--no-recovery"],
]


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setattr(kafka_log, "METADATA_TIMEOUT_S", 1.0)


@pytest.mark.parametrize("argv", BROKER_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unreachable_broker_is_one_line_naming_it(
    no_broker: None, capfd: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    argv = [str(tmp_path / a.lower()) if a.isupper() else a for a in argv]
    assert main(argv) == 2
    _out, err = capfd.readouterr()
    assert err.count("\n") == 1, err[:2000]
    assert err.startswith("cdpflow: error: no Kafka broker answered at 127.0.0.1:1"), err
    assert "KAFKA_BOOTSTRAP_SERVERS" in err
    assert "%3|" not in err
    assert "FAIL" not in err
    if argv[0] == "replay":
        assert not (tmp_path / "replay").exists()  # a later attempt is not refused


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "--since", "2026-11-02T10:00:00Z", "--until", "2026-11-02T09:00:00Z"],
         "--since (2026-11-02T10:00:00Z) must be before --until (2026-11-02T09:00:00Z)"),
        (["archive", "DIR", "--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"],
         "--since (2026-11-02T00:00:00Z) must be before --until (2026-11-01T00:00:00Z)"),
        (["replay", "--fresh-horizon", "2days"],
         "--fresh-horizon: not a duration: '2days' (use e.g. 60m, 24h, 30d)"),
        (["replay", "--diff", "--recovery-dir", "DIR"],
         "--diff writes nothing, so it takes no --recovery-dir: leave it out"),
        (["tail", "events", "-n", "-1"], "-n must be 0 or more"),
        (["dlq", "list", "-n", "-3"], "-n must be 0 or more"),
        (["dlq", "redrive", "--reason", "corrupt_avro"],
         "--reason corrupt_avro is not a fixable reason (fixable: beyond_dedupe_horizon, "),
        (["run", "--progress-interval", "0"], "--progress-interval must be above 0 seconds"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_naming_the_option(
    no_broker: None, capfd: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
    message: str,
) -> None:  # fmt: skip
    argv = [str(tmp_path / "d") if a == "DIR" else a for a in argv]
    assert main(argv) == 2
    _, err = capfd.readouterr()
    assert err.count("\n") == 1, err
    assert err.startswith(f"cdpflow: error: {message}"), err


def test_run_documents_the_process_id_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "-i PROCESS_ID, --process-id PROCESS_ID" in out
    assert "--progress-interval" in out


def test_an_unacknowledged_erasure_is_said_in_words_not_a_kafka_code() -> None:
    from confluent_kafka import KafkaError

    from cdpflow.forget import ErasureProducer

    producer = ErasureProducer("127.0.0.1:1", "cdp.events", timeout_s=2)
    try:
        timed_out = producer._failure(KafkaError(KafkaError._MSG_TIMED_OUT))
        missing = producer._failure(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    finally:
        producer.close(0)
    assert "_MSG_TIMED_OUT" not in timed_out
    assert timed_out.startswith("Kafka at 127.0.0.1:1 did not acknowledge the erasure within 2 s")
    assert "KAFKA_BOOTSTRAP_SERVERS" in timed_out
    assert missing == "topic cdp.events does not exist on 127.0.0.1:1 (run: cdpflow topics create)"
