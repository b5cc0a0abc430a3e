"""Restart time with many customers in state: Bytewax recovery, measured.

    python -m bench.recovery_restart [--customers 1000000]

1. The real dataflow (in-process, Bytewax's testing source) applies one event for each of
   ``--customers`` customers with a recovery directory: that many keys are snapshotted.
2. The same dataflow starts again on that directory: the source resumes at its end, so
   the run is the restart alone — loading every key's snapshot and rebuilding its logic.
3. Baseline in the same run: the same restart of a dataflow whose state holds no customer.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main

from bench.dataflow_throughput import BATCH, CountingSink
from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.settings import Settings
from flows.dataflow import build_flow


def _run(msgs: list, recovery: Path) -> tuple[float, int]:
    sink = CountingSink()
    flow = build_flow(TestingSource(msgs, BATCH), sink, Settings())
    start = time.perf_counter()
    run_main(
        flow, epoch_interval=timedelta(seconds=5), recovery_config=RecoveryConfig(str(recovery))
    )
    return time.perf_counter() - start, sink.total[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--recovery-partitions",
        type=int,
        default=Settings().recovery_partitions,
        help="recovery store partitions (CDPFLOW_RECOVERY_PARTITIONS; default %(default)s)",
    )
    args = ap.parse_args()
    n = args.customers
    # One event per customer, so every customer is a key in state; event times end about
    # now, as in a live system (no month of timers to catch up on at the end).
    t0 = int(time.time() * 1000) - n * 200
    msgs = encoded_events(default_codec(), n, n, seed=2, zipf=False, t0=t0)
    root = Path(tempfile.mkdtemp(prefix="cdpflow-restart-"))
    try:
        full, empty = root / "full", root / "empty"
        for d in (full, empty):
            d.mkdir()
            init_db_dir(d, args.recovery_partitions)
        fill_s, _ = _run(msgs, full)
        _run(msgs[:0], empty)
        size = sum(f.stat().st_size for f in full.glob("*")) / 2**20
        restart_s, emitted = _run(msgs, full)
        baseline_s, _ = _run(msgs[:0], empty)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{n:,} customers in state; first run {fill_s:.1f} s ({n / fill_s:,.0f} events/s), "
          f"recovery store {size:,.0f} MiB in {args.recovery_partitions} partitions")  # fmt: skip
    print("| restart | seconds | vs empty state |")
    print("|---|---:|---:|")
    print(f"| {n:,} customers in state | {restart_s:.1f} | {restart_s / baseline_s:.0f}x |")
    print(f"| no customer in state (baseline) | {baseline_s:.2f} | 1x |")
    print(f"(records emitted by the restart: {emitted}, from timers and end-of-input flushes)")


if __name__ == "__main__":
    main()
