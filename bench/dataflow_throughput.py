"""In-process dataflow throughput, against Bytewax baselines measured in the same run.

    python -m bench.dataflow_throughput [--events N] [--customers N] [--repeat N]

Rows (all over the same pre-encoded events, Bytewax's testing source in batches of 1000
like ``KafkaSource``, a counting sink):

- passthrough: input -> output, no work: what the framework alone costs;
- keyed no-op: + key_on and a stateful_batch that only counts: the per-key state cost;
- decode: + Avro decode and validation;
- cdpflow: the full dataflow (decode, profile state, encode). The input ends as a replay
  does (``end_at_stream_time``): the rules' moments happen up to the newest event time.
  The workload's times are fixed (``bench.workload.T0``), so ending at the wall clock
  instead would add, per customer, every day of window decay and lifecycle change
  between the workload and today: a cost that grows with the calendar, not with the
  events (``--end-at wall`` measures it).

The Kafka-to-Kafka figures (ceiling, latency) belong to the broker benchmark of issue 8.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSource, run_main

from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.runtime import tune_gc
from cdpflow.settings import Settings
from flows.clock import system_clock_ms
from flows.dataflow import build_flow
from flows.decode import decode

BATCH = 1000  # as KafkaSource's default batch_size


class _Count(StatelessSinkPartition[Any]):
    def __init__(self, total: list[int]) -> None:
        self._total = total

    def write_batch(self, items: list[Any]) -> None:
        self._total[0] += len(items)


class CountingSink(DynamicSink[Any]):
    def __init__(self) -> None:
        self.total = [0]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
        return _Count(self.total)


class _CountLogic(op.StatefulBatchLogic[Any, int, int]):
    def __init__(self, n: int | None) -> None:
        self.n = n or 0

    def on_batch(self, values: list[Any]) -> tuple[list[int], bool]:
        self.n += len(values)
        return [self.n], False

    def snapshot(self) -> int:
        return self.n


def passthrough(msgs: list[Any], sink: CountingSink) -> Dataflow:
    flow = Dataflow("passthrough")
    op.output("out", op.input("in", flow, TestingSource(msgs, BATCH)), sink)
    return flow


def keyed_noop(msgs: list[Any], sink: CountingSink) -> Dataflow:
    flow = Dataflow("keyed_noop")
    keyed = op.key_on(
        "key", op.input("in", flow, TestingSource(msgs, BATCH)), lambda m: m.key.decode()
    )
    op.output("out", op.stateful_batch("count", keyed, _CountLogic), sink)
    return flow


def decode_only(msgs: list[Any], sink: CountingSink) -> Dataflow:
    flow = Dataflow("decode_only")
    out = decode("decode", op.input("in", flow, TestingSource(msgs, BATCH)), default_codec(),
                 Settings().limits, system_clock_ms)  # fmt: skip
    op.output("out", op.merge("m", out.oks, out.errs), sink)
    return flow


def cdpflow(msgs: list[Any], sink: CountingSink, end_at_stream_time: bool = True) -> Dataflow:
    return build_flow(TestingSource(msgs, BATCH), sink, Settings(),
                      end_at_stream_time=end_at_stream_time)  # fmt: skip


def cdpflow_to_wall_clock(msgs: list[Any], sink: CountingSink) -> Dataflow:
    return cdpflow(msgs, sink, end_at_stream_time=False)


CASES: list[tuple[str, Callable[[list[Any], CountingSink], Dataflow]]] = [
    ("passthrough", passthrough),
    ("keyed no-op", keyed_noop),
    ("decode", decode_only),
    ("cdpflow", cdpflow),
]


def measure(build: Callable[[list[Any], CountingSink], Dataflow], msgs: list[Any]) -> float:
    sink = CountingSink()
    flow = build(msgs, sink)
    start = time.perf_counter()
    run_main(flow)
    elapsed = time.perf_counter() - start
    if sink.total[0] == 0:
        raise RuntimeError(f"{flow.flow_id} produced nothing")
    return len(msgs) / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--end-at", choices=["stream", "wall"], default="stream",
                   help="where cdpflow's bounded input ends: the newest event time (a replay) "
                   "or the wall clock (every moment up to today happens)")  # fmt: skip
    p.add_argument("--gc", choices=["tuned", "default"], default="tuned",
                   help="the garbage collector as cdpflow run sets it (cdpflow.runtime.tune_gc) "
                   "or Python's defaults")  # fmt: skip
    args = p.parse_args()
    msgs = encoded_events(default_codec(), args.events, args.customers)
    if args.gc == "tuned":
        tune_gc()
    cases = dict(CASES)
    if args.end_at == "wall":
        cases["cdpflow"] = cdpflow_to_wall_clock
    rates = {name: statistics.median(measure(build, msgs) for _ in range(args.repeat))
             for name, build in cases.items()}  # fmt: skip
    print(f"{args.events:,} events, {args.customers:,} Zipf customers, median of {args.repeat}, "
          f"ends at {args.end_at} time, gc {args.gc}; Python {platform.python_version()}, "
          f"{platform.machine()}")  # fmt: skip
    print(
        f"| {'dataflow':<12} | {'events/s':>10} | {'vs passthrough':>14} | {'vs keyed no-op':>14} |"
    )
    print(f"|{'-' * 14}|{'-' * 12}:|{'-' * 15}:|{'-' * 15}:|")
    for name, rate in rates.items():
        print(f"| {name:<12} | {rate:>10,.0f} | {rate / rates['passthrough']:>14.3f} | "
              f"{rate / rates['keyed no-op']:>14.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
