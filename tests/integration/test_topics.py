"""``cdpflow topics create`` against the real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from confluent_kafka.admin import ConfigResource

from tests.integration.conftest import BOOTSTRAP


def test_topics_create_makes_the_topics_and_is_idempotent(kafka_admin) -> None:
    tag = uuid.uuid4().hex[:10]
    names = {
        key: f"tc-{tag}.{key.lower()}"
        for key in ("EVENTS", "TRIGGERS", "PROFILES", "DLQ", "IDENTITIES")
    }
    env = {"KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "CDPFLOW_PARTITIONS": "3",
           **{f"CDPFLOW_TOPIC_{k}": v for k, v in names.items()}}  # fmt: skip
    cmd = [sys.executable, "-m", "cdpflow.cli", "topics", "create"]
    try:
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert first.returncode == 0, first.stderr
        assert sorted(first.stdout.splitlines()) == sorted(f"{n}: created" for n in names.values())
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert again.returncode == 0, again.stderr
        assert sorted(again.stdout.splitlines()) == sorted(f"{n}: exists" for n in names.values())

        meta = kafka_admin.list_topics(timeout=10).topics
        assert all(len(meta[n].partitions) == 3 for n in names.values())
        resource = ConfigResource(ConfigResource.Type.TOPIC, names["PROFILES"])
        config = kafka_admin.describe_configs([resource])[resource].result(timeout=10)
        assert config["cleanup.policy"].value == "compact"
        resource = ConfigResource(ConfigResource.Type.TOPIC, names["EVENTS"])
        config = kafka_admin.describe_configs([resource])[resource].result(timeout=10)
        assert config["cleanup.policy"].value == "delete"
    finally:
        kafka_admin.delete_topics(list(names.values()))


def test_a_missing_topic_is_one_line_naming_it(kafka_admin, tmp_path) -> None:
    tag = uuid.uuid4().hex[:10]
    missing = f"tm-{tag}.nothing"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "CDPFLOW_TOPIC_EVENTS": missing,
           "CDPFLOW_TOPIC_DLQ": missing}  # fmt: skip
    for argv in (["forget", "c-1"], ["archive", str(tmp_path / "a")],
                 ["replay", "--recovery-dir", str(tmp_path / "r")], ["run", "--no-recovery"],
                 ["tail", "events"], ["dlq", "list"], ["dlq", "redrive"]):  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "cdpflow.cli", *argv], env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert proc.returncode == 2, (argv, proc.stderr[-2000:])
        assert proc.stderr.count("\n") == 1, (argv, proc.stderr[-2000:])
        assert proc.stderr.startswith("cdpflow: error: "), (argv, proc.stderr)
        assert missing in proc.stderr, (argv, proc.stderr)
        assert " not exist on " in proc.stderr, (argv, proc.stderr)
    assert not (tmp_path / "r").exists()
