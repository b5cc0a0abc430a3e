"""Issue 17, defect 2, on the real broker: a bounded replay writes older snapshots to the same
``cdp.profiles`` the live run wrote, after them; the profile API keeps the newer profile."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx

from tests.integration.conftest import _free_port, read_topic, run_cdpflow, settings_env
from tests.integration.serve_process import serve, stop, wait_ready

QUICK = {"CDPFLOW_SNAPSHOT_INTERVAL_S": "0.5", "CDPFLOW_PROFILE_FLUSH_MS": "100"}
TOKEN = "replay-test-token-0123"


def _page(i: int, t: int) -> dict:
    return {"event_id": f"pv-{i}", "type": "page_viewed", "customer_id": "pia",
            "timestamp": t, "source": "test", "payload": {"path": f"/p{i}"}}  # fmt: skip


def test_a_replay_beside_the_live_run_never_rewinds_a_profile(
    kafka_settings, produce_events, tmp_path
) -> None:
    now = int(time.time() * 1000)
    produce_events(kafka_settings, [_page(1, now - 60_000)])
    time.sleep(1.5)
    until = datetime.now(UTC).isoformat()
    time.sleep(1.5)
    produce_events(kafka_settings, [_page(2, now - 30_000), _page(3, now - 20_000)])
    env = settings_env(kafka_settings, **QUICK)
    run_cdpflow(["run", "--until-end", "--no-recovery"], env)
    replay = subprocess.run(
        [sys.executable, "-m", "cdpflow.cli", "replay", "--until", until, "--triggers", "none",
         "--recovery-dir", str(tmp_path / "replay")],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr[-3000:]
    snapshots = [r for n, r, _ in read_topic(kafka_settings, kafka_settings.topics.profiles)
                 if n == "cdp.ProfileSnapshot"]  # fmt: skip
    revisions = [s["revision"] for s in snapshots]
    assert revisions[-1] == 1, revisions  # the replay's older snapshot came last
    assert max(revisions) == 3

    port = _free_port()
    api = serve(kafka_settings, tmp_path / "store", port, CDPFLOW_API_TOKENS=TOKEN)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, api)
        got = httpx.get(f"{base}/v1/profiles/pia", timeout=5,
                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    finally:
        stop(api)
    assert got.status_code == 200
    profile = got.json()["profile"]
    assert profile["revision"] == 3
    assert profile["engagement"]["page_views"] == 3
