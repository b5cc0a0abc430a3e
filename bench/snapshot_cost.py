"""What one profile snapshot costs: the view (``state.profile_view.view``), its encoding
(``flows.encode.Encoder``: the ``cdp.ProfileSnapshot`` record, its ``profile_json`` and
the Avro frame), and both, over customers' states folded from the benchmark workload.

    .venv/bin/python -m bench.snapshot_cost                  # 50,000 events, 20,000 customers
    .venv/bin/python -m bench.snapshot_cost --events 100000 --repeat 5
    .venv/bin/python -m bench.snapshot_cost --against b5e7e27  # before/after in one run
    .venv/bin/python -m bench.snapshot_cost --flow  # the dataflow: snapshots per event

Under a Zipf load most customers' coalescing window holds one event, so a snapshot is
paid almost per event: these rows are per snapshot, each the median of ``--repeat``
passes over every customer's final state (in the workload's order of first events), in
the process's CPU time (other work on a shared machine counts less than in wall time).
The baseline is measured in the same run: encoding a minimal ``cdp.ProfileSnapshot``
(no profile, ``profile_json`` ``"{}"``), the fixed price of any record on that topic.
``--against REV`` adds the rows of the view and encoder as they were at ``REV`` (loaded
from git beside today's), interleaved with today's: a before/after from one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path
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


ViewFn = Callable[[CustomerState, ProfileConfig], dict[str, Any]]


def code_at(rev: str) -> tuple[ViewFn, type[Encoder]]:
    """``state.profile_view.view`` and ``flows.encode.Encoder`` as they were at ``rev``
    (``git show``), loaded beside today's, for rows of that code in the same run."""
    root = Path(__file__).resolve().parent.parent
    loaded = []
    for path in ("state/profile_view.py", "flows/encode.py"):
        git = ["git", "-C", str(root), "show", f"{rev}:{path}"]
        source = subprocess.run(git, check=True, capture_output=True, text=True).stdout  # noqa: S603
        name = f"_at_{rev}_{Path(path).stem}".replace("-", "_")
        module = types.ModuleType(name)
        module.__file__ = f"{rev}:{path}"
        sys.modules[name] = module  # dataclasses and typing look their module up
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
        loaded.append(module)
    return loaded[0].view, loaded[1].Encoder


def measure(
    sts: list[CustomerState],
    cfg: ProfileConfig,
    repeat: int,
    code: dict[str, tuple[ViewFn, type[Encoder]]],
) -> dict[str, float]:
    """µs per snapshot of each row (``code``: label -> the view and encoder measured),
    the median of ``repeat`` passes, rows interleaved so that a slow spell of the machine
    falls on all of them."""
    codec = default_codec()
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

    rows: dict[str, Callable[[], None]] = {"baseline: minimal record": baseline}
    for label, (view_fn, encoder) in code.items():
        enc = encoder(codec, Topics(), _clock)
        changed = [ProfileChanged(st.key, view_fn(st, cfg), st.watermark, as_of(st)) for st in sts]
        suffix = f" ({label})" if label else ""
        rows[f"view{suffix}"] = partial(_only_view, sts, cfg, view_fn)
        rows[f"encode{suffix}"] = partial(_only_encode, changed, enc)
        rows[f"view + encode{suffix}"] = partial(_both, sts, cfg, view_fn, enc)
    runs: dict[str, list[float]] = {name: [] for name in rows}
    gc.freeze()
    for _ in range(repeat):
        for name, run in rows.items():
            start = time.process_time()  # CPU time: the machine is shared
            run()
            runs[name].append((time.process_time() - start) / len(sts) * 1e6)
            gc.collect()
    return {name: statistics.median(r) for name, r in runs.items()}


def _only_view(sts: list[CustomerState], cfg: ProfileConfig, view_fn: ViewFn) -> None:
    for st in sts:
        view_fn(st, cfg)


def _only_encode(changed: list[ProfileChanged], enc: Encoder) -> None:
    output = enc.output
    for p in changed:
        output((p.key, p))


def _both(sts: list[CustomerState], cfg: ProfileConfig, view_fn: ViewFn, enc: Encoder) -> None:
    output = enc.output
    for st in sts:
        output((st.key, ProfileChanged(st.key, view_fn(st, cfg), st.watermark, as_of(st))))


def in_flow(n: int, customers: int, flush_ms: int) -> tuple[float, float]:
    """The full dataflow in process over the workload (Bytewax's testing source, batches of
    1000), ``flush_ms`` as configured: events/s, and snapshots on the profiles topic per
    event (what coalescing left to pay for; at the end of the input every owed one goes)."""
    from bytewax.testing import TestingSink, TestingSource, run_main

    from bench.workload import encoded_events
    from cdpflow.settings import Settings
    from flows.dataflow import build_flow

    settings = Settings(profile_flush_ms=flush_ms)
    msgs = encoded_events(default_codec(), n, customers)
    out: list[Any] = []
    flow = build_flow(TestingSource(msgs, batch_size=1000), TestingSink(out), settings,
                      end_at_stream_time=True)  # fmt: skip
    start = time.perf_counter()
    run_main(flow)  # type: ignore[no-untyped-call]
    elapsed = time.perf_counter() - start
    snapshots = sum(1 for m in out if m.topic == settings.topics.profiles)
    return n / elapsed, snapshots / n


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
    p.add_argument("--against", metavar="REV", help="also rows of the view and encoder at REV")
    p.add_argument("--flow", action="store_true",
                   help="instead: the dataflow in process: events/s, snapshots/event")  # fmt: skip
    p.add_argument("--budget", type=float,
                   help="with --flow: snapshot share of time before delays stretch")  # fmt: skip
    args = p.parse_args()
    if args.budget is not None:
        from flows.snapshot_load import LOAD

        LOAD.budget = args.budget
    if args.flow:
        rate, per_event = in_flow(args.events, args.customers, 1000)
        print(f"{args.events:,} events, {args.customers:,} Zipf customers, flush_ms 1000: "
              f"{rate:,.0f} events/s, {per_event:.3f} snapshots per event")  # fmt: skip
        return
    cfg = ProfileConfig(rules=default_rules())
    sts = states(args.events, args.customers, cfg)
    code: dict[str, tuple[ViewFn, type[Encoder]]] = {}
    if args.against:
        code[args.against] = code_at(args.against)
    code[""] = (view, Encoder)
    us = measure(sts, cfg, args.repeat, code)
    size = sizes(sts, cfg)
    base = us["baseline: minimal record"]
    print(f"{args.events:,} events, {len(sts):,} customers' states (of {args.customers:,} "
          f"Zipf), median of {args.repeat}; Python {platform.python_version()}, "
          f"{platform.machine()}")  # fmt: skip
    print(f"| {'per snapshot (CPU time)':<32} | {'µs':>7} | {'vs baseline':>11} |")
    print(f"|{'-' * 34}|{'-' * 8}:|{'-' * 12}:|")
    for name, value in us.items():
        print(f"| {name:<32} | {value:>7.2f} | {value / base:>11.1f} |")
    print(f"snapshot bytes: median {size['median']:.0f}, p99 {size['p99']:.0f}")
    if args.json:
        out: dict[str, Any] = {**us, "bytes": size}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
