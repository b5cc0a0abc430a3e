"""Kafka -> Kafka on the real local broker, against baselines measured in the same run.

    bash docker/kafka-local.sh start
    .venv/bin/python -m bench.kafka_pipeline [--events 200000] [--customers 50000] [--rate N ...]

Every row reads the same pre-produced, Avro-encoded events topic (4 partitions) to its
end and writes to fresh output topics:

- ceiling: a confluent-kafka consume -> produce loop of the same bytes (one process);
- framework: Bytewax ``KafkaSource -> KafkaSink`` doing no work (in-process);
- cdpflow: the full dataflow in-process, then ``cdpflow run`` with 1 and 2 processes
  (process start-up included, so those two compare with each other), and ``cdpflow
  replay`` (with recovery snapshots, like a live run with recovery) beside them;
- latency: events produced at fixed rates with ``event_time`` = now; a trigger's
  latency is its Kafka timestamp minus the event time of the view that fired it, and
  the framework's (Bytewax's passthrough, tailing) is its output's timestamp minus the
  event time of the same event;
- freshness, from the same run: for every event produced, the Kafka timestamp of the
  first snapshot of its customer on the profiles topic whose ``event_time`` (the
  customer's newest event time) has reached the event's, minus the event's time (its
  produce time); events whose snapshot never came are counted.

``--latency-only`` skips the throughput rows (the latency and freshness runs take about
a minute per rate): ``--latency-only --rate 1000`` is the freshness check of issue 19.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.settings import Settings, Topics
from flows.dataflow import build_flow
from flows.decode import to_ms
from flows.kafka_io import kafka_sink, kafka_source

PARTITIONS = 4


def _topics(admin: AdminClient, prefix: str) -> Topics:
    tag = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
    topics = Topics(f"{tag}.events", f"{tag}.triggers", f"{tag}.profiles", f"{tag}.dlq",
                    f"{tag}.identities")  # fmt: skip
    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in vars_of(topics)])
    for f in futures.values():
        f.result(30)
    return topics


def vars_of(t: Topics) -> list[str]:
    return [t.events, t.triggers, t.profiles, t.dead_letters, t.identities]


def _produce(bootstrap: str, topic: str, msgs: list[Any]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                  "compression.type": "lz4"})  # fmt: skip
    for m in msgs:
        while True:
            try:
                p.produce(topic, m.value, m.key)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(60)


def ceiling(bootstrap: str, src: str, dst: str, n: int) -> float:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                  "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    c.assign([TopicPartition(src, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True,
                  "compression.type": "lz4"})  # fmt: skip
    done, eofs = 0, 0
    start = time.perf_counter()
    while eofs < PARTITIONS:
        for msg in c.consume(1000, 1.0):
            if msg.error():
                eofs += 1
                continue
            while True:
                try:
                    p.produce(dst, msg.value(), msg.key())
                    break
                except BufferError:
                    p.poll(0.05)
            done += 1
        p.poll(0)
    p.flush(60)
    elapsed = time.perf_counter() - start
    c.close()
    assert done == n, (done, n)
    return n / elapsed


def framework(settings: Settings, n: int) -> float:
    flow = Dataflow("bench_framework")
    src = KafkaSource([settings.bootstrap_servers], [settings.topics.events], tail=False,
                      batch_size=1000)  # fmt: skip
    msgs = op.input("in", flow, src)
    out = op.map("pass", msgs, lambda m: KafkaSinkMessage(m.key, m.value))
    op.output("out", out, KafkaSink([settings.bootstrap_servers], settings.topics.triggers))
    start = time.perf_counter()
    run_main(flow)
    return n / (time.perf_counter() - start)


def cdpflow_inprocess(settings: Settings, n: int) -> float:
    flow = build_flow(kafka_source(settings, until_end=True), kafka_sink(settings), settings)
    start = time.perf_counter()
    run_main(flow)
    return n / (time.perf_counter() - start)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a ``cdpflow`` subprocess at ``settings``' topics."""
    return {**os.environ, **settings.topics_env(), **extra}


BROKER_PID = Path(__file__).resolve().parent.parent / "docker" / ".kafka" / "kafka.pid"


