"""State per customer: snapshot bytes, memory, and the cost of restoring it.

    python -m bench.state_size [--customers 100000]

Each customer gets a typical month: 60 events over 30 days (an identify, product views
across four categories, cart adds, three orders, email opens and clicks, page views), folded
with the real ``state.apply``. Printed, against baselines measured in the same run:

- snapshot bytes (pickled, as Bytewax stores them), mean / p95, against the pickled
  64 event ids alone (the dedupe memory no design can avoid);
- resident memory growth per 100k customers in this process, against the same number
  of empty dicts;
- restore: ``from_snapshot(pickle.loads(...))`` per customer, against ``pickle.loads``
  alone — the pure part of a restart with that many customers in state;
- memory of an idle customer frozen back into its snapshot (the dataflow does this after
  ``CDPFLOW_FREEZE_IDLE_MS``), against the same customer live.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import random
import statistics
import time
import tracemalloc
from typing import Any

from state import CustomerState, Event, ProfileConfig, apply, from_snapshot, to_snapshot
from state.events import DAY_MS, HOUR_MS

T0 = 1_790_000_000_000
CATEGORIES = ("shoes", "bags", "hats", "watches")


def typical_month(cid: str, rng: random.Random) -> list[Event]:
    events: list[Event] = []

    def add(kind: str, t: int, payload: dict[str, Any]) -> None:
        events.append(Event(f"{cid}-{len(events)}", kind, t, t, customer_id=cid, payload=payload))

    add("identify", T0, {"email": f"{cid}@example.com", "first_name": "Sam",
                         "signup_date": "2026-09-01", "location": {"country": "DE"}})  # fmt: skip
    for _ in range(59):
        t = T0 + rng.randrange(30 * DAY_MS)
        roll = rng.random()
        category = rng.choice(CATEGORIES)
        product = {"product_id": f"{category}-{rng.randint(1, 30)}", "category": category,
                   "price": 40.0}  # fmt: skip
        if roll < 0.55:
            add("product_viewed", t, {"product": product, "session_id": f"s{t // HOUR_MS}"})
        elif roll < 0.65:
            add("cart_item_added", t, {"item": {"product": product, "quantity": 1}})
        elif roll < 0.7:
            add("order_completed", t, {"order_id": f"o{t}", "revenue": 80.0,
                                       "items": [{"product": product, "quantity": 2}]})  # fmt: skip
        elif roll < 0.85:
            add("email_event", t, {"action": rng.choice(["delivered", "opened", "clicked"])})
        else:
            add("page_viewed", t, {"path": "/", "session_id": f"s{t // HOUR_MS}"})
    return sorted(events, key=lambda e: e.event_time)


def live_and_frozen_kb(n: int, cfg: ProfileConfig) -> tuple[float, float]:
    """Python memory (tracemalloc) per customer while live (state and rules cache) and when
    frozen back into its snapshot tuple, as the dataflow keeps idle customers."""
    rng = random.Random(5)
    months = [typical_month(f"m-{i}", rng) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    states = []
    for i, events in enumerate(months):
        st = CustomerState(f"m-{i}")
        for ev in events:
            apply(st, ev, cfg)
        states.append(st)
    gc.collect()
    live = tracemalloc.get_traced_memory()[0] - base
    snaps = [to_snapshot(st) for st in states]
    del states
    gc.collect()
    frozen = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del snaps
    return live / n / 1024, frozen / n / 1024


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages of 4 KiB


def measure(n: int) -> dict[str, float]:
    rng = random.Random(3)
    cfg = ProfileConfig()

    gc.collect()
    base = rss_kb()
    empties = [{} for _ in range(n)]
    empty_kb = rss_kb() - base
    del empties
    gc.collect()

    base = rss_kb()
    states = []
    t = time.perf_counter()
    events = 0
    for i in range(n):
        st = CustomerState(f"c-{i}")
        for ev in typical_month(st.key, rng):
            apply(st, ev, cfg)
            events += 1
        states.append(st)
    fold_s = time.perf_counter() - t
    gc.collect()
    state_kb = rss_kb() - base

    blobs = [pickle.dumps(to_snapshot(st)) for st in states]
    sizes = sorted(len(b) for b in blobs)
    ids_only = statistics.mean(len(pickle.dumps(bytes(16 * len(st.seen)))) for st in states[:1000])
    del states
    gc.collect()

    t = time.perf_counter()
    for b in blobs:
        pickle.loads(b)  # noqa: S301
    loads_s = time.perf_counter() - t
    t = time.perf_counter()
    for b in blobs:
        from_snapshot(pickle.loads(b))  # noqa: S301
    restore_s = time.perf_counter() - t
    live_kb, frozen_kb = live_and_frozen_kb(min(n, 2_000), cfg)
    return {
        "customers": n,
        "events": events,
        "fold_s": fold_s,
        "snapshot_bytes_mean": statistics.mean(sizes),
        "snapshot_bytes_p95": sizes[int(0.95 * (n - 1))],
        "event_ids_bytes": ids_only,
        "rss_mib_per_100k": state_kb / 1024 * 100_000 / n,
        "empty_dicts_mib_per_100k": empty_kb / 1024 * 100_000 / n,
        "restore_us": restore_s / n * 1e6,
        "loads_us": loads_s / n * 1e6,
        "live_kb": live_kb,
        "frozen_kb": frozen_kb,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = ap.parse_args()
    n = args.customers
    r = measure(n)
    if args.json:
        print(json.dumps(r))
        return
    events, fold_s = r["events"], r["fold_s"]
    print(f"{n:,} customers x 60 events over 30 days ({events:,} events folded in "
          f"{fold_s:.1f} s, {events / fold_s:,.0f} events/s in state.apply alone)")  # fmt: skip
    print("| measure | cdpflow | baseline | ratio |")
    print("|---|---:|---:|---:|")
    mean, p95, ids_only = r["snapshot_bytes_mean"], r["snapshot_bytes_p95"], r["event_ids_bytes"]
    print(f"| snapshot bytes per customer, mean (p95) | {mean:,.0f} ({p95:,}) "
          f"| {ids_only:,.0f} (event ids alone) | {mean / ids_only:.1f} |")  # fmt: skip
    state_mib, empty_mib = r["rss_mib_per_100k"], r["empty_dicts_mib_per_100k"]
    print(f"| RSS growth per 100k customers | {state_mib:,.0f} MiB "
          f"| {empty_mib:,.1f} MiB (empty dicts) "
          f"| {state_mib / max(empty_mib, 0.01):.0f} |")  # fmt: skip
    restore_us, loads_us = r["restore_us"], r["loads_us"]
    print(f"| restore per customer | {restore_us:,.1f} µs "
          f"| {loads_us:,.1f} µs (pickle.loads alone) | {restore_us / loads_us:.1f} |")  # fmt: skip
    print(f"| restore 1M customers (extrapolated) | {restore_us:,.0f} s | {loads_us:,.0f} s | |")
    live_kb, frozen_kb = r["live_kb"], r["frozen_kb"]
    print(f"| memory of an idle customer, frozen (tracemalloc) | {frozen_kb:,.1f} KB "
          f"| {live_kb:,.1f} KB live (state, rules cache) "
          f"| {frozen_kb / live_kb:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
