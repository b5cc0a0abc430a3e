"""``cdpflow forget`` on the real broker: operator state, the compacted topic, suppression."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import T0, H
from tests.integration.conftest import read_topic, run_cdpflow, settings_env


def test_forget_tombstones_the_profile_and_suppresses_older_events(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    j = json_event_factory
    env = settings_env(kafka_settings, CDPFLOW_SNAPSHOT_INTERVAL_S="0.5")
    recovery = ["--recovery-dir", str(tmp_path / "state")]
    first = [
        j("identify", T0, customer="eve", payload={"email": "eve@example.com"}),
        j(t=T0 + H, customer="eve"),
        j(t=T0, customer="ann"),
    ]
    produce_events(kafka_settings, first)
    run_cdpflow(["run", "--until-end", *recovery], env)

    forget = subprocess.run([sys.executable, "-m", "cdpflow.cli", "forget", "eve"], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert forget.returncode == 0, forget.stderr
    assert "erasure requested" in forget.stdout
    run_cdpflow(["run", "--until-end", *recovery], env)

    records = read_topic(kafka_settings, kafka_settings.topics.profiles)
    eve = [(name, msg.value()) for name, _, msg in records if msg.key() == b"eve"]
    assert eve[-1] == ("tombstone", None)
    assert any(name == "cdp.ProfileSnapshot" for name, _ in eve[:-1])
    assert any(msg.key() == b"ann" for _, _, msg in records)  # others untouched

    # A late event from before the erasure arrives: it must not bring Eve back.
    produce_events(kafka_settings, [j("identify", T0 + 2 * H, customer="eve",
                                      payload={"email": "eve@example.com"})])  # fmt: skip
    run_cdpflow(["run", "--until-end", *recovery], env)
    after = read_topic(kafka_settings, kafka_settings.topics.profiles)
    assert [(n, m.value()) for n, _, m in after if m.key() == b"eve"] == eve  # nothing new
