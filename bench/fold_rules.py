"""The profile's hot path alone: ``state.apply`` (the fold plus the rules' evaluation) per
event, on pre-decoded events of the benchmark workload (``bench.workload``), no Bytewax,
no Kafka, no codec.

    .venv/bin/python -m bench.fold_rules                    # 50,000 events, 20,000 customers
    .venv/bin/python -m bench.fold_rules --events 100000 --repeat 5

Rows, each the median of ``--repeat`` runs over fresh state, in µs per event:

- baseline: a minimal fold measured in the same run (a dict per customer counting event
  types and keeping the newest event time), so a ratio survives a noisy machine;
- shipped rules: ``state/rules/default.toml``;
- + 20 unmatched traits: twenty declared traits on a custom event the workload never
  sends (the issue's target: at most 10 % more than the shipped rules);
- + 20 matched traits: twenty declared traits over the workload's own product views
  and orders (count, sum, distinct, most frequent, last, by category, windowed).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.runtime import tune_gc
from flows.decode import event_from_record
from state import profile
from state.config import ProfileConfig, default_rules
from state.events import Event
from state.rules.model import DEFAULT_RULES, Rules, parse_rules

__all__ = ["main", "measure"]

_KINDS = (
    ("count", "product_viewed", "", "", "24h"),
    ("sum", "order_completed", "revenue", "", "90d"),
    ("distinct_count", "product_viewed", "product.product_id", "", ""),
    ("most_frequent", "product_viewed", "product.category", "", "30d"),
    ("last", "product_viewed", "product.product_id", "", ""),
    ("count", "product_viewed", "", "product.category", "7d"),
    ("max", "order_completed", "revenue", "", ""),
    ("last_time", "cart_item_added", "", "", ""),
    ("unique_list", "product_viewed", "product.category", "", ""),
    ("avg", "order_completed", "revenue", "", "180d"),
)


def events(n: int, customers: int) -> list[Event]:
    """The workload's messages, decoded once (before any timing)."""
    codec = default_codec()
    out = []
    for msg in encoded_events(codec, n, customers):
        _, record = codec.decode(msg.value, logical=False)
        out.append(event_from_record(record))
    return out


def extra_traits(n: int, matched: bool) -> str:
    """``n`` trait declarations in TOML: over the workload's events, or over a custom
    event it never sends."""
    lines = []
    for i in range(n):
        kind, event, value, by, window = _KINDS[i % len(_KINDS)]
        lines.append(f"[traits.bench_{i}]")
        lines.append(f'kind = "{kind}"')
        lines.append(f'event = "{event if matched else "custom:never_sent"}"')
        if value:
            lines.append(f'value = "{value if matched else "properties.x"}"')
        if by and matched:
            lines.append(f'by = "{by}"')
        if window:
            lines.append(f'window = "{window}"')
    return "\n".join(lines) + "\n"


def with_traits(base: str, n: int, matched: bool) -> Rules:
    return parse_rules(base + "\n" + extra_traits(n, matched))


def baseline(evs: list[Event]) -> float:
    """A minimal keyed fold: what any per-customer state costs in this interpreter."""
    states: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    for ev in evs:
        st = states.get(ev.customer_id or "")
        if st is None:
            st = states[ev.customer_id or ""] = {"t": 0, "counts": {}}
        counts = st["counts"]
        counts[ev.event_type] = counts.get(ev.event_type, 0) + 1
        if ev.event_time > st["t"]:
            st["t"] = ev.event_time
    return (time.perf_counter() - start) / len(evs) * 1e6


def fold(evs: list[Event], cfg: ProfileConfig) -> float:
    """``state.apply`` over every event, each customer's state kept in a dict."""
    states: dict[str, profile.CustomerState] = {}
    apply, new = profile.apply, profile.CustomerState
    start = time.perf_counter()
    for ev in evs:
        key = ev.customer_id or ""
        st = states.get(key)
        if st is None:
            st = states[key] = new(key)
        apply(st, ev, cfg)
    return (time.perf_counter() - start) / len(evs) * 1e6


def measure(evs: list[Event], repeat: int) -> dict[str, float]:
    """µs per event of each row, each the median of ``repeat`` runs, rows interleaved so
    that a slow spell of the machine falls on all of them."""
    base = DEFAULT_RULES.read_text()
    shipped = ProfileConfig(rules=default_rules())
    rows: dict[str, Callable[[], float]] = {
        "baseline": lambda: baseline(evs),
        "shipped rules": lambda: fold(evs, shipped),
        "+ 20 unmatched traits": lambda: fold(
            evs, replace(shipped, rules=with_traits(base, 20, matched=False))
        ),
        "+ 20 matched traits": lambda: fold(
            evs, replace(shipped, rules=with_traits(base, 20, matched=True))
        ),
    }
    runs: dict[str, list[float]] = {name: [] for name in rows}
    tune_gc()  # as `cdpflow run` sets the collector
    for _ in range(repeat):
        for name, run in rows.items():
            runs[name].append(run())
            gc.collect()
    return {name: statistics.median(r) for name, r in runs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args()
    evs = events(args.events, args.customers)
    us = measure(evs, args.repeat)
    shipped = us["shipped rules"]
    print(f"{args.events:,} events, {args.customers:,} Zipf customers, median of "
          f"{args.repeat}; Python {platform.python_version()}, {platform.machine()}")  # fmt: skip
    print(f"| {'fold + rules':<22} | {'µs/event':>9} | {'vs baseline':>11} | {'vs shipped':>10} |")
    print(f"|{'-' * 24}|{'-' * 10}:|{'-' * 12}:|{'-' * 11}:|")
    for name, value in us.items():
        print(f"| {name:<22} | {value:>9.2f} | {value / us['baseline']:>11.1f} | "
              f"{value / shipped:>10.3f} |")  # fmt: skip
    if args.json:
        print(json.dumps(us))


if __name__ == "__main__":
    main()
