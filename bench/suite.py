"""The performance benchmark of the project in one command: one table, every figure
beside (a) the ceiling and (b) the framework, measured in the same run.

    bash docker/kafka-local.sh start
    .venv/bin/python -m bench                      # or: make bench
    .venv/bin/python -m bench --state-customers 100000 --skip latency   # a quicker look

Sections (each also runs alone; see its module):

- throughput, Kafka -> Kafka (``bench.kafka_pipeline``), by default 200,000 events of
  1M Zipf-distributed customers (``bench.workload``): (a) a confluent-kafka consume ->
  produce loop of the same bytes, (b) Bytewax ``KafkaSource -> KafkaSink`` doing no work,
  then cdpflow in-process, ``cdpflow run`` with 1 and 2 processes, ``cdpflow replay``;
- latency event -> trigger at fixed rates, beside (b)'s latency for the same load, and the
  profiles' freshness (event -> its customer's snapshot on the profiles topic);
- the fold and the rules alone (``bench.fold_rules``: the state package over pre-decoded
  events, beside a minimal keyed fold, and with twenty extra traits, matched or not);
- state of a typical customer (``bench.state_size``: a month of 60 events, folded with
  ``state.apply``): snapshot bytes, (a) = the event ids alone;
- state and restart at ``--state-customers`` (default 1M) customers in the real dataflow
  with recovery (``bench.recovery_restart``): RSS per 100k customers, snapshot bytes, and
  seconds from restart to processing; (a) = a raw read of the same store with sqlite3,
  (b) = Bytewax's keyed no-op with as many keys.

The state sections run in their own processes, so each one's memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import kafka_pipeline as kp

SECTIONS = ("throughput", "latency", "fold", "typical", "state")
POM = Path(__file__).resolve().parent.parent / "docker" / "kafka" / "pom.xml"


def _json_of(module: str, *args: str) -> dict[str, Any]:
    """Run ``python -m module --json args`` and parse its last line."""
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-m", module, "--json", *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _kafka_version() -> str:
    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    return m.group(1) if m else "?"


def _n(x: float | None, digits: int = 0) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


def _ratio(x: float | None, base: float | None) -> str:
    if x is None or not base:
        return ""
    r = x / base
    return f"{r:.2f}" if r < 10 else f"{r:,.0f}x"


def _q(q: list[float] | None) -> str:
    return "no records" if q is None else " / ".join(f"{v:,.0f}" for v in q)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="throughput: events")
    ap.add_argument("--customers", type=int, default=1_000_000, help="throughput: Zipf customers")
    ap.add_argument("--rate", type=int, action="append", help="latency: events/s (1000, 5000)")
    ap.add_argument("--latency-seconds", type=int, default=10)
    ap.add_argument("--typical-customers", type=int, default=10_000)
    ap.add_argument("--state-customers", type=int, default=1_000_000)
    ap.add_argument("--skip", action="append", choices=SECTIONS, default=[])
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    started = time.perf_counter()
    rows: list[tuple[str, str, str, str, str, str, str]] = []

    def row(measure: str, value: float | None, a: float | None, b: float | None,
            target: str = "", digits: int = 0) -> None:  # fmt: skip
        rows.append((measure, _n(value, digits), _n(a, digits), _n(b, digits),
                     _ratio(value, a), _ratio(value, b), target))  # fmt: skip

    if "throughput" not in args.skip or "latency" not in args.skip:
        rates = [] if "latency" in args.skip else (args.rate or [1_000, 5_000])
        k = kp.measure(bootstrap, args.events, args.customers, rates, args.latency_seconds)
        tp = k["rows"]
        a, b = tp[kp.CEILING], tp[kp.FRAMEWORK]
        row("events/s, Kafka -> Kafka: (a) and (b) themselves", None, a, b)
        row("events/s, cdpflow in-process", tp["cdpflow, in-process"], a, b)
        row("events/s, `cdpflow run`, 1 process", tp[kp.RUN_1], a, b, "≥ 0.5 of (b), ≥ 75,000")
        speedup = tp[kp.RUN_2] / tp[kp.RUN_1]
        row("events/s, `cdpflow run`, 2 processes", tp[kp.RUN_2], a, b,
            f"≥ 1.6x 1 process (here {speedup:.2f}x)")  # fmt: skip
        row("events/s, `cdpflow replay`", tp["cdpflow replay, 1 process"], a, b)
        for procs, (mine, broker) in k["cpu"].items():
            rows.append((f"cores busy during `cdpflow run`, {procs} process(es) / the broker",
                         f"{mine:.2f} / {_n(broker, 2) or '?'}", "", "", "", "",
                         f"{os.cpu_count()} cores in all"))  # fmt: skip
        for rate, lat in k["latency"].items():
            target = "p99 ≤ 100" if rate == 5_000 else ""
            rows.append((f"latency ms p50 / p95 / p99 at {rate:,} events/s",
                         _q(lat["cdpflow"]), "", _q(lat["framework"]), "",
                         _ratio(lat["cdpflow"] and lat["cdpflow"][2],
                                lat["framework"] and lat["framework"][2]), target))  # fmt: skip
        for rate, (fresh, missing) in k["freshness"].items():
            target = "p99 ≤ 2,000" if rate == 1_000 else ""
            rows.append((f"profile freshness ms p50 / p95 / p99 at {rate:,} events/s",
                         _q(fresh), "", "", "", "",
                         f"{target}{'; ' if target and missing else ''}"
                         f"{f'{missing} without a snapshot' if missing else ''}"))  # fmt: skip
    if "fold" not in args.skip:
        f = _json_of("bench.fold_rules", "--events", "50000")
        shipped = f["shipped rules"]
        row("µs/event, fold + rules alone (state package; (a) a minimal keyed fold)", shipped,
            f["baseline"], None, "≤ 15", digits=1)  # fmt: skip
        for name, target in (("+ 20 unmatched traits", " (target ≤ 1.10)"),
                             ("+ 20 matched traits", "")):  # fmt: skip
            rows.append((f"µs/event, fold + rules {name}", _n(f[name], 1), "", "", "", "",
                         f"{f[name] / shipped:.2f} of shipped{target}"))  # fmt: skip
    if "typical" not in args.skip:
        t = _json_of("bench.state_size", "--customers", str(args.typical_customers))
        row("snapshot bytes, typical customer (60 events a month), mean",
            t["snapshot_bytes_mean"], t["event_ids_bytes"], None, "≤ 2,048")  # fmt: skip
        row("snapshot bytes, typical customer, p95", t["snapshot_bytes_p95"], None, None)
        row("KB of Python memory, typical customer live / frozen", t["live_kb"], None, None,
            f"frozen: {t['frozen_kb']:.1f} KB", 1)  # fmt: skip
    if "state" not in args.skip:
        n = str(args.state_customers)
        c = _json_of("bench.recovery_restart", "--customers", n)
        nb = _json_of("bench.recovery_restart", "--customers", n, "--flow", "noop")
        m = f"{args.state_customers:,}"
        row(f"RSS MiB per 100k customers, {m} in state", c["rss_mib_per_100k"], None,
            nb["rss_mib_per_100k"])  # fmt: skip
        row(f"snapshot bytes per customer, {m} in state (one event each)",
            c["snapshot_bytes_mean"], None, nb["snapshot_bytes_mean"])  # fmt: skip
        row(f"seconds from restart to processing, {m} in state", c["restart_s"],
            c["raw_read_s"], nb["restart_s"], digits=1)  # fmt: skip
        row(f"events/s filling {m} customers (each event a new customer)",
            c["fill_events_per_s"], None, nb["fill_events_per_s"])  # fmt: skip

    ran = (
        ""
        if "throughput" in args.skip
        else (f"throughput over {args.events:,} events of {args.customers:,} Zipf customers; ")
    )
    print(f"\ncdpflow benchmark, {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, Kafka {_kafka_version()} on loopback; {ran}"
          f"{(time.perf_counter() - started) / 60:.0f} min")  # fmt: skip
    head = ("measure", "cdpflow", "(a) ceiling", "(b) framework", "÷ (a)", "÷ (b)", "target")
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