def _broker_cpu_s() -> float | None:
    """CPU seconds the local broker (``docker/kafka-local.sh``) has used, if it runs here."""
    try:
        pid = BROKER_PID.read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cdpflow_cli(settings: Settings, n: int, processes: int) -> float:
    """``cdpflow run --until-end`` with ``processes`` processes; also records, in ``CPU``,
    the CPU seconds its processes and the broker used per wall second."""
    env = _env(settings)
    cmd = [sys.executable, "-m", "cdpflow.cli", "run", "--until-end", "--no-recovery",
           "--processes", str(processes)]  # fmt: skip
    children, broker = resource.getrusage(resource.RUSAGE_CHILDREN), _broker_cpu_s()
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)  # noqa: S603
    wall = time.perf_counter() - start
    after, broker_after = resource.getrusage(resource.RUSAGE_CHILDREN), _broker_cpu_s()
    used = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    CPU[processes] = (used / wall, None if broker is None or broker_after is None
                      else (broker_after - broker) / wall)  # fmt: skip
    return n / wall


# processes -> (cores used by cdpflow run, cores used by the broker), over the run's wall time
CPU: dict[int, tuple[float, float | None]] = {}


def cdpflow_replay(settings: Settings, n: int) -> float:
    """``cdpflow replay`` over the same topic into a fresh recovery directory."""
    import tempfile

    env = _env(settings)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cdpflow.cli", "replay", "--triggers", "none",
               "--recovery-dir", f"{tmp}/replay"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        return n / (time.perf_counter() - start)


def _send_at_rate(bootstrap: str, topic: str, rate: int, seconds: float, who: str = "lat") -> None:
    """Product views at ``rate``/s with ``event_time`` = now: 500 customers (ids
    ``<who>-<n>``) each viewing one category, so every 3rd view of one fires a trigger."""
    codec = default_codec()
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        cid = f"{who}-{i % 500}"
        now = time.time_ns() // 1_000_000
        record = {"event_id": f"{cid}-{i}", "event_type": "product_viewed", "customer_id": cid,
                  "event_time": now, "received_at": now, "source": "bench",
                  "payload": ("cdp.ProductViewed", {"product": {
                      "product_id": "p", "category": "shoes"}})}  # fmt: skip
        while True:
            try:
                p.produce(topic, codec.encode("cdp.Event", record), cid.encode())
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
        ahead = (i + 1) / rate - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
    p.flush(30)


def _latencies(bootstrap: str, topic: str, schema: str) -> list[float]:
    """Kafka timestamp minus ``event_time`` (ms) of every ``schema`` record in ``topic``
    about a measured customer (not the warm-up's)."""
    codec = default_codec()
    lat = []
    for msg in _read_all(bootstrap, topic):
        name, rec = codec.decode(msg.value())
        if name == schema and rec["customer_id"].startswith("lat-"):
            lat.append(msg.timestamp()[1] - to_ms(rec["event_time"]))
    return sorted(lat)


