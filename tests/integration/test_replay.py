"""Replay and backfill on the real broker: determinism, no stale triggers, archives,
shadow diff and cut-over."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.settings import Settings
from flows.decode import to_ms
from tests.conftest import T0, H
from tests.integration.conftest import (
    final_outputs,
    fresh_outputs,
    produce_messages,
    read_topic,
    run_cdpflow,
    settings_env,
)

QUICK = {"CDPFLOW_SNAPSHOT_INTERVAL_S": "0.5", "CDPFLOW_PROFILE_FLUSH_MS": "200"}


def recent_events(n: int, customers: int, seed: int) -> list:
    """Events whose times end about a minute before now, so a bounded live run (which
    lets moments happen up to now) and a replay (up to the newest event) agree."""
    return encoded_events(default_codec(), n, customers, seed=seed,
                          t0=int(time.time() * 1000) - n * 200 - 120_000)  # fmt: skip


def tag_changes(settings: Settings) -> set[tuple]:
    return {(r["customer_id"], r["tag"], r["added"], to_ms(r["event_time"]), r["change_id"])
            for n, r, _ in read_topic(settings, settings.topics.triggers)
            if n == "cdp.TagChange"}  # fmt: skip


def replay(settings: Settings, tmp: Path, *args: str, env: dict | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "cdpflow.cli", "replay", *args],
        env=env or settings_env(settings, **QUICK), capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc.stdout + f"\nexit={proc.returncode}"


def test_replay_equals_the_live_run(kafka_admin, kafka_settings, tmp_path) -> None:
    produce_messages(kafka_settings, recent_events(2_000, 150, seed=21))
    live = fresh_outputs(kafka_admin, kafka_settings)
    run_cdpflow(["run", "--until-end", "--recovery-dir", str(tmp_path / "live")],
                settings_env(live, **QUICK))  # fmt: skip
    shadow = fresh_outputs(kafka_admin, kafka_settings)
    out = replay(shadow, tmp_path, "--triggers", "all", "--recovery-dir", str(tmp_path / "r"))
    assert "exit=0" in out
    assert "replayed 2,000 messages" in out

    live_profiles, live_triggers = final_outputs(live)
    replayed_profiles, replayed_triggers = final_outputs(shadow)
    assert len(live_profiles) > 100
    assert replayed_profiles == live_profiles
    assert sorted(replayed_triggers) == sorted(live_triggers)
    assert tag_changes(shadow) == tag_changes(live)


def test_default_replay_emits_no_stale_trigger_and_all_matches_live(
    kafka_admin, kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    j = json_event_factory
    # Weeks old: Ada's category interest is a stale moment today.
    produce_events(kafka_settings, [j(t=T0 + d, customer="ada") for d in (0, H, 23 * H)])
    live = fresh_outputs(kafka_admin, kafka_settings)
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(live, **QUICK))

    default = fresh_outputs(kafka_admin, kafka_settings)
    out = replay(default, tmp_path, "--recovery-dir", str(tmp_path / "d"))
    assert "triggers kept 0, suppressed 1 (policy fresh)" in out
    _, triggers = final_outputs(default)
    assert triggers == []
    assert ("ada", "lifecycle:active", True) in {c[:3] for c in tag_changes(default)}

    everything = fresh_outputs(kafka_admin, kafka_settings)
    replay(everything, tmp_path, "--triggers", "all", "--recovery-dir", str(tmp_path / "a"))
    _, replayed = final_outputs(everything)
    # The live run went on to today (Ada has since lapsed: a win_back); the replay stops at
    # the newest replayed event. Up to there, the same trigger ids.
    newest = T0 + 23 * H
    live_ids = {r["trigger_id"] for n, r, _ in read_topic(live, live.topics.triggers)
                if n == "cdp.Trigger" and to_ms(r["event_time"]) <= newest}  # fmt: skip
    assert set(replayed) == live_ids
    assert len(live_ids) == 1


def test_archive_then_replay_from_it_equals_replay_from_the_topic(
    kafka_admin, kafka_settings, tmp_path
) -> None:
    produce_messages(kafka_settings, recent_events(1_500, 100, seed=22))
    archive = tmp_path / "archive"
    started = time.monotonic()
    run_cdpflow(["archive", str(archive), "--per", "hour"], settings_env(kafka_settings))
    # It stops at the end offsets it measured; it used to wait ~5 s per partition.
    assert time.monotonic() - started < 8
    files = sorted(archive.glob(f"{kafka_settings.topics.events}/p*/*.avro"))
    assert files, "no archive files written"
    # Re-running archives nothing twice.
    run_cdpflow(["archive", str(archive)], settings_env(kafka_settings))
    from fastavro import reader

    archived = sum(1 for f in files for _ in reader(f.open("rb")))
    assert archived == 1_500

    from_topic = fresh_outputs(kafka_admin, kafka_settings)
    replay(from_topic, tmp_path, "--triggers", "all", "--recovery-dir", str(tmp_path / "t"))
    from_archive = fresh_outputs(kafka_admin, kafka_settings)
    out = replay(from_archive, tmp_path, "--triggers", "all", "--from-archive", str(archive),
                 "--recovery-dir", str(tmp_path / "a"))  # fmt: skip
    assert "replayed 1,500 messages" in out
    archive_profiles, archive_triggers = final_outputs(from_archive)
    topic_profiles, topic_triggers = final_outputs(from_topic)
    assert archive_profiles == topic_profiles
    # The same triggers; their order across two partitions of the output topic is not.
    assert sorted(archive_triggers) == sorted(topic_triggers)


def test_shadow_replay_diff_reports_agreement_and_differences(
    kafka_admin, kafka_settings, tmp_path
) -> None:
    produce_messages(kafka_settings, recent_events(1_000, 60, seed=23))
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings, **QUICK))
    before = sorted(Path.cwd().glob("var/replay-*"))
    out = replay(kafka_settings, tmp_path, "--diff")
    assert "exit=0" in out
    assert " 0 different, 0 only in the replay, 0 only live" in out
    # A shadow replay writes nothing: no recovery directory, no cut-over to offer.
    assert "nothing written to Kafka or to disk" in out
    assert "records (none written)" in out
    assert "cut over" not in out
    assert sorted(Path.cwd().glob("var/replay-*")) == before

    stricter = tmp_path / "rules.toml"
    stricter.write_text('version = 1\n[tags.frequent_buyer]\nwhen = "orders_90d >= 1"\n')
    env = settings_env(kafka_settings, CDPFLOW_RULES_FILE=str(stricter), **QUICK)
    out = replay(kafka_settings, tmp_path, "--diff", env=env)
    assert "exit=1" in out
    assert "differing fields: " in out
    assert "tags (" in out


def test_cut_over_from_replay_to_live_equals_one_live_run(
    kafka_admin, kafka_settings, tmp_path
) -> None:
    msgs = recent_events(2_000, 120, seed=24)
    produce_messages(kafka_settings, msgs[:1_200])
    target = fresh_outputs(kafka_admin, kafka_settings)
    state = tmp_path / "replayed"
    replay(target, tmp_path, "--triggers", "all", "--recovery-dir", str(state))
    # The replay left its input offsets where the live KafkaSource looks for them: under
    # its partition names, at the end of what was replayed.
    topic = kafka_settings.topics.events
    ends = _input_offsets(state)
    assert set(ends) == {f"0-{topic}", f"1-{topic}"}
    assert sum(ends.values()) == 1_200
    # New events arrive; the live dataflow takes over from the replay's state and offsets.
    produce_messages(kafka_settings, msgs[1_200:])
    run_cdpflow(["run", "--until-end", "--recovery-dir", str(state)], settings_env(target, **QUICK))

    one = fresh_outputs(kafka_admin, kafka_settings)
    run_cdpflow(["run", "--until-end", "--recovery-dir", str(tmp_path / "one")],
                settings_env(one, **QUICK))  # fmt: skip
    profiles, triggers = final_outputs(target)
    one_profiles, one_triggers = final_outputs(one)
    assert profiles == one_profiles
    assert len(profiles) > 100
    # Nothing counted twice: every applied event was applied once, in both.
    assert sorted(set(triggers)) == sorted(set(one_triggers))


def _input_offsets(recovery: Path) -> dict[str, int]:
    """The newest snapshot of each input partition in a Bytewax recovery directory."""
    import pickle
    import sqlite3

    newest: dict[str, tuple[int, int]] = {}
    for db in recovery.glob("part-*.sqlite3"):
        with sqlite3.connect(db) as conn:
            rows = conn.execute(
                "SELECT state_key, snap_epoch, ser_change FROM snaps WHERE step_id LIKE ?",
                ("%events_in%",),
            ).fetchall()
        for key, epoch, blob in rows:
            if blob is not None and (key not in newest or epoch > newest[key][0]):
                newest[key] = (epoch, pickle.loads(blob))
    return {key: offset for key, (_, offset) in newest.items()}


def test_replay_since_after_until_is_refused(kafka_settings, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cdpflow.cli", "replay", "--since", "2026-11-02T10:00:00Z",
         "--until", "2026-11-02T09:00:00Z", "--recovery-dir", str(tmp_path / "r")],
        env=settings_env(kafka_settings), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        "cdpflow: error: --since (2026-11-02T10:00:00Z) must be before --until "
        "(2026-11-02T09:00:00Z)\n"
    )
    assert "cut over" not in proc.stdout
    assert not (tmp_path / "r").exists()


def test_run_says_what_it_does(kafka_settings, tmp_path) -> None:
    produce_messages(kafka_settings, recent_events(6_000, 300, seed=25))
    rdir = tmp_path / "live"
    args = ["run", "--until-end", "--recovery-dir", str(rdir), "--progress-interval", "0.2"]
    proc = subprocess.run([sys.executable, "-m", "cdpflow.cli", *args],
                          env=settings_env(kafka_settings, **QUICK), capture_output=True,
                          text=True, timeout=180, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    t = kafka_settings.topics
    assert out[0] == (
        f"cdpflow run: {t.events} (2 partitions) -> {t.triggers}, {t.profiles}, "
        f"{t.dead_letters}, {t.identities} at {kafka_settings.bootstrap_servers}; "
        f"1 process(es) x 1 worker(s); recovery dir {rdir} (fresh: created now); "
        "until the end of the topic"
    )
    assert "reading 2 partition(s) from their start (no saved offsets)" in out
    progress = [line for line in out if line.startswith("catching up: ")]
    assert progress, out
    assert all(" events/s, lag " in line for line in progress)
    assert out[-1].startswith(f"at the end of {t.events}: 6,000 messages read in ")
    assert out[-1].endswith(f"state and offsets kept in {rdir}")

    again = subprocess.run([sys.executable, "-m", "cdpflow.cli", *args],
                           env=settings_env(kafka_settings, **QUICK), capture_output=True,
                           text=True, timeout=180, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    lines = again.stdout.splitlines()
    assert "(resuming its state and offsets)" in lines[0]
    resumed = next(line for line in lines if line.startswith("resumed 2 partition(s) at offsets"))
    offsets = sorted(int(x.rsplit("@", 1)[1]) for x in resumed.split("offsets ")[1].split(", "))
    assert sum(offsets) == 6_000
    assert lines[-1].startswith(f"at the end of {t.events}: 0 messages read in ")


def test_run_stops_on_sigterm_saying_so_and_resumes_from_its_snapshot(
    kafka_settings, tmp_path
) -> None:
    produce_messages(kafka_settings, recent_events(500, 50, seed=26))
    rdir = tmp_path / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", "run", "--recovery-dir", str(rdir),
         "--progress-interval", "0.2"],
        env=settings_env(kafka_settings, **QUICK), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(2)]
        assert seen[1].startswith("reading 2 partition(s) from their start"), seen
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the backlog is read
            line = proc.stdout.readline()
            if line.startswith("caught up: 500 read so far"):
                break
        else:
            raise AssertionError("never caught up")
        time.sleep(1.5)  # a few epochs (0.5 s each) close after the last message
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    last = out.splitlines()[-1]
    assert last.startswith("stopped on request: 500 messages read in "), last
    assert last.endswith("resumes from its last snapshot (at most 0.5 s of input read again)")
    again = subprocess.run([sys.executable, "-m", "cdpflow.cli", "run", "--until-end",
                            "--recovery-dir", str(rdir)],
                           env=settings_env(kafka_settings, **QUICK), capture_output=True,
                           text=True, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines()[-1].startswith(f"at the end of {kafka_settings.topics.events}"
                                                    ": 0 messages read")  # fmt: skip
