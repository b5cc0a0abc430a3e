"""Kafka -> Kafka on the real local broker, against baselines measured in the same run.

    bash docker/kafka-local.sh start
    .venv/bin/python -m bench.kafka_pipeline [--events 200000] [--customers 50000]

Every row reads the same pre-produced, Avro-encoded events topic (4 partitions) to its
end and writes to fresh output topics:

- ceiling: a confluent-kafka consume -> produce loop of the same bytes (one process);
- framework: Bytewax ``KafkaSource -> KafkaSink`` doing no work (in-process);
- cdpflow: the full dataflow in-process, then ``cdpflow run`` with 1 and 2 processes
  (process start-up included, so those two compare with each other), and ``cdpflow
  replay`` (with recovery snapshots, like a live run with recovery) beside them;
- latency: events produced at a fixed rate with ``event_time`` = now; a trigger's
  latency is its Kafka timestamp minus the event time of the view that fired it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
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


def cdpflow_cli(settings: Settings, n: int, processes: int) -> float:
    env = _env(settings)
    cmd = [sys.executable, "-m", "cdpflow.cli", "run", "--until-end", "--no-recovery",
           "--processes", str(processes)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)  # noqa: S603
    return n / (time.perf_counter() - start)


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


def latency(settings: Settings, rate: int, seconds: int) -> list[float]:
    """Trigger latency (ms) with the dataflow tailing, events at ``rate``/s."""
    t = settings.topics
    env = _env(settings, CDPFLOW_START_FROM="latest")
    proc = subprocess.Popen([sys.executable, "-m", "cdpflow.cli", "run", "--no-recovery"], env=env)
    codec = default_codec()
    try:
        time.sleep(6)  # start-up: imports, topic metadata, partition assignment
        p = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 1})
        total = rate * seconds
        start = time.perf_counter()
        for i in range(total):
            # 500 customers each viewing one category: every 3rd view fires a trigger.
            cid = f"lat-{i % 500}"
            now = time.time_ns() // 1_000_000
            record = {"event_id": f"lat-{i}", "event_type": "product_viewed", "customer_id": cid,
                      "event_time": now, "received_at": now, "source": "bench",
                      "payload": ("cdp.ProductViewed", {"product": {
                          "product_id": "p", "category": "shoes"}})}  # fmt: skip
            p.produce(t.events, codec.encode("cdp.Event", record), cid.encode())
            p.poll(0)
            ahead = (i + 1) / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
        p.flush(30)
        time.sleep(3)
    finally:
        proc.terminate()
        proc.wait(30)
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": uuid.uuid4().hex,
                  "enable.partition.eof": True})  # fmt: skip
    c.assign([TopicPartition(t.triggers, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    lat, eofs = [], 0
    while eofs < PARTITIONS:
        msg = c.poll(5)
        if msg is None:
            break
        if msg.error():
            eofs += 1
            continue
        name, rec = codec.decode(msg.value())
        if name == "cdp.Trigger":
            lat.append(msg.timestamp()[1] - to_ms(rec["event_time"]))
    c.close()
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--rate", type=int, default=2_000, help="latency run: events per second")
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    base = Settings(bootstrap_servers=bootstrap, profile_flush_ms=1000)
    src = _topics(admin, "src")
    _produce(bootstrap, src.events, encoded_events(default_codec(), args.events, args.customers))

    def fresh(name: str) -> Settings:
        return replace(base, topics=replace(_topics(admin, name), events=src.events))

    rows: dict[str, float] = {}
    rows["ceiling (confluent-kafka loop)"] = ceiling(
        bootstrap, src.events, fresh("c").topics.triggers, args.events
    )
    rows["framework (Bytewax, no work)"] = framework(fresh("f"), args.events)
    rows["cdpflow, in-process"] = cdpflow_inprocess(fresh("i"), args.events)
    rows["cdpflow run, 1 process"] = cdpflow_cli(fresh("p1"), args.events, 1)
    rows["cdpflow run, 2 processes"] = cdpflow_cli(fresh("p2"), args.events, 2)
    rows["cdpflow replay, 1 process"] = cdpflow_replay(fresh("r"), args.events)
    lat_settings = replace(base, topics=_topics(admin, "lat"))
    lat = sorted(latency(lat_settings, args.rate, 10))

    a, b = rows["ceiling (confluent-kafka loop)"], rows["framework (Bytewax, no work)"]
    print(f"\n{args.events:,} events, {args.customers:,} Zipf customers, {PARTITIONS} partitions, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"| {'run':<30} | {'events/s':>9} | {'vs ceiling':>10} | {'vs framework':>12} |")
    print(f"|{'-' * 32}|{'-' * 10}:|{'-' * 11}:|{'-' * 13}:|")
    for name, rate in rows.items():
        print(f"| {name:<30} | {rate:>9,.0f} | {rate / a:>10.2f} | {rate / b:>12.2f} |")
    if lat:
        q = statistics.quantiles(lat, n=100)
        print(f"\nTrigger latency at {args.rate:,} events/s ({len(lat)} triggers): "
              f"p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, p99 {q[98]:.0f} ms")  # fmt: skip
    else:
        print("\nTrigger latency: no triggers arrived")
    admin.delete_topics([t for t in admin.list_topics(timeout=10).topics if t.startswith("bench-")])


if __name__ == "__main__":
    main()
