"""What one profile snapshot costs: the view (``state.profile_view.view``), its encoding
(``flows.encode.Encoder``: the ``cdp.ProfileSnapshot`` record, its ``profile_json`` and
the Avro frame), and both, over customers' states folded from the benchmark workload.

    .venv/bin/python -m bench.snapshot_cost                  # 50,000 events, 20,000 customers
    .venv/bin/python -m bench.snapshot_cost --events 100000 --repeat 5

Under a Zipf load most customers' coalescing window holds one event, so a snapshot is
paid almost per event: these rows are per snapshot, each the median of ``--repeat``
passes over every customer's final state (in the workload's order of first events).
The baseline is measured in the same run: encoding a minimal ``cdp.ProfileSnapshot``
(no profile, ``profile_json`` ``"{}"``), the fixed price of any record on that topic.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.fold_rules import events
from cdpflow.codec import default_codec
from cdpflow.settings import Topics
from flows.encode import Encoder
from state import STATE_VERSION, ProfileChanged
from state.config import ProfileConfig, default_rules
from state.profile import CustomerState, apply, as_of
from state.profile_view import view

__all__ = ["main", "measure", "states"]


def states(n: int, customers: int, cfg: ProfileConfig) -> list[CustomerState]:
    """Every customer's state after folding ``n`` workload events (before any timing)."""
    out: dict[str, CustomerState] = {}
    for ev in events(n, customers):
        key = ev.customer_id or ""
        st = out.get(key)
        if st is None:
            st = out[key] = CustomerState(key)
        apply(st, ev, cfg)
    return list(out.values())


def _clock() -> int:
    return 1_793_000_000_000


def measure(sts: list[CustomerState], cfg: ProfileConfig, repeat: int) -> dict[str, float]:
    """µs per snapshot of each row, the median of ``repeat`` passes, rows interleaved so
    that a slow spell of the machine falls on all of them."""
    codec = default_codec()
    enc = Encoder(codec, Topics(), _clock)
    changed = [ProfileChanged(st.key, view(st, cfg), st.watermark, as_of(st)) for st in sts]
    minimal = {
        "customer_id": "c-0",
        "state_version": STATE_VERSION,
        "profile_json": "{}",
        "event_time": 0,
        "emitted_at": 0,
    }

    def baseline() -> None:
        encode = codec.encode
        for _ in sts:
            encode("cdp.ProfileSnapshot", minimal)

    def only_view() -> None:
        for st in sts:
            view(st, cfg)

    def only_encode() -> None:
        output = enc.output
        for p in changed:
            output((p.key, p))

    def both() -> None:
        output = enc.output
        for st in sts:
            output((st.key, ProfileChanged(st.key, view(st, cfg), st.watermark, as_of(st))))

    rows: dict[str, Callable[[], None]] = {
        "baseline: minimal record": baseline,
        "view": only_view,
        "encode": only_encode,
        "view + encode": both,
    }
    runs: dict[str, list[float]] = {name: [] for name in rows}
    gc.freeze()
    for _ in range(repeat):
        for name, run in rows.items():
            start = time.perf_counter()
            run()
            runs[name].append((time.perf_counter() - start) / len(sts) * 1e6)
            gc.collect()
    return {name: statistics.median(r) for name, r in runs.items()}


def sizes(sts: list[CustomerState], cfg: ProfileConfig) -> dict[str, float]:
    """Bytes of the encoded snapshots: median and 99th percentile."""
    enc = Encoder(default_codec(), Topics(), _clock)
    n: list[int] = []
    for st in sts:
        msg = enc.output((st.key, ProfileChanged(st.key, view(st, cfg), st.watermark, as_of(st))))
        n.append(len(msg.value or b""))
    n.sort()
    return {"median": float(n[len(n) // 2]), "p99": float(n[int(len(n) * 0.99)])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args()
    cfg = ProfileConfig(rules=default_rules())
    sts = states(args.events, args.customers, cfg)
    us = measure(sts, cfg, args.repeat)
    size = sizes(sts, cfg)
    base = us["baseline: minimal record"]
    print(f"{args.events:,} events, {len(sts):,} customers' states (of {args.customers:,} "
          f"Zipf), median of {args.repeat}; Python {platform.python_version()}, "
          f"{platform.machine()}")  # fmt: skip
    print(f"| {'per snapshot':<24} | {'µs':>7} | {'vs baseline':>11} |")
    print(f"|{'-' * 26}|{'-' * 8}:|{'-' * 12}:|")
    for name, value in us.items():
        print(f"| {name:<24} | {value:>7.2f} | {value / base:>11.1f} |")
    print(f"snapshot bytes: median {size['median']:.0f}, p99 {size['p99']:.0f}")
    if args.json:
        out: dict[str, Any] = {**us, "bytes": size}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