def _tail_while_sending(cmd: list[str], env: dict[str, str], bootstrap: str, topic: str,
                        out: str, rate: int, seconds: int) -> None:  # fmt: skip
    """Start ``cmd`` tailing ``topic``; warm it up at ``rate`` until its first record
    reaches ``out`` (start-up, imports, partition assignment are not latency), then send
    the measured events."""
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    c.assign([TopicPartition(out, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    try:
        deadline = time.monotonic() + 120
        while not _has_record(c):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{cmd} produced nothing to {out} while warming up")
            _send_at_rate(bootstrap, topic, rate, 0.5, who="warm")
        _send_at_rate(bootstrap, topic, rate, seconds)
        time.sleep(3)
    finally:
        c.close()
        proc.terminate()
        proc.wait(30)


def _has_record(c: Consumer) -> bool:
    return any(not m.error() for m in c.consume(100, 0.5))


def latency(settings: Settings, rate: int, seconds: int) -> tuple[list[float], Freshness]:
    """Trigger latency (ms) with ``cdpflow run`` tailing, events at ``rate``/s: a trigger's
    Kafka timestamp minus the event time of the view that fired it; and the profiles'
    freshness in the same run (:func:`freshness`)."""
    t = settings.topics
    env = _env(settings, CDPFLOW_START_FROM="latest")
    cmd = [sys.executable, "-m", "cdpflow.cli", "run", "--no-recovery"]
    _tail_while_sending(cmd, env, settings.bootstrap_servers, t.events, t.profiles, rate, seconds)
    return (
        _latencies(settings.bootstrap_servers, t.triggers, "cdp.Trigger"),
        freshness(settings.bootstrap_servers, t.events, t.profiles),
    )


Freshness = tuple[list[float], int]
"""Freshness (ms) of every measured event that reached a snapshot, sorted; and how many
never did."""


def _read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every message of ``topic``, each partition in order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                  "enable.partition.eof": True})  # fmt: skip
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    out, eofs = [], 0
    while eofs < PARTITIONS:
        msg = c.poll(5)
        if msg is None:
            break
        if msg.error():
            eofs += 1
            continue
        out.append(msg)
    c.close()
    return out


def freshness(bootstrap: str, events: str, profiles: str) -> Freshness:
    """Event (its ``event_time``: the time it was produced) -> its snapshot on ``profiles``:
    the first of its customer's snapshots whose ``event_time`` (the customer's newest
    event time, so the event is in it: a customer's events are in order on one
    partition) has reached the event's, by that snapshot's Kafka timestamp."""
    codec = default_codec()
    snaps: dict[str, list[tuple[int, int]]] = {}  # customer -> (watermark, Kafka ms), in order
    for msg in _read_all(bootstrap, profiles):
        if msg.value() is None:
            continue
        name, rec = codec.decode(msg.value(), logical=False)
        if name == "cdp.ProfileSnapshot" and rec["customer_id"].startswith("lat-"):
            snaps.setdefault(rec["customer_id"], []).append((rec["event_time"], msg.timestamp()[1]))
    fresh, missing = [], 0
    for msg in _read_all(bootstrap, events):
        name, rec = codec.decode(msg.value(), logical=False)
        cid = rec.get("customer_id") or ""
        if name != "cdp.Event" or not cid.startswith("lat-"):
            continue
        t = rec["event_time"]
        at = next((ts for watermark, ts in snaps.get(cid, ()) if watermark >= t), None)
        if at is None:
            missing += 1
        else:
            fresh.append(at - t)
    return sorted(fresh), missing


def framework_latency(settings: Settings, rate: int, seconds: int) -> list[float]:
    """The same load through Bytewax's Kafka -> Kafka passthrough (no work), tailing: what
    the framework's polling and flushing alone cost an event."""
    t = settings.topics
    cmd = [sys.executable, "-m", "bench.kafka_pipeline", "--passthrough", t.events, t.triggers]
    _tail_while_sending(cmd, dict(os.environ), settings.bootstrap_servers, t.events, t.triggers,
                        rate, seconds)  # fmt: skip
    return _latencies(settings.bootstrap_servers, t.triggers, "cdp.Event")


def passthrough(bootstrap: str, src: str, dst: str) -> None:
    """Run the framework row's dataflow, tailing ``src`` (for ``framework_latency``)."""
    flow = Dataflow("bench_passthrough")
    msgs = op.input("in", flow, KafkaSource([bootstrap], [src], tail=True, batch_size=1000))
    out = op.map("pass", msgs, lambda m: KafkaSinkMessage(m.key, m.value))
    op.output("out", out, KafkaSink([bootstrap], dst))
    run_main(flow)


def quantiles(lat: list[float]) -> tuple[float, float, float] | None:
    """p50, p95, p99 of ``lat`` (None when empty)."""
    if not lat:
        return None
    q = statistics.quantiles(lat, n=100)
    return q[49], q[94], q[98]


def measure(bootstrap: str, events: int, customers: int, rates: list[int],
            seconds: int = 10, throughput: bool = True) -> dict[str, Any]:  # fmt: skip
    """Every row of the table (unless ``throughput`` is false), trigger latency at each of
    ``rates`` for cdpflow and the framework, and the profiles' freshness: ``{"rows":
    {name: events/s}, "latency": {rate: {"cdpflow": q, ...}}, "freshness": {rate: (q,
    missing)}}``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    base = Settings(bootstrap_servers=bootstrap, profile_flush_ms=1000)
    rows: dict[str, float] = {}
    lat: dict[int, dict[str, Any]] = {}
    fresh_at: dict[int, tuple[tuple[float, float, float] | None, int]] = {}
    try:
        if throughput:
            src = _topics(admin, "src")
            _produce(bootstrap, src.events, encoded_events(default_codec(), events, customers))

            def fresh(name: str) -> Settings:
                return replace(base, topics=replace(_topics(admin, name), events=src.events))

            rows[CEILING] = ceiling(bootstrap, src.events, fresh("c").topics.triggers, events)
            rows[FRAMEWORK] = framework(fresh("f"), events)
            rows["cdpflow, in-process"] = cdpflow_inprocess(fresh("i"), events)
            rows[RUN_1] = cdpflow_cli(fresh("p1"), events, 1)
            rows[RUN_2] = cdpflow_cli(fresh("p2"), events, 2)
            rows["cdpflow replay, 1 process"] = cdpflow_replay(fresh("r"), events)
        for rate in rates:
            triggers, (fresh_ms, missing) = latency(
                replace(base, topics=_topics(admin, "lat")), rate, seconds
            )
            lat[rate] = {
                "framework": quantiles(
                    framework_latency(replace(base, topics=_topics(admin, "fl")), rate, seconds)
                ),
                "cdpflow": quantiles(triggers),
            }
            fresh_at[rate] = (quantiles(fresh_ms), missing)
    finally:
        bench_topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith("bench-")]
        if bench_topics:
            admin.delete_topics(bench_topics)
    return {"rows": rows, "latency": lat, "freshness": fresh_at, "cpu": dict(CPU)}


CEILING = "ceiling (confluent-kafka loop)"
FRAMEWORK = "framework (Bytewax, no work)"
RUN_1 = "cdpflow run, 1 process"
RUN_2 = "cdpflow run, 2 processes"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument(
        "--rate", type=int, action="append", help="latency: events/s (repeatable; 1000, 5000)"
    )
    ap.add_argument("--latency-only", action="store_true",
                    help="only the latency and freshness runs, no throughput rows")  # fmt: skip
    ap.add_argument("--passthrough", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if args.passthrough:
        passthrough(bootstrap, *args.passthrough)
        return
    r = measure(bootstrap, args.events, args.customers, args.rate or [1_000, 5_000],
                throughput=not args.latency_only)  # fmt: skip
    rows = r["rows"]
    if rows:
        a, b = rows[CEILING], rows[FRAMEWORK]
        print(f"\n{args.events:,} events, {args.customers:,} Zipf customers, {PARTITIONS} "
              f"partitions, {os.cpu_count()} cores")  # fmt: skip
        print(f"| {'run':<30} | {'events/s':>9} | {'vs ceiling':>10} | {'vs framework':>12} |")
        print(f"|{'-' * 32}|{'-' * 10}:|{'-' * 11}:|{'-' * 13}:|")
        for name, rate in rows.items():
            print(f"| {name:<30} | {rate:>9,.0f} | {rate / a:>10.2f} | {rate / b:>12.2f} |")
    for procs, (mine, broker) in r["cpu"].items():
        print(f"cdpflow run, {procs} process(es): {mine:.2f} cores busy, broker {broker or 0:.2f}")
    for rate, lat in r["latency"].items():
        for who, q in lat.items():
            text = "no records arrived" if q is None else (
                f"p50 {q[0]:.0f} ms, p95 {q[1]:.0f} ms, p99 {q[2]:.0f} ms")  # fmt: skip
            print(f"Latency at {rate:,} events/s, {who}: {text}")
    for rate, (q, missing) in r["freshness"].items():
        text = "no snapshots arrived" if q is None else (
            f"p50 {q[0]:.0f} ms, p95 {q[1]:.0f} ms, p99 {q[2]:.0f} ms")  # fmt: skip
        print(f"Profile freshness at {rate:,} events/s (event -> its snapshot on the profiles "
              f"topic): {text}; {missing} events without a snapshot")  # fmt: skip


if __name__ == "__main__":
    main()
