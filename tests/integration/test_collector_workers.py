"""``cdpflow collect --workers 2`` against the real broker: one port, two processes, each
with its own producer; every answered event stored once; metrics summed over both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.mmap_dict import MmapedDict

from cdpflow.settings import Settings
from tests.collector.conftest import WRITE_KEY, basic
from tests.integration.conftest import _free_port, read_topic, settings_env

pytestmark = pytest.mark.timeout(180)


def item(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"c-{i % 7}",
        "messageId": f"w-{i}",
        "event": "Product Viewed",
        "timestamp": "2026-09-01T10:00:00.123Z",
        "properties": {"product_id": f"p-{i}", "category": "shoes", "price": 10},
    }


class Workers:
    def __init__(self, proc: subprocess.Popen[str], base: str, tmp: Path) -> None:
        self.proc, self.base, self.tmp = proc, base, tmp

    def children(self) -> list[int]:
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return [int(c) for c in f.read().split()]

    def metric_files(self) -> list[Path]:
        return sorted(self.tmp.glob("cdpflow-collector-metrics-*/counter_*.db"))


@pytest.fixture
def workers(kafka_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    port = _free_port()
    env = settings_env(kafka_settings, CDPFLOW_WRITE_KEYS=WRITE_KEY, TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.main", "--port", str(port), "--workers", "2",
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield Workers(proc, base, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()  # the workers get SIGTERM when their parent dies
            proc.communicate(timeout=60)


def _wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    ready = 0
    while time.monotonic() < deadline and ready < 6:  # fresh connections: either worker
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            ready = ready + 1 if httpx.get(f"{base}/readyz", timeout=3).status_code == 200 else 0
        except httpx.TransportError:
            ready = 0
        time.sleep(0.1)
    assert ready >= 6, "the workers did not become ready"


def _post_batches(base: str, first: int, batches: int) -> list[dict[str, Any]]:
    # Its own connection (keep-alive) per thread: the kernel spreads them over the workers.
    with httpx.Client(base_url=base, headers=basic(), timeout=30) as client:
        answers = []
        for b in range(batches):
            start = first + b * 10
            body = {"batch": [*(item(i) for i in range(start, start + 9)), {"type": "track"}]}
            r = client.post("/v1/batch", content=orjson.dumps(body))
            assert r.status_code == 200, r.text
            answers.append(r.json())
        return answers


def _counter_total(path: Path, name: str) -> float:
    total = 0.0
    for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
        if orjson.loads(key)[1] == name:
            total += value
    return total


def test_two_workers_store_every_event_once_and_sum_their_metrics(
    workers: Workers, kafka_settings: Settings
) -> None:
    assert len(workers.children()) == 2
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda t: _post_batches(workers.base, t * 1000, 5), range(8)))
    answers = [a for run in runs for a in run]
    assert all(a["accepted"] == 9 and [r["index"] for r in a["rejected"]] == [9] for a in answers)

    events = read_topic(kafka_settings, kafka_settings.topics.events)
    ids = Counter(record["event_id"] for _, record, _ in events)
    expected = {f"w-{t * 1000 + b * 10 + i}" for t in range(8) for b in range(5) for i in range(9)}
    assert set(ids) == expected
    assert set(ids.values()) == {1}
    assert len(read_topic(kafka_settings, kafka_settings.topics.dead_letters)) == 40

    # Both processes stored events, each counted in its own file ...
    files = workers.metric_files()
    per_worker = {
        int(f.stem.split("_")[1]): _counter_total(f, "cdpflow_collector_events_total")
        for f in files
    }
    assert set(per_worker) == set(workers.children())
    assert all(n > 0 for n in per_worker.values()), per_worker
    # ... and /metrics, whichever worker answers, gives the sum over both.
    for _ in range(6):
        text = httpx.get(f"{workers.base}/metrics", timeout=5).text  # a new connection each
        assert 'cdpflow_collector_events_total{endpoint="batch"} 360.0' in text
        assert 'cdpflow_collector_requests_total{endpoint="batch",status="200"} 40.0' in text
        assert 'cdpflow_collector_rejects_total{reason="missing_identity"} 40.0' in text
        assert "cdpflow_late_events" not in text  # only the collector's own metrics

    workers.proc.send_signal(signal.SIGTERM)
    _, err = workers.proc.communicate(timeout=60)
    assert workers.proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert not list(workers.tmp.glob("cdpflow-collector-metrics-*")), "metrics dir left behind"


def test_a_worker_that_dies_stops_the_others_with_a_failure_status(workers: Workers) -> None:
    first, second = workers.children()
    os.kill(first, signal.SIGKILL)
    _, err = workers.proc.communicate(timeout=60)
    assert workers.proc.returncode == 1
    assert f"worker {first} exited" in err
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
