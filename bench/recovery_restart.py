"""State and restart with many customers: memory, snapshot bytes, Bytewax recovery.

    python -m bench.recovery_restart [--customers 1000000] [--flow cdpflow|noop] [--json]

1. The dataflow (in-process, Bytewax's testing source) applies one event for each of
   ``--customers`` customers with a recovery directory: that many keys are snapshotted.
   While it runs, the process's resident memory is sampled at every output batch: the
   growth over the run, per 100k customers, is what holding them costs.
2. The snapshot bytes per customer are read back from the store (the newest snapshot of
   each key of the stateful step, as Bytewax stores it).
3. The same dataflow starts again on that directory: the source resumes at its end, so
   the run is the restart alone — loading every key's snapshot and rebuilding its logic.
4. Baselines in the same run: the same restart of a dataflow whose state holds no key,
   and a raw read of every snapshot row of the store with sqlite3 (the I/O floor).

``--flow noop`` runs Bytewax's keyed no-op (a counter per key) instead of cdpflow: the
framework's own share of memory, store and restart, for the same number of keys
(``python -m bench`` runs both and prints them side by side).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main

from bench.dataflow_throughput import BATCH, CountingSink, _Count, keyed_noop
from bench.state_size import rss_kb
from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.settings import Settings
from flows.dataflow import build_flow


class _RssCount(_Count):
    """Counts outputs and samples resident memory at every batch."""

    def __init__(self, total: list[int], peak: list[int]) -> None:
        super().__init__(total)
        self._peak = peak

    def write_batch(self, items: list[Any]) -> None:
        super().write_batch(items)
        self._peak[0] = max(self._peak[0], rss_kb())


class RssSink(CountingSink):
    def __init__(self) -> None:
        super().__init__()
        self.peak_kb = [0]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RssCount:
        return _RssCount(self.total, self.peak_kb)


def _cdpflow(msgs: list[Any], sink: CountingSink) -> Dataflow:
    return build_flow(TestingSource(msgs, BATCH), sink, Settings())


FLOWS: dict[str, Callable[[list[Any], CountingSink], Dataflow]] = {
    "cdpflow": _cdpflow,
    "noop": keyed_noop,
}


def _run(build: Callable[[list[Any], CountingSink], Dataflow], msgs: list[Any],
         recovery: Path) -> tuple[float, RssSink]:  # fmt: skip
    sink = RssSink()
    flow = build(msgs, sink)
    start = time.perf_counter()
    run_main(
        flow, epoch_interval=timedelta(seconds=5), recovery_config=RecoveryConfig(str(recovery))
    )
    return time.perf_counter() - start, sink


def snapshot_sizes(store: Path) -> tuple[list[int], float]:
    """Bytes of the newest snapshot of every key of the store's largest stateful step, and
    the seconds a raw read of every snapshot row takes."""
    sizes: dict[str, list[int]] = {}
    for part in sorted(store.glob("*.sqlite3")):
        with sqlite3.connect(part) as db:
            rows = db.execute(
                "SELECT step_id, length(ser_change) FROM snaps s WHERE snap_epoch = "
                "(SELECT max(snap_epoch) FROM snaps t WHERE t.step_id = s.step_id "
                "AND t.state_key = s.state_key)"
            ).fetchall()
            for step, size in rows:
                sizes.setdefault(step, []).append(size or 0)
    raw_start = time.perf_counter()
    for part in sorted(store.glob("*.sqlite3")):
        with sqlite3.connect(part) as db:
            for _ in db.execute("SELECT step_id, state_key, snap_epoch, ser_change FROM snaps"):
                pass
    raw_s = time.perf_counter() - raw_start
    return sorted(max(sizes.values(), key=len)), raw_s


def measure(n: int, flow: str, partitions: int) -> dict[str, float]:
    build = FLOWS[flow]
    # One event per customer, so every customer is a key in state; event times end about
    # now, as in a live system (no month of timers to catch up on at the end).
    t0 = int(time.time() * 1000) - n * 200
    msgs = encoded_events(default_codec(), n, n, seed=2, zipf=False, t0=t0)
    root = Path(tempfile.mkdtemp(prefix="cdpflow-restart-"))
    try:
        full, empty = root / "full", root / "empty"
        for d in (full, empty):
            d.mkdir()
            init_db_dir(d, partitions)
        before_kb = rss_kb()
        fill_s, fill = _run(build, msgs, full)
        grown_kb = max(fill.peak_kb[0] - before_kb, 0)
        _run(build, msgs[:0], empty)
        store_mib = sum(f.stat().st_size for f in full.glob("*")) / 2**20
        sizes, raw_s = snapshot_sizes(full)
        restart_s, restart = _run(build, msgs, full)
        baseline_s, _ = _run(build, msgs[:0], empty)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "customers": n,
        "partitions": partitions,
        "fill_s": fill_s,
        "fill_events_per_s": n / fill_s,
        "rss_mib_per_100k": grown_kb / 1024 * 100_000 / n,
        "store_mib": store_mib,
        "snapshot_keys": len(sizes),
        "snapshot_bytes_mean": statistics.mean(sizes),
        "snapshot_bytes_p95": sizes[int(0.95 * (len(sizes) - 1))],
        "raw_read_s": raw_s,
        "restart_s": restart_s,
        "restart_emitted": restart.total[0],
        "empty_restart_s": baseline_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--flow", choices=sorted(FLOWS), default="cdpflow")
    ap.add_argument(
        "--recovery-partitions",
        type=int,
        default=Settings().recovery_partitions,
        help="recovery store partitions (CDPFLOW_RECOVERY_PARTITIONS; default %(default)s)",
    )
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = ap.parse_args()
    r = measure(args.customers, args.flow, args.recovery_partitions)
    if args.json:
        print(json.dumps(r))
        return
    n = args.customers
    print(f"{args.flow}: {n:,} customers in state; first run {r['fill_s']:.1f} s "
          f"({r['fill_events_per_s']:,.0f} events/s), recovery store {r['store_mib']:,.0f} MiB "
          f"in {args.recovery_partitions} partitions")  # fmt: skip
    print("| measure | value | baseline |")
    print("|---|---:|---:|")
    print(f"| snapshot bytes per customer, mean (p95) | {r['snapshot_bytes_mean']:,.0f} "
          f"({r['snapshot_bytes_p95']:,}) | |")  # fmt: skip
    print(f"| RSS growth per 100k customers | {r['rss_mib_per_100k']:,.0f} MiB | |")
    print(f"| restart, seconds | {r['restart_s']:.1f} | {r['empty_restart_s']:.2f} (empty state), "
          f"{r['raw_read_s']:.1f} (raw read of the store) |")  # fmt: skip
    print(
        f"(records emitted by the restart: {r['restart_emitted']:,}, from timers and "
        "end-of-input flushes)"
    )


if __name__ == "__main__":
    main()
